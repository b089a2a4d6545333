package models

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
)

// engineCase is a preset at a size small enough for a test of seconds.
func engineCase(t *testing.T, name string) Config {
	t.Helper()
	L := 8
	cfg, err := Preset(name, L, 1)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Conditioner == "resmlp" {
		cfg.Width, cfg.ResBlocks = 8, 1 // the same architecture, narrower
	}
	return cfg
}

// engineRun evaluates, over store, with the given engine: generation from z (x and log q), the gradient of
// the loss Σ_b [log q(x_b) + ½|x_b|²]/B (reverse KL against a Gaussian action) with respect to every
// parameter, and the forward log-density of xData.
func engineRun(t *testing.T, cfg Config, engine string, store *layers.Store, z, xData []float64, batch int) map[string][]float64 {
	t.Helper()
	cfg.Engine = engine
	f, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dt := store.Dtype()
	out := map[string][]float64{}
	// Generation and its gradient.
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	zn := s.Input("z", f.Shape(batch)...)
	x, logq, err := f.Generate(s, zn)
	if err != nil {
		t.Fatal(err)
	}
	sq, _ := G.Square(x)
	half, _ := G.Mul(sq, s.Scalar(0.5))
	sx, _ := G.Sum(half)
	sl, _ := G.Sum(logq)
	tot, _ := G.Add(sx, sl)
	loss, _ := G.Div(tot, s.Scalar(float64(batch)))
	names, params := s.Params()
	grads, err := layers.Grad(loss, params...)
	if err != nil {
		t.Fatal(err)
	}
	reads := map[string]*G.Value{}
	keep := func(k string, n *G.Node) {
		var v G.Value
		reads[k] = &v
		G.Read(n, reads[k])
	}
	keep("sample/x", x)
	keep("sample/logq", logq)
	keep("loss", loss)
	for i, nm := range names {
		keep("grad/"+nm, grads[i])
	}
	m := layers.MustNewTapeMachine(g)
	defer m.Close()
	if err := G.Let(zn, layers.NewDense(dt, f.Shape(batch), z)); err != nil {
		t.Fatal(err)
	}
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	for k, v := range reads {
		out[k] = layers.ValueFloats(*v)
	}
	// Density of given data.
	enc, err := NewEncoder(f, store, batch)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	zf, lq, err := enc.Encode(xData)
	if err != nil {
		t.Fatal(err)
	}
	out["density/z"], out["density/logq"] = zf, lq
	return out
}

// Every preset runs the same with either engine where it has a fused kernel: samples, log-densities,
// the loss and the gradient of every parameter agree to 1e-10 relative (to the largest entry of each
// quantity) in float64. Both engines evaluate the same float64 expressions; they differ in the order of
// sums (matrix products, log-dets) and in the fused kernel's ELU and tanh, which are a few ulp from
// the library's. Measured, the engines agree to 2·10⁻¹⁵ here, so 1e-10 leaves five orders of margin for
// other machines and summation orders, while any wrong term (an O(1) relative change) fails. A preset
// without a fused kernel rejects "fused" with an error that says so.
func TestEnginesAgreeForEveryPreset(t *testing.T) {
	const batch = 3
	fusedSeen := 0
	for _, name := range PresetNames() {
		cfg := engineCase(t, name)
		if !cfg.HasFusedKernel() {
			if cfg.Engine != EngineGraph {
				t.Errorf("%s: default engine %q, want graph (no fused kernel)", name, cfg.Engine)
			}
			bad := cfg
			bad.Engine = EngineFused
			if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "no fused kernel") {
				t.Errorf("%s: engine fused without a fused kernel: error %v, want one saying so", name, err)
			}
			if _, err := Build(bad); err == nil {
				t.Errorf("%s: Build accepted engine fused", name)
			}
			continue
		}
		fusedSeen++
		if cfg.Engine != EngineFused {
			t.Errorf("%s: default engine %q, want fused", name, cfg.Engine)
		}
		store := layers.NewStore(tensor.Float64, 17)
		f, _ := Build(cfg)
		bind(t, f, store)
		rng := rand.New(rand.NewPCG(1, 9))
		// Non-trivial weights (every coupling away from the identity) of a scale that keeps the flow sane:
		// at 0.1 the loss is O(50) and the largest gradient O(10). (At 0.3 neuralrg's loss is 6·10⁴ and its
		// gradients 6·10⁵: the chain amplifies the ulp-level differences of the two engines' float64 ELU and
		// tanh to 2·10⁻¹⁰ there.)
		store.Perturb(rng, 0.1)
		n := batch * cfg.Channels * cfg.L * cfg.L
		z, xData := make([]float64, n), make([]float64, n)
		for i := range z {
			z[i], xData[i] = rng.NormFloat64(), 1.5*rng.NormFloat64()
		}
		want := engineRun(t, cfg, EngineGraph, store, z, xData, batch)
		got := engineRun(t, cfg, EngineFused, store, z, xData, batch)
		if len(got) != len(want) {
			t.Errorf("%s: fused gives %d values, graph %d", name, len(got), len(want))
		}
		for k, wv := range want {
			gv := got[k]
			scale := 0.0
			for _, a := range wv {
				scale = math.Max(scale, math.Abs(a))
			}
			if len(gv) != len(wv) {
				t.Errorf("%s: %s has %d values fused, %d graph", name, k, len(gv), len(wv))
				continue
			}
			for i := range wv {
				if math.Abs(gv[i]-wv[i]) > 1e-10*(1+scale) {
					t.Errorf("%s: %s[%d]: fused %.15g, graph %.15g", name, k, i, gv[i], wv[i])
					break
				}
			}
		}
	}
	if fusedSeen == 0 {
		t.Error("no preset has a fused kernel: the comparison never ran")
	}
}

