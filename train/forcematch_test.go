package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/datasets/lattice"
	"rgflow/layers"
)

// forceMatch learns a local lattice action S_θ(φ) = Σ_x [½a Σ_μ(φ_{x+μ} − φ_x)² + ½b φ_x²], a = α², b = β²,
// by force matching:
// loss = mean over the batch and the sites of (∂S_θ/∂φ − ∂S/∂φ)², where ∂S/∂φ = −Force(φ) comes from the host
// force of the target action. ∂S_θ/∂φ is a gradient taken inside Build (layers.Grad), so the Trainer's
// gradient with respect to (a, b) is a mixed second derivative of S_θ. Configurations φ are drawn i.i.d.
// N(0, σ²) per site: force matching needs samples only to cover the space, not to come from e^{−S}.
type forceMatch struct {
	act   *lattice.Phi4
	L     int
	sigma float64

	phi, target *G.Node
	phiT, tgtT  *tensor.Dense
	phiHost     []float64  // the last batch
	init        [2]float64 // initial α, β
}

func (o *forceMatch) Build(s *layers.Scope, batch int) (*G.Node, error) {
	L := o.L
	o.phi = s.Input("phi", batch, L, L)
	o.target = s.Input("dS", batch, L, L)
	// S_θ = ½ Σ_x [Σ_μ (α(φ_{x+μ} − φ_x))² + (β φ_x)²], i.e. a = α², b = β²: the squares of nodes that depend on
	// both φ and the couplings are what plain G.Grad gets wrong in the Trainer's second differentiation.
	coupling := func(name string, v float64) (*G.Node, error) {
		p := s.Param(name, []int{1}, layers.Constant(v))
		return layers.Reshape(p, 1, 1, 1)
	}
	alpha, err := coupling("action/alpha", o.init[0])
	if err != nil {
		return nil, err
	}
	beta, err := coupling("action/beta", o.init[1])
	if err != nil {
		return nil, err
	}
	all := []byte{0, 1, 2}
	var sum *G.Node
	for axis := 1; axis <= 2; axis++ {
		sh, err := layers.Roll(o.phi, axis, 1)
		if err != nil {
			return nil, err
		}
		d := G.Must(G.Sum(G.Must(G.Square(G.Must(G.BroadcastHadamardProd(G.Must(G.Sub(sh, o.phi)), alpha, nil, all))))))
		if sum == nil {
			sum = d
		} else {
			sum = G.Must(G.Add(sum, d))
		}
	}
	sum = G.Must(G.Add(sum, G.Must(G.Sum(G.Must(G.Square(G.Must(G.BroadcastHadamardProd(o.phi, beta, nil, all))))))))
	energy := G.Must(G.Mul(sum, s.Scalar(0.5)))
	dE, err := layers.Grad(energy, o.phi) // Σ over samples of S_θ, so dE holds each sample's ∂S_θ/∂φ
	if err != nil {
		return nil, err
	}
	o.phiT = tensor.New(tensor.WithShape(batch, L, L), tensor.Of(s.Dtype()))
	o.tgtT = tensor.New(tensor.WithShape(batch, L, L), tensor.Of(s.Dtype()))
	return G.Mean(G.Must(G.Square(G.Must(G.Sub(dE[0], o.target)))))
}

func (o *forceMatch) Feed(rng *rand.Rand) error {
	V := o.L * o.L
	B := o.phiT.Shape()[0]
	phi := make([]float64, B*V)
	tgt := make([]float64, B*V)
	for i := range phi {
		phi[i] = o.sigma * rng.NormFloat64()
	}
	for k := range B {
		o.act.Force(tgt[k*V:(k+1)*V], phi[k*V:(k+1)*V])
	}
	for i := range tgt {
		tgt[i] = -tgt[i]
	}
	o.phiHost = phi
	layers.SetData(o.phiT, phi)
	layers.SetData(o.tgtT, tgt)
	if err := G.Let(o.phi, o.phiT); err != nil {
		return err
	}
	return G.Let(o.target, o.tgtT)
}

// hostForceMatchGrad is the exact gradient of the force-matching loss with respect to (a, b) for one batch
// (the chain rule gives ∂/∂α = 2α ∂/∂a, ∂/∂β = 2β ∂/∂b),
// computed on the host without the graph: ∂S_θ/∂φ_x = a·K_x + b·φ_x with K_x = 4φ_x − Σ_{y~x} φ_y, the
// residual r = (a−1)K + (b−m²)φ, loss = mean r², ∂loss/∂a = 2 mean(r·K), ∂loss/∂b = 2 mean(r·φ).
func hostForceMatchGrad(phi []float64, L int, m2, a, b float64) (loss, da, db float64) {
	V := L * L
	n := float64(len(phi))
	for k := 0; k < len(phi); k += V {
		f := phi[k : k+V]
		for i := range L {
			for j := range L {
				x := f[i*L+j]
				K := 4*x - f[((i+1)%L)*L+j] - f[((i+L-1)%L)*L+j] - f[i*L+(j+1)%L] - f[i*L+(j+L-1)%L]
				r := (a-1)*K + (b-m2)*x
				loss += r * r / n
				da += 2 * r * K / n
				db += 2 * r * x / n
			}
		}
	}
	return loss, da, db
}

