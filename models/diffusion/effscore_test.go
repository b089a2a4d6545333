package diffusion

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"rgflow/layers"
)

// hostAction is S_t(φ) of the effective action written out on the host for a batch x of C-channel fields
// (length n·C·V) with couplings f: f₁Σφ² + f₂Σφ⁴ + f₃Σ(∇φ)² + f₄(Σφ)²/V + f₅(Σφ)⁴/V³, summed over
// samples and channels.
func hostAction(l *Lattice, f [NumOperators]float64, x []float64) float64 {
	L, V := l.L, float64(l.V)
	var S float64
	for c := 0; c < len(x); c += l.V {
		phi := x[c : c+l.V]
		var s2, s4, grad, sum float64
		for i := range L {
			for j := range L {
				v := phi[i*L+j]
				s2 += v * v
				s4 += v * v * v * v
				sum += v
				dx := phi[((i+1)%L)*L+j] - v
				dy := phi[i*L+(j+1)%L] - v
				grad += dx*dx + dy*dy
			}
		}
		S += f[0]*s2 + f[1]*s4 + f[2]*grad + f[3]*sum*sum/V + f[4]*sum*sum*sum*sum/(V*V*V)
	}
	return S
}

// TestEffectiveScoreIsMinusGradAction: the graph score (NetScore of the layers.Grad node) equals −∇S_t by
// central differences of the action written out on the host with the couplings the graph's MLP gives, with
// and without the zero-mode quartic, one and two channels. S is a quartic polynomial: with h = 1e-4 the
// truncation is h²·S‴/6 ≈ 1e-8·O(10) and rounding 1e-16·|S|/h ≈ 1e-11; tolerance 1e-6 (1 + |s|).
func TestEffectiveScoreIsMinusGradAction(t *testing.T) {
	l := mustLat(t, 4)
	sde := must[*Carosso](t)(NewCarosso(l, 1, 0.1, 2))
	for _, C := range []int{1, 2} {
		for _, zq := range []bool{false, true} {
			h, _ := randomEffective(t, sde, C, zq)
			const tt = 0.7
			f, err := h.Couplings(tt)
			if err != nil {
				t.Fatal(err)
			}
			if zq == (f[4] == 0) {
				t.Fatalf("zero quartic %v: f₅ = %v", zq, f[4])
			}
			rng := rand.New(rand.NewPCG(7, uint64(C)))
			x := make([]float64, 2*C*l.V)
			for i := range x {
				x[i] = 0.3 + rng.NormFloat64() // a non-zero mean, so the zero-mode terms count
			}
			got := make([]float64, len(x))
			if err := h.Score(tt, x, got); err != nil {
				t.Fatal(err)
			}
			const eps = 1e-4
			for i := range x {
				xp, xm := append([]float64(nil), x...), append([]float64(nil), x...)
				xp[i] += eps
				xm[i] -= eps
				want := -(hostAction(l, f, xp) - hostAction(l, f, xm)) / (2 * eps)
				if math.Abs(got[i]-want) > 1e-6*(1+math.Abs(want)) {
					t.Fatalf("C=%d zero quartic %v: score[%d] = %.10g, −∂S/∂φ by differences %.10g", C, zq, i, got[i], want)
				}
			}
		}
	}
}

// Without ZeroQuartic the MLP keeps the four-output layout of runs saved before the zero-mode quartic
// existed (w2 (Hidden, 4), b2 (4)) and reports f₅ = 0; with it the layout is five outputs and f₅ starts
// at softplus(−4), like f₂.
func TestEffectiveScoreLayout(t *testing.T) {
	l := mustLat(t, 4)
	sde := must[*Carosso](t)(NewCarosso(l, 1, 0.1, 2))
	for _, zq := range []bool{false, true} {
		e := must[*EffectiveScore](t)(NewEffectiveScore(sde, 1, 3, 0.5))
		e.ZeroQuartic = zq
		store := layers.NewStore(tensor.Float64, 1)
		f, err := e.CouplingsAt(store, []float64{0.5})
		if err != nil {
			t.Fatal(err)
		}
		w2, ok := store.Get("score/mlp/w2")
		if !ok {
			t.Fatal("no score/mlp/w2")
		}
		wantK, wantF5 := 4, 0.0
		if zq {
			wantK, wantF5 = 5, math.Log1p(math.Exp(-4))
		}
		if s := w2.Shape(); len(s) != 2 || s[1] != wantK {
			t.Errorf("zero quartic %v: w2 shape %v, want (3, %d)", zq, s, wantK)
		}
		// f₂ at the start is softplus(−4) exactly (w2 = 0); f₅ likewise or 0. Rounding only: 1e-15.
		if math.Abs(f[0][1]-math.Log1p(math.Exp(-4))) > 1e-15 || math.Abs(f[0][4]-wantF5) > 1e-15 {
			t.Errorf("zero quartic %v: f₂ = %v, f₅ = %v, want %v and %v", zq, f[0][1], f[0][4], math.Log1p(math.Exp(-4)), wantF5)
		}
	}
}

