package losses

import (
	"fmt"
	"sort"
)

// timeCells is the number of cells of the importance density of t.
const timeCells = 512

// timeSampler draws the diffusion time of a DSM sample by importance: [TMin, T] is cut into K equal cells,
// cell i has probability P_i ∝ h(t_i) at its midpoint t_i, and t is uniform inside the drawn cell, so the
// density is exactly p(t) = K P_i / (T − TMin) there. A sample's loss is multiplied by 1/((T − TMin) p(t)) =
// 1/(K P_i), which makes E_p[loss/((T − TMin) p)] = E_uniform[loss]: the objective is unchanged in
// expectation, only its variance changes. The proposal is h(t) = Σ_j λ_j(t)/q_j(t), the expected loss of
// the zero score (the size of the regression target): for the likelihood weighting λ = b² it grows like
// 1/t at small t, where uniform sampling rarely looks (Song et al.'s importance sampling of the likelihood
// weighting); for the variance weighting λ = q it is constant and importance sampling is uniform sampling.
type timeSampler struct {
	lo, dt float64
	cum    []float64 // cumulative P
	p      []float64
}

func newTimeSampler(d *DSM, K int) (*timeSampler, error) {
	sde := d.Net.Process()
	V := sde.Lattice().V
	T := sde.T()
	s := &timeSampler{lo: d.TMin, dt: (T - d.TMin) / float64(K), cum: make([]float64, K), p: make([]float64, K)}
	m, q, a, b := make([]float64, V), make([]float64, V), make([]float64, V), make([]float64, V)
	var tot float64
	for i := range K {
		t := d.TMin + (float64(i)+0.5)*s.dt
		if err := sde.Transition(0, t, m, q); err != nil {
			return nil, err
		}
		if err := sde.Coefficients(t, a, b); err != nil {
			return nil, err
		}
		h := 0.0
		for j := range q {
			lam := q[j]
			if d.Weighting == "likelihood" {
				lam = b[j] * b[j]
			}
			h += lam / q[j]
		}
		if !(h > 0) || h != h {
			return nil, fmt.Errorf("losses: DSM: importance density %v at t=%v (want > 0)", h, t)
		}
		s.p[i] = h
		tot += h
	}
	c := 0.0
	for i := range s.p {
		s.p[i] /= tot
		c += s.p[i]
		s.cum[i] = c
	}
	s.cum[K-1] = 1
	return s, nil
}

// draw returns t and the loss factor 1/((T − TMin) p(t)).
func (s *timeSampler) draw(rng interface{ Float64() float64 }) (t, corr float64) {
	i := sort.SearchFloat64s(s.cum, rng.Float64())
	if i >= len(s.cum) {
		i = len(s.cum) - 1
	}
	t = s.lo + (float64(i)+rng.Float64())*s.dt
	return t, 1 / (float64(len(s.p)) * s.p[i])
}