func newForceMatch(t *testing.T, L int, m2 float64) *forceMatch {
	t.Helper()
	act, err := lattice.NewFree(L, m2)
	if err != nil {
		t.Fatal(err)
	}
	return &forceMatch{act: act, L: L, sigma: 1, init: [2]float64{0.5, 1.4}}
}

// TestTrainerGradientOfForceLoss: the Trainer's gradient of a loss made of forces (a gradient inside Build)
// equals the exact host gradient; the same graph differentiated with plain G.Grad, as the Trainer used to,
// does not.
func TestTrainerGradientOfForceLoss(t *testing.T) {
	const L, m2, batch = 4, 0.5, 3
	obj := newForceMatch(t, L, m2)
	store := layers.NewStore(tensor.Float64, 0)
	tr, err := New(store, obj, Config{Steps: 1, Batch: batch})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := obj.Feed(rand.New(rand.NewPCG(1, 2))); err != nil {
		t.Fatal(err)
	}
	wk := tr.workers[0]
	if err := wk.vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	const alpha, beta = 0.5, 1.4
	got := map[string]float64{}
	for i, n := range tr.names {
		got[n] = layers.Float64s(wk.gradVals[i].(*tensor.Dense))[0]
	}
	loss, _ := scalarValue(wk.lossVal)
	wk.vm.Reset()
	wantLoss, da, db := hostForceMatchGrad(obj.phiHost, L, m2, alpha*alpha, beta*beta)
	da, db = 2*alpha*da, 2*beta*db
	// The host formula and the graph sum the same O(1) terms in different orders: 1e-12 relative.
	for _, c := range []struct {
		what      string
		got, want float64
	}{{"loss", loss, wantLoss}, {"∂loss/∂α", got["action/alpha"], da}, {"∂loss/∂β", got["action/beta"], db}} {
		if math.Abs(c.got-c.want) > 1e-12*math.Max(1, math.Abs(c.want)) {
			t.Errorf("%s = %.15g, host %.15g", c.what, c.got, c.want)
		}
	}

	// Plain G.Grad on the same graph: Gorgonia reuses the derivative nodes of the G.Grad inside Build.
	plain := func() (string, error) {
		g := G.NewGraph()
		obj2 := newForceMatch(t, L, m2)
		scope := layers.NewScope(g, layers.NewStore(tensor.Float64, 0))
		loss, err := obj2.Build(scope, batch)
		if err != nil {
			return "", err
		}
		_, nodes := scope.Params()
		grads, err := G.Grad(loss, nodes...)
		if err != nil {
			return "", err
		}
		vm := layers.MustNewTapeMachine(g)
		defer vm.Close()
		if err := obj2.Feed(rand.New(rand.NewPCG(1, 2))); err != nil {
			return "", err
		}
		if err := vm.RunAll(); err != nil {
			return "", err
		}
		a, b := layers.ValueFloats(grads[0].Value())[0], layers.ValueFloats(grads[1].Value())[0]
		if math.Abs(a-da) > 1e-6*math.Max(1, math.Abs(da)) || math.Abs(b-db) > 1e-6*math.Max(1, math.Abs(db)) {
			return fmt.Sprintf("plain G.Grad gives (%.6g, %.6g), the exact gradient is (%.6g, %.6g)", a, b, da, db), nil
		}
		return "", nil
	}
	msg, err := plain()
	if err == nil && msg == "" {
		t.Error("plain G.Grad now differentiates a loss made of forces correctly: the layers.Grad workaround may be obsolete")
	}
	// Measured: plain G.Grad returns exactly half of each component, silently.
	t.Logf("plain G.Grad: %s %v", msg, err)
}

// TestForceMatchingLearnsFreeField trains (α, β) from (0.5, 1.4) by force matching against the free field's
// host force (L=4, m²=0.5) and checks a = α², b = β² against the exact couplings a = 1, b = m².
func TestForceMatchingLearnsFreeField(t *testing.T) {
	const L, m2 = 4, 0.5
	obj := newForceMatch(t, L, m2)
	store := layers.NewStore(tensor.Float64, 0)
	const steps = 800
	tr, err := New(store, obj, Config{Steps: steps, Batch: 4, Seed: 3,
		Schedule: Cosine{Peak: 0.05, Final: 1e-4, Total: steps}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	alpha, _ := store.Get("action/alpha")
	beta, _ := store.Get("action/beta")
	a, b := math.Pow(layers.Float64s(alpha)[0], 2), math.Pow(layers.Float64s(beta)[0], 2)
	t.Logf("learned a = %.9f (exact 1), b = %.9f (exact m² = %g)", a, b, m2)
	// The loss is minimal, 0, exactly at (a, b) = (1, m²) for every batch (the model contains the target), so
	// there is no statistical error, only the optimiser's: measured 3e-7 after 800 steps (2e-3 after 400);
	// 1e-5 leaves a factor 30. (Plain G.Grad halves this gradient, which Adam's scale invariance would hide
	// here: TestTrainerGradientOfForceLoss checks the gradient itself.)
	if math.Abs(a-1) > 1e-5 || math.Abs(b-m2) > 1e-5 {
		t.Errorf("learned (a, b) = (%.8f, %.8f), want (1, %g) within 1e-5", a, b, m2)
	}
}