// TestEffectiveCNNScore: the effective action plus a CNN remainder on the host (NetScore). With its gain
// at zero (the start) it is the effective score itself (EffectiveHostScore with the same weights); the
// remainder is linear in the gain, s(g) − s(0) = g·(s(1) − s(0)); and the sum is translation-equivariant
// (a shifted field gives the shifted score), as both parts are. Tolerances: rounding of O(10) sums, 1e-12.
func TestEffectiveCNNScore(t *testing.T) {
	l := mustLat(t, 4)
	sde := must[*Carosso](t)(NewCarosso(l, 1, 0.1, 2))
	v0 := must[[]float64](t)(l.FreeVariance(0.5))
	for _, C := range []int{1, 2} {
		eff := must[*EffectiveScore](t)(NewEffectiveScore(sde, C, 5, 0.7))
		eff.ZeroQuartic = true
		cnn := must[*CNNScore](t)(NewCNNScore(sde, C, 3, 2, false, v0))
		ec := must[*EffectiveCNNScore](t)(NewEffectiveCNNScore(eff, cnn))
		store := layers.NewStore(tensor.Float64, 3)
		ns := must[*NetScore](t)(NewNetScore(ec, store, 2))
		t.Cleanup(func() { ns.Close() })
		store.Perturb(rand.New(rand.NewPCG(9, 9)), 0.2)
		setGain := func(g float64) {
			if err := store.Set("rem/gain", []int{1}, []float64{g}); err != nil {
				t.Fatal(err)
			}
		}
		hs := must[*EffectiveHostScore](t)(NewEffectiveHostScore(eff, store, 2))
		t.Cleanup(func() { hs.Close() })
		rng := rand.New(rand.NewPCG(3, uint64(C)))
		x := make([]float64, 2*C*l.V)
		for i := range x {
			x[i] = rng.NormFloat64()
		}
		score := func(sc Score, x []float64) []float64 {
			out := make([]float64, len(x))
			if err := sc.Score(0.6, x, out); err != nil {
				t.Fatal(err)
			}
			return out
		}
		setGain(0)
		s0, want := score(ns, x), score(hs, x)
		for i := range s0 {
			if math.Abs(s0[i]-want[i]) > 1e-12 {
				t.Fatalf("C=%d gain 0: score[%d] = %v, effective score %v", C, i, s0[i], want[i])
			}
		}
		setGain(1)
		s1 := score(ns, x)
		setGain(-2.5)
		s2 := score(ns, x)
		var remNorm float64
		for i := range s0 {
			remNorm += (s1[i] - s0[i]) * (s1[i] - s0[i])
			if d := s2[i] - s0[i] + 2.5*(s1[i]-s0[i]); math.Abs(d) > 1e-12 {
				t.Fatalf("C=%d: remainder not linear in the gain at %d (%v)", C, i, d)
			}
		}
		if remNorm < 1e-6 {
			t.Fatalf("C=%d: remainder %v: the test needs a non-zero one", C, remNorm)
		}
		// Shift every field by (1, 2) sites.
		L := l.L
		shift := func(x []float64) []float64 {
			y := make([]float64, len(x))
			for f := 0; f < len(x); f += l.V {
				for i := range L {
					for j := range L {
						y[f+((i+1)%L)*L+(j+2)%L] = x[f+i*L+j]
					}
				}
			}
			return y
		}
		a, b := shift(s2), score(ns, shift(x))
		for i := range a {
			if math.Abs(a[i]-b[i]) > 1e-12 {
				t.Fatalf("C=%d: score of the shifted field [%d] = %v, shifted score %v", C, i, b[i], a[i])
			}
		}
	}
	// The parts must match, and the remainder takes no global-mean channels.
	eff := must[*EffectiveScore](t)(NewEffectiveScore(sde, 1, 5, 0.7))
	cnn2 := must[*CNNScore](t)(NewCNNScore(sde, 2, 3, 1, false, v0))
	if _, err := NewEffectiveCNNScore(eff, cnn2); err == nil {
		t.Error("channels 1 and 2: no error")
	}
	gm := must[*CNNScore](t)(NewCNNScore(sde, 1, 3, 1, false, v0))
	gm.GlobalMean = true
	if _, err := NewEffectiveCNNScore(eff, gm); err == nil {
		t.Error("global mean: no error")
	}
}
