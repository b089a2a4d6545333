package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/layers/bijectortest"
)

// bind builds a forward graph once so that every parameter exists in the store.
func bind(t *testing.T, f *Flow, store *layers.Store) {
	t.Helper()
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	if _, _, err := f.LogProb(s, s.Input("x", f.Shape(1)...)); err != nil {
		t.Fatal(err)
	}
}

func TestPresetConformance(t *testing.T) {
	type tc struct {
		preset string
		L, C   int
		shrink bool // reduce the conditioner width so that the test stays fast (same architecture)
		an     bool // with the input ActNorm
	}
	cases := []tc{
		{"neuralrg", 4, 1, false, false}, {"neuralrg", 8, 1, false, false}, {"neuralrg-small", 8, 2, false, false},
		{"rgflow", 4, 1, true, false}, {"rgflow", 8, 1, true, false}, {"rgflow-small", 8, 3, false, false}, {"rgflow-tiny", 4, 3, false, false}, {"rgflow-tiny", 8, 1, false, true},
	}
	for _, c := range cases {
		cfg, err := Preset(c.preset, c.L, c.C)
		if err != nil {
			t.Fatal(err)
		}
		if c.shrink {
			cfg.Width, cfg.ResBlocks = 16, 1
		}
		cfg.InputActNorm = c.an
		f, err := Build(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			bijectortest.Run(t, bijectortest.Case{
				Name: fmt.Sprintf("%s/L%d/C%d/actnorm=%v/%v", c.preset, c.L, c.C, c.an, dt), Bijector: f.Bijector,
				Shape: f.Shape(2), Dtype: dt, Seed: 11, WeightScale: 0.2,
			})
		}
	}
}

// NeuralRG's reference counts (Li & Wang; 10 couplings, MLP 10,10,10) are 25,280 / 37,920 / 50,560 /
// 63,200 at L = 4/8/16/32. The reference feeds the masked 4-vector m⊙x to 4→10→10→10→4 nets and discards
// the outputs at the conditioning sites; rgflow keeps the two halves as separate tensors (2→…→2), so
// it omits exactly the weights that multiply the masked zeros (2·10 per net), the discarded outputs
// (10·2 weights + 2 biases per net) and their 2 scale entries: 86 per coupling. Adding those back must give
// the reference numbers.
func TestNeuralRGParameterCounts(t *testing.T) {
	const deadPerCoupling = 2*(2*10+10*2+2) + 2
	for _, tc := range []struct{ L, ref int }{{4, 25280}, {8, 37920}, {16, 50560}, {32, 63200}} {
		cfg, err := Preset("neuralrg", tc.L, 1)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Build(cfg)
		if err != nil {
			t.Fatal(err)
		}
		store := layers.NewStore(tensor.Float64, 1)
		bind(t, f, store)
		n := store.NumParams()
		couplings := 2 * f.Hier.Levels() * 10
		if got := n + deadPerCoupling*couplings; got != tc.ref {
			t.Errorf("L=%d: %d parameters + %d dead reference weights = %d, want the reference's %d", tc.L, n, deadPerCoupling*couplings, got, tc.ref)
		}
		if an, _ := cfg.NumParams(); an != n {
			t.Errorf("L=%d: analytic count %d, store has %d", tc.L, an, n)
		}
		t.Logf("neuralrg L=%d: %d parameters (reference parameterisation: %d)", tc.L, n, tc.ref)
	}
}

func TestAnalyticParamCountMatchesStore(t *testing.T) {
	for _, name := range PresetNames() {
		cfg, err := Preset(name, 8, 3)
		if err != nil {
			t.Fatal(err)
		}
		if name == "rgflow" {
			cfg.Width, cfg.ResBlocks = 8, 2
		}
		cfg.InputActNorm = name == "rgflow-small"
		f, err := Build(cfg)
		if err != nil {
			t.Fatal(err)
		}
		store := layers.NewStore(tensor.Float32, 1)
		bind(t, f, store)
		if an, _ := cfg.NumParams(); an != store.NumParams() {
			t.Errorf("%s: analytic count %d, store has %d", name, an, store.NumParams())
		}
	}
}

func TestPresetErrors(t *testing.T) {
	if _, err := Preset("neuralrg", 12, 1); err == nil {
		t.Error("L=12 accepted")
	}
	if _, err := Preset("rgflow", 2, 1); err == nil {
		t.Error("L=2 with 4×4 blocks accepted")
	}
	if _, err := Preset("nope", 8, 1); err == nil {
		t.Error("unknown preset accepted")
	}
	cfg, _ := Preset("neuralrg", 8, 1)
	cfg.Depths = []int{0}
	if _, err := Build(cfg); err == nil {
		t.Error("zero couplings accepted")
	}
}

