package diffusion

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"rgflow/layers"
)

// randomEffective returns an effective-action score on an L×L lattice (C channels) with random weights, so
// that every coupling, the quartic ones included, is non-zero and depends on t; zq selects the zero-mode
// quartic.
func randomEffective(t *testing.T, sde SDE, C int, zq bool) (*EffectiveHostScore, *layers.Store) {
	t.Helper()
	e := must[*EffectiveScore](t)(NewEffectiveScore(sde, C, 5, 0.7))
	e.ZeroQuartic = zq
	store := layers.NewStore(tensor.Float64, 3)
	h := must[*EffectiveHostScore](t)(NewEffectiveHostScore(e, store, 2))
	store.Perturb(rand.New(rand.NewPCG(5, 6)), 0.1)
	t.Cleanup(func() { h.Close() })
	return h, store
}

// TestEffectiveTraceFiniteDifference: the exact weighted trace of the effective action's score equals
// Σ_j w_j ∂s_j/∂u_j taken by central differences of the score itself (NetScore, mode coordinates), for
// weights that are equal on the two coordinates of every pair (the fast path) and for arbitrary ones (the
// site-by-site path). The score is a cubic polynomial in u, so the central difference with h = 1e-4 is
// exact up to h² f”' ≈ 1e-8 and rounding ≈ 1e-16/h per term: tolerance 1e-6 relative.
func TestEffectiveTraceFiniteDifference(t *testing.T) {
	l := mustLat(t, 4)
	sde := must[*Polchinski](t)(NewPolchinski(l, MassRegulator{Mu2: 0.1}, 0.5, 1))
	for _, tc := range []struct {
		C  int
		zq bool
	}{{1, false}, {2, false}, {1, true}, {2, true}} {
		C := tc.C
		h, _ := randomEffective(t, sde, C, tc.zq)
		V := l.V
		n := 2 * C // two samples of C fields
		rng := rand.New(rand.NewPCG(1, uint64(C)))
		u := make([]float64, n*V)
		for i := range u {
			u[i] = rng.NormFloat64()
		}
		f, err := h.Couplings(0.3)
		if err != nil {
			t.Fatal(err)
		}
		if f[1] < 1e-3 || tc.zq != (f[4] > 1e-3) {
			t.Fatalf("quartic couplings %v, %v (zero quartic %v): the test needs non-zero ones", f[1], f[4], tc.zq)
		}
		a, b := make([]float64, V), make([]float64, V)
		if err := sde.Coefficients(0.3, a, b); err != nil {
			t.Fatal(err)
		}
		pairs := make([]float64, V)
		for j := range b {
			pairs[j] = b[j] * b[j]
		}
		arbitrary := make([]float64, V)
		for j := range arbitrary {
			arbitrary[j] = 0.5 + rng.Float64()
		}
		score := func(u, dst []float64) {
			x, s := make([]float64, len(u)), make([]float64, len(u))
			fromModes(l, x, u)
			if err := h.Score(0.3, x, s); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < len(s); i += V {
				l.ToModes(dst[i:i+V], s[i:i+V])
			}
		}
		for name, w := range map[string][]float64{"b² (pairs alike)": pairs, "arbitrary": arbitrary} {
			got := make([]float64, n)
			if err := h.WeightedTrace(0.3, u, w, got); err != nil {
				t.Fatal(err)
			}
			want := make([]float64, n)
			const eps = 1e-4
			sp, sm := make([]float64, n*V), make([]float64, n*V)
			for j := range V {
				up, um := append([]float64(nil), u...), append([]float64(nil), u...)
				for f := range n {
					up[f*V+j] += eps
					um[f*V+j] -= eps
				}
				score(up, sp)
				score(um, sm)
				for f := range n {
					want[f] += w[j] * (sp[f*V+j] - sm[f*V+j]) / (2 * eps)
				}
			}
			for f := range n {
				if math.Abs(got[f]-want[f]) > 1e-6*math.Abs(want[f]) {
					t.Errorf("C=%d zero quartic %v %s field %d: trace %.10g, finite differences %.10g", C, tc.zq, name, f, got[f], want[f])
				}
			}
		}
	}
}

// traceOnly turns a mode-diagonal score into a TraceScore (and hides ModeDiagonal), so that the trace path
// of the likelihood can be compared with the mode-diagonal path on the exact free score.
type traceOnly struct{ f *FreeScore }

func (s traceOnly) Score(t float64, x, dst []float64) error { return s.f.Score(t, x, dst) }
func (s traceOnly) WeightedTrace(t float64, u, w, dst []float64) error {
	d := make([]float64, len(w))
	if err := s.f.ModeDerivative(t, d); err != nil {
		return err
	}
	var tr float64
	for j := range w {
		tr += w[j] * d[j]
	}
	for b := range dst {
		dst[b] = tr
	}
	return nil
}

// TestTraceLikelihoodPath: the likelihood through TraceScore is the same computation as through
// ModeDiagonal (to RK4 rounding, 1e-9), names its method, and generation with SampleLogProb followed by
// LogLikelihood of what it generated returns the same log-density (the ODE run back and forth with RK45 at
// rtol = atol = 1e-7, measured differences ≤ 2e-5 for the effective score (≈ 1e-8 at 1e-9): tolerance 1e-4 per field, far below the O(1) error of a wrong sign or factor in the trace). The
// effective score (exact trace) passes the same round trip.
func TestTraceLikelihoodPath(t *testing.T) {
	l := mustLat(t, 4)
	v0 := must[[]float64](t)(l.FreeVariance(0.5))
	sde := must[*Carosso](t)(NewCarosso(l, 2, 0.5, 1))
	free := must[*FreeScore](t)(NewFreeScore(sde, v0))
	prior := must[*Gaussian](t)(Prior(sde, v0))
	rng := rand.New(rand.NewPCG(3, 4))
	x := make([]float64, 3*l.V)
	prior.Sample(rng, x)
	opt := LikelihoodOptions{Steps: 200}
	if m := DivergenceMethod(traceOnly{free}, opt); m != "exact (trace)" {
		t.Errorf("method %q", m)
	}
	if m := DivergenceMethod(free, LikelihoodOptions{Hutchinson: true, Probes: 3}); m != "hutchinson (3 probes)" {
		t.Errorf("method %q", m)
	}
	a := must[[]float64](t)(func() ([]float64, error) { v, _, err := LogLikelihood(sde, free, prior, x, opt, rng); return v, err }())
	b := must[[]float64](t)(func() ([]float64, error) {
		v, _, err := LogLikelihood(sde, traceOnly{free}, prior, x, opt, rng)
		return v, err
	}())
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-9 {
			t.Errorf("field %d: mode-diagonal %.12g, trace %.12g", i, a[i], b[i])
		}
	}
	h, _ := randomEffective(t, sde, 1, false)
	hz, _ := randomEffective(t, sde, 1, true)
	for name, sc := range map[string]Score{"free": free, "effective": h, "effective, zero quartic": hz} {
		y := make([]float64, 2*l.V)
		prior.Sample(rng, y)
		rt := LikelihoodOptions{RTol: 1e-7, ATol: 1e-7}
		q, _, err := SampleLogProb(sde, sc, prior, y, rt, rng)
		if err != nil {
			t.Fatal(err)
		}
		p, _, err := LogLikelihood(sde, sc, prior, y, rt, rng)
		if err != nil {
			t.Fatal(err)
		}
		for i := range q {
			if math.Abs(q[i]-p[i]) > 1e-4 {
				t.Errorf("%s field %d: log q while generating %.10g, log-likelihood of the result %.10g", name, i, q[i], p[i])
			}
		}
	}
}
