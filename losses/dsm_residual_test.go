package losses

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/models/diffusion"
)

// zeroNet is a graph score whose output is exactly zero (the input times 0): the residual of a
// GaussianResidual around it is the Gaussian base alone.
type zeroNet struct{ *diffusion.CNNScore }

func (z zeroNet) Build(s *layers.Scope, xin, t *G.Node) (*G.Node, error) {
	return G.Mul(xin, s.Scalar(0))
}

// TestDSMResidualLoss: a Gaussian residual around a zero network is the exact Gaussian score, so its
// training loss (the graph, fed like training batches) has the exact score's expectation
// Σ_j λ_j (1/q_j − 1/v_j(t)) averaged over t (analyticDSM, independent of the loss code), within 4 standard
// errors; the zero network without the base has the expectation Σ_j λ_j/q_j (the target's size), far
// above. Polchinski flow with the mass regulator μ² = 1 at T = 4 on exact free-field data of mass² 0.5 (not
// the propagator's 1), where the exact score spans e^{18} between modes.
func TestDSMResidualLoss(t *testing.T) {
	lat, err := diffusion.NewLattice(4)
	if err != nil {
		t.Fatal(err)
	}
	sde, err := diffusion.NewPolchinski(lat, diffusion.MassRegulator{Mu2: 1}, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	v0, err := lat.FreeVariance(0.5)
	if err != nil {
		t.Fatal(err)
	}
	const n, B = 8000, 100
	data := make([]float64, n*lat.V)
	if err := (&diffusion.Gaussian{Lat: lat, Var: v0}).Sample(rand.New(rand.NewPCG(1, 2)), data); err != nil {
		t.Fatal(err)
	}
	cnn, err := diffusion.NewCNNScore(sde, 1, 4, 1, false, v0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := diffusion.NewGaussianResidual(zeroNet{cnn}, v0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		net  diffusion.GraphScore
	}{{"residual", res}, {"plain", zeroNet{cnn}}} {
		d := &DSM{Net: c.net, Data: data, Weighting: "variance", TMin: 0.02, DataSeed: 3}
		g := G.NewGraph()
		loss, err := d.Build(layers.NewScope(g, layers.NewStore(tensor.Float64, 7)), B)
		if err != nil {
			t.Fatal(err)
		}
		vm := layers.MustNewTapeMachine(g)
		rng := rand.New(rand.NewPCG(5, 6))
		vals := make([]float64, 0, n/B)
		for range n / B { // one epoch: every sample once
			if err := d.Feed(rng); err != nil {
				t.Fatal(err)
			}
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			vals = append(vals, layers.ValueFloats(loss.Value())[0])
			vm.Reset()
		}
		vm.Close()
		me, se := MeanStdErr(vals)
		want := analyticDSM(t, d, v0)
		plain := float64(lat.V) // Σ_j λ_j/q_j = V at every t for the variance weighting
		t.Logf("%s: loss %.5g ± %.2g; exact score's %.5g, zero score's %.5g", c.name, me, se, want, plain)
		switch c.name {
		case "residual":
			if math.Abs(me-want) > 4*se {
				t.Errorf("residual around zero: loss %.5g ± %.2g, want the exact score's %.5g", me, se, want)
			}
		case "plain":
			if math.Abs(me-plain) > 4*se {
				t.Errorf("zero network: loss %.5g ± %.2g, want Σλ/q = %.5g", me, se, plain)
			}
		}
	}
	// On the host the residual's score is the base's: NetScore adds it.
	ns, err := diffusion.NewNetScore(res, layers.NewStore(tensor.Float64, 7), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	x := data[:5*lat.V]
	got, want := make([]float64, len(x)), make([]float64, len(x))
	for _, tt := range []float64{0, 0.3, 4} {
		if err := ns.Score(tt, x, got); err != nil {
			t.Fatal(err)
		}
		if err := res.Base.Score(tt, x, want); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			// Tolerance: the base is added to an exact zero, so the sum is the base to the last bit.
			if got[i] != want[i] {
				t.Fatalf("t=%v: NetScore of the residual %v, base %v at %d", tt, got[i], want[i], i)
			}
		}
	}
	if _, err := diffusion.NewGaussianResidual(res, v0); err == nil {
		t.Error("a residual of a residual: no error")
	}
	if _, err := diffusion.NewGaussianResidual(cnn, v0[:3]); err == nil {
		t.Error("3 reference variances on L=4: no error")
	}
}