// The engines bind the same parameters (names and shapes), with the same initial values for a given seed,
// so a checkpoint written with one loads into the other.
func TestEnginesShareParameters(t *testing.T) {
	for _, name := range PresetNames() {
		cfg := engineCase(t, name)
		if !cfg.HasFusedKernel() {
			continue
		}
		stores := map[string]*layers.Store{}
		for _, e := range []string{EngineGraph, EngineFused} {
			c := cfg
			c.Engine = e
			f, err := Build(c)
			if err != nil {
				t.Fatal(err)
			}
			stores[e] = layers.NewStore(tensor.Float32, 4)
			bind(t, f, stores[e])
		}
		a, b := stores[EngineGraph], stores[EngineFused]
		if !slices.Equal(a.SortedNames(), b.SortedNames()) {
			t.Fatalf("%s: graph engine has parameters %v, fused %v", name, a.SortedNames(), b.SortedNames())
		}
		for _, nm := range a.SortedNames() {
			ta, _ := a.Get(nm)
			tb, _ := b.Get(nm)
			if !slices.Equal(ta.Shape(), tb.Shape()) || !slices.Equal(layers.Float64s(ta), layers.Float64s(tb)) {
				t.Errorf("%s: %s differs between the engines: shapes %v and %v", name, nm, ta.Shape(), tb.Shape())
			}
		}
	}
}

// Initial weights do not depend on which graph is built first: a store that first serves a sampler
// (the inverse pass visits the layers in reverse order) and one that first serves a training graph get
// bit-identical weights, for every preset.
func TestInitIndependentOfBuildOrder(t *testing.T) {
	for _, name := range PresetNames() {
		cfg := engineCase(t, name)
		cfg.InputActNorm = true
		f, err := Build(cfg)
		if err != nil {
			t.Fatal(err)
		}
		samplerFirst := layers.NewStore(tensor.Float64, 21)
		sm, err := NewSampler(f, samplerFirst, 2)
		if err != nil {
			t.Fatal(err)
		}
		sm.Close()
		bind(t, f, samplerFirst)
		trainerFirst := layers.NewStore(tensor.Float64, 21)
		bind(t, f, trainerFirst)
		sm, err = NewSampler(f, trainerFirst, 2)
		if err != nil {
			t.Fatal(err)
		}
		sm.Close()
		if slices.Equal(samplerFirst.Names(), trainerFirst.Names()) {
			t.Errorf("%s: both build orders created the parameters in the same order; the test shows nothing", name)
		}
		for _, nm := range trainerFirst.SortedNames() {
			ta, _ := samplerFirst.Get(nm)
			tb, _ := trainerFirst.Get(nm)
			va, vb := layers.Float64s(ta), layers.Float64s(tb)
			for i := range va {
				if math.Float64bits(va[i]) != math.Float64bits(vb[i]) {
					t.Fatalf("%s: %s[%d] is %v when the sampler is built first, %v when the trainer is", name, nm, i, va[i], vb[i])
				}
			}
		}
	}
}

func TestUnknownEngine(t *testing.T) {
	cfg, _ := Preset("neuralrg-small", 8, 1)
	cfg.Engine = "turbo"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `engine "turbo"`) {
		t.Errorf("engine turbo: error %v, want one naming the engine", err)
	}
}
