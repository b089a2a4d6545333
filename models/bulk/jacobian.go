package bulk

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/models"
)

// Jacobian returns ∂x/∂z of the generation map x = F⁻¹(z) at one latent configuration z (C·L·L values),
// computed through the graph in float64: row p is ∂x_p/∂z, the gradient of the output value p, and chunk
// rows are taken per backward pass (a batch of chunk copies of z, each copy's cost picking one output).
// Column i, J[·][i], is the response of the image to latent i.
func Jacobian(flow *models.Flow, store *layers.Store, z []float64, chunk int) ([][]float64, error) {
	n := flow.Channels * flow.L * flow.L
	if len(z) != n {
		return nil, fmt.Errorf("bulk: Jacobian: %d latents, want C·L·L = %d", len(z), n)
	}
	if chunk < 1 {
		return nil, fmt.Errorf("bulk: Jacobian: chunk %d, want ≥ 1", chunk)
	}
	chunk = min(chunk, n)
	st, err := Float64Store(store)
	if err != nil {
		return nil, err
	}
	g := G.NewGraph()
	s := layers.NewScope(g, st)
	shape := flow.Shape(chunk)
	zn := s.Input("z", shape...)
	wn := s.Input("pick", shape...)
	x, _, err := flow.Bijector.Inverse(s, zn)
	if err != nil {
		return nil, fmt.Errorf("bulk: Jacobian: %w", err)
	}
	picked, err := G.HadamardProd(x, wn)
	if err != nil {
		return nil, fmt.Errorf("bulk: Jacobian: %w", err)
	}
	cost, err := G.Sum(picked)
	if err != nil {
		return nil, fmt.Errorf("bulk: Jacobian: %w", err)
	}
	grads, err := layers.Grad(cost, zn)
	if err != nil {
		return nil, fmt.Errorf("bulk: Jacobian: %w", err)
	}
	var gv G.Value
	G.Read(grads[0], &gv)
	m, err := layers.NewTapeMachine(g)
	if err != nil {
		return nil, fmt.Errorf("bulk: Jacobian: %w", err)
	}
	defer m.Close()
	zs := make([]float64, chunk*n)
	for b := 0; b < chunk; b++ {
		copy(zs[b*n:], z)
	}
	zt := layers.NewDense(tensor.Float64, shape, zs)
	J := make([][]float64, n)
	for p0 := 0; p0 < n; p0 += chunk {
		pick := make([]float64, chunk*n)
		for b := 0; b < chunk && p0+b < n; b++ {
			pick[b*n+p0+b] = 1
		}
		if err := G.Let(zn, zt); err != nil {
			return nil, err
		}
		if err := G.Let(wn, layers.NewDense(tensor.Float64, shape, pick)); err != nil {
			return nil, err
		}
		if err := m.RunAll(); err != nil {
			return nil, fmt.Errorf("bulk: Jacobian: %w", err)
		}
		gr := layers.ValueFloats(gv)
		m.Reset()
		for b := 0; b < chunk && p0+b < n; b++ {
			J[p0+b] = gr[b*n : (b+1)*n : (b+1)*n]
		}
	}
	return J, nil
}

// MixLevels returns latents that take every level ≥ cut from a and every level < cut from b (both
// batch·C·L·L values on the hierarchy's grid): cut = 0 gives a, cut = Levels() gives b.
func MixLevels(h layers.Hierarchy, channels int, a, b []float64, cut int) ([]float64, error) {
	v := h.L * h.L
	if len(a) != len(b) || len(a)%(channels*v) != 0 {
		return nil, fmt.Errorf("bulk: MixLevels: %d and %d latents, want equal multiples of C·L·L = %d", len(a), len(b), channels*v)
	}
	lm := h.LevelMap()
	out := make([]float64, len(a))
	for i := range a {
		if lm[i%v] >= cut {
			out[i] = a[i]
		} else {
			out[i] = b[i]
		}
	}
	return out, nil
}