// The priors' log-densities match their closed forms; per-level temperatures change only their levels.
func TestPriorLogProb(t *testing.T) {
	h, _ := layers.NewHierarchy(4, 2)
	z := []float64{0.3, -1.2, 2.0, 0.1, -0.7, 0.4, 1.5, -2.2, 0.9, 0.0, -0.05, 1.1, -1.9, 0.6, 0.25, -0.35}
	levels := h.LevelMap()
	for _, tc := range []struct {
		name  string
		prior Prior
		logp  func(z, T float64) float64
		temps []float64
	}{
		{"gaussian", Gaussian{Temperatures{T: 0.7}}, func(z, T float64) float64 {
			return -z*z/(2*T*T) - math.Log(T) - 0.5*math.Log(2*math.Pi)
		}, []float64{0.7, 0.7}},
		{"laplace", Laplace{Temperatures{T: 1.3}}, func(z, T float64) float64 {
			b := T / math.Sqrt2
			return -math.Abs(z)/b - math.Log(2*b)
		}, []float64{1.3, 1.3}},
		{"gaussian-levels", Gaussian{Temperatures{LevelT: []float64{0.2, 0.8}, Hier: h}}, func(z, T float64) float64 {
			return -z*z/(2*T*T) - math.Log(T) - 0.5*math.Log(2*math.Pi)
		}, []float64{0.2, 0.8}},
	} {
		g := G.NewGraph()
		s := layers.NewScope(g, layers.NewStore(tensor.Float64, 0))
		zn := s.Input("z", 1, 1, 4, 4)
		lp, err := tc.prior.LogProb(s, zn)
		if err != nil {
			t.Fatal(err)
		}
		m := layers.MustNewTapeMachine(g)
		if err := G.Let(zn, layers.NewDense(tensor.Float64, []int{1, 1, 4, 4}, z)); err != nil {
			t.Fatal(err)
		}
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		want := 0.0
		for i, v := range z {
			want += tc.logp(v, tc.temps[levels[i]])
		}
		if got := layers.Float64s(lp.Value().(tensor.Tensor))[0]; math.Abs(got-want) > 1e-12 {
			t.Errorf("%s: log p = %.15g, want %.15g", tc.name, got, want)
		}
		m.Close()
	}
}

// Prior samples have the variance of their temperature: T² for both priors (Laplace b = T/√2).
// 40,000 draws give the sample variance a relative standard error ≈ √(κ−1)/√n: 0.7% (Gaussian),
// 1.2% (Laplace, κ=6); 5% is > 4σ.
func TestPriorSampleVariance(t *testing.T) {
	h, _ := layers.NewHierarchy(4, 2)
	for _, prior := range []Prior{
		Gaussian{Temperatures{LevelT: []float64{0.5, 2}, Hier: h}},
		Laplace{Temperatures{LevelT: []float64{0.5, 2}, Hier: h}},
	} {
		dst := layers.NewDense(tensor.Float64, []int{2500, 1, 4, 4}, nil)
		if err := prior.Sample(rand.New(rand.NewPCG(5, 6)), dst); err != nil {
			t.Fatal(err)
		}
		v := layers.Float64s(dst)
		lm := h.LevelMap()
		var sum [2]float64
		var n [2]float64
		for i, x := range v {
			l := lm[i%16]
			sum[l] += x * x
			n[l]++
		}
		for l, T := range []float64{0.5, 2} {
			if got := sum[l] / n[l]; math.Abs(got/(T*T)-1) > 0.05 {
				t.Errorf("%T level %d: variance %g, want %g", prior, l, got, T*T)
			}
		}
	}
}

// A sample's log q equals the density the flow assigns to it going forward (one fused primitive in each
// direction, the same number).
func TestSamplerLogQMatchesLogProb(t *testing.T) {
	cfg, _ := Preset("neuralrg-small", 8, 1)
	f, _ := Build(cfg)
	store := layers.NewStore(tensor.Float64, 1)
	bind(t, f, store)
	rng := rand.New(rand.NewPCG(3, 4))
	store.Perturb(rng, 0.2) // random non-zero weights
	sm, err := NewSampler(f, store, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	x, logq, _, err := sm.Sample(rng)
	if err != nil {
		t.Fatal(err)
	}
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	xn := s.Input("x", f.Shape(5)...)
	lq, _, err := f.LogProb(s, xn)
	if err != nil {
		t.Fatal(err)
	}
	m := layers.MustNewTapeMachine(g)
	defer m.Close()
	if err := G.Let(xn, layers.NewDense(tensor.Float64, f.Shape(5), x)); err != nil {
		t.Fatal(err)
	}
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	for i, v := range layers.Float64s(lq.Value().(tensor.Tensor)) {
		if math.Abs(v-logq[i]) > 1e-9*(1+math.Abs(v)) {
			t.Errorf("sample %d: log q from sampling %.12g, from density %.12g", i, logq[i], v)
		}
	}
}
