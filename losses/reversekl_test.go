package losses

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/models"
)

// hostPhi4S is S = Σ_x [ ½ Σ_μ (φ_{x+μ} − φ_x)² + ½ m² φ_x² + λ φ_x⁴ ] on a periodic L×L lattice, written
// out independently of package lattice.
func hostPhi4S(L int, m2, lambda float64, phi []float64) float64 {
	var s float64
	for i := 0; i < L; i++ {
		for j := 0; j < L; j++ {
			v := phi[i*L+j]
			dr, dd := phi[i*L+(j+1)%L]-v, phi[((i+1)%L)*L+j]-v
			s += 0.5*(dr*dr+dd*dd) + 0.5*m2*v*v + lambda*v*v*v*v
		}
	}
	return s
}

// symKL is a reverse-KL loss graph on a perturbed (non-identity, not Z₂-symmetric) flow, with the
// gradient of the loss with respect to every parameter.
type symKL struct {
	obj   *ReverseKL
	flow  *models.Flow
	store *layers.Store
	m     G.VM
	loss  G.Value
	names []string
	grads G.Nodes
}

const (
	symL, symM2, symLambda = 4, -1.0, 0.5
	symBatch               = 6
)

func newSymKL(t *testing.T, sym bool) *symKL {
	t.Helper()
	act, err := lattice.NewPhi4(symL, symM2, symLambda)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := models.Preset("neuralrg-small", symL, 1)
	if err != nil {
		t.Fatal(err)
	}
	flow, err := models.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	k := &symKL{obj: &ReverseKL{Flow: flow, Action: act, Symmetrize: sym}, flow: flow,
		store: layers.NewStore(tensor.Float64, 1)}
	g := G.NewGraph()
	s := layers.NewScope(g, k.store)
	loss, err := k.obj.Build(s, symBatch)
	if err != nil {
		t.Fatal(err)
	}
	k.store.Perturb(rand.New(rand.NewPCG(4, 5)), 0.3) // the graph's parameter nodes hold these tensors
	var nodes []*G.Node
	k.names, nodes = s.Params()
	if k.grads, err = layers.Grad(loss, nodes...); err != nil {
		t.Fatal(err)
	}
	G.Read(loss, &k.loss)
	k.m = layers.MustNewTapeMachine(g)
	t.Cleanup(func() { k.m.Close() })
	return k
}

// run feeds the latents of seed (the same z every time) and returns the loss and the gradients.
func (k *symKL) run(t *testing.T) (float64, [][]float64) {
	t.Helper()
	if err := k.obj.Feed(rand.New(rand.NewPCG(2, 3))); err != nil {
		t.Fatal(err)
	}
	defer k.m.Reset()
	if err := k.m.RunAll(); err != nil {
		t.Fatal(err)
	}
	gs := make([][]float64, len(k.grads))
	for i, g := range k.grads {
		gs[i] = layers.Float64s(g.Value().(tensor.Tensor))
	}
	return layers.ValueFloats(k.loss)[0], gs
}

// With non-trivial weights the symmetrised loss mean_b[log ½(q(x_b) + q(−x_b)) + S(x_b)] equals the host
// computation with the same z: x and log q(x) from a separate generation graph, log q(−x) from the
// forward (inference) graph, ½(e^a + e^b) summed directly, S by the host formula. Tolerance 1e-10
// relative: float64 through two independent graphs (forward and inverse agree to ~1e-13).
func TestReverseKLSymmetrizedMatchesHost(t *testing.T) {
	for _, sym := range []bool{false, true} {
		k := newSymKL(t, sym)
		got, _ := k.run(t)
		z := layers.Float64s(k.obj.zVal)
		sm, err := models.NewSampler(k.flow, k.store, symBatch)
		if err != nil {
			t.Fatal(err)
		}
		x, lq, err := sm.Decode(z)
		sm.Close()
		if err != nil {
			t.Fatal(err)
		}
		enc, err := models.NewEncoder(k.flow, k.store, symBatch)
		if err != nil {
			t.Fatal(err)
		}
		neg := make([]float64, len(x))
		for i, v := range x {
			neg[i] = -v
		}
		_, lqNeg, err := enc.Encode(neg)
		enc.Close()
		if err != nil {
			t.Fatal(err)
		}
		var want, asym float64
		for b := range symBatch {
			s := hostPhi4S(symL, symM2, symLambda, x[b*symL*symL:(b+1)*symL*symL])
			l := lq[b]
			if sym {
				l = math.Log(0.5 * (math.Exp(lq[b]) + math.Exp(lqNeg[b])))
			}
			want += (l + s) / symBatch
			asym = math.Max(asym, math.Abs(lq[b]-lqNeg[b]))
		}
		if math.Abs(got-want) > 1e-10*(1+math.Abs(want)) {
			t.Errorf("symmetrize=%v: graph loss %.15g, host %.15g", sym, got, want)
		}
		// The perturbed flow must break Z₂, or symmetrisation changes nothing and the check is empty.
		if asym < 0.01 {
			t.Errorf("max |log q(x) − log q(−x)| = %g: the test flow is nearly Z₂-symmetric", asym)
		}
	}
}

// The gradient of the symmetrised loss (through both passes of the flow, x = F⁻¹(z) and F(−x)) against
// central finite differences of the graph's loss in the same parameters, for a spread of entries of every
// third parameter tensor. h = 1e-5 in float64: truncation O(h²·|f⁽³⁾|) ≈ 1e-10 and rounding ≈ 1e-16·|f|/h
// ≈ 1e-10, so 1e-6·(1 + |g|) leaves a wide margin while a missing path (e.g. the gradient through q(−x)
// dropped) changes gradients at the 1e-2 level.
func TestReverseKLSymmetrizedGradientFD(t *testing.T) {
	k := newSymKL(t, true)
	_, grads := k.run(t)
	const h = 1e-5
	checked := 0
	for pi := 0; pi < len(k.names); pi += 3 {
		p, _ := k.store.Get(k.names[pi])
		vals := p.Float64s()
		for _, e := range []int{0, len(vals) / 2, len(vals) - 1} {
			old := vals[e]
			vals[e] = old + h
			up, _ := k.run(t)
			vals[e] = old - h
			down, _ := k.run(t)
			vals[e] = old
			fd := (up - down) / (2 * h)
			if g := grads[pi][e]; math.Abs(g-fd) > 1e-6*(1+math.Abs(fd)) {
				t.Errorf("%s[%d]: gradient %.10g, finite difference %.10g", k.names[pi], e, g, fd)
			}
			checked++
		}
	}
	if checked < 6 {
		t.Fatalf("only %d entries checked", checked)
	}
}
