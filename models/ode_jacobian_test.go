package models_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/losses"
	"rgflow/models"
)

func TestODEJacobianRegulariser(t *testing.T) {
	// With Jacobian weight μ the reverse-KL loss grows by exactly μ·mean ∫‖εᵀ∂v/∂x‖²dt along the
	// generation paths, for the probes ε the objective fed (integrated separately here with
	// IntegrateJacobian from t = 1 to 0), and the reported free energy does not change. 1e-12: the
	// same float64 sums in another order. The hierarchical flow gets one probe per level, of that
	// level's shape.
	const mu = 0.3
	cfg, err := models.Preset("ode-gerdes", 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ODE.Steps = 3
	act, err := lattice.NewPhi4(4, -4, 1.5)
	if err != nil {
		t.Fatal(err)
	}
	store := layers.NewStore(tensor.Float64, 1)
	const batch = 3
	run := func(w float64) (loss, fq float64, z, eps []float64) {
		c := cfg
		c.ODE = &models.ODEConfig{}
		*c.ODE = *cfg.ODE
		c.ODE.Jacobian = w
		c.Engine = models.EngineGraph // the same integrator with and without the regulariser
		flow, err := models.Build(c)
		if err != nil {
			t.Fatal(err)
		}
		obj := &losses.ReverseKL{Flow: flow, Action: act}
		g := G.NewGraph()
		s := layers.NewScope(g, store)
		l, err := obj.Build(s, batch)
		if err != nil {
			t.Fatal(err)
		}
		if w == 0 {
			store.Perturb(rand.New(rand.NewPCG(4, 4)), 0.05)
		}
		noise := s.NoiseInputs()
		if want := map[bool]int{false: 0, true: 1}[w > 0]; len(noise) != want {
			t.Fatalf("weight %g: %d noise inputs, want %d", w, len(noise), want)
		}
		var lv G.Value
		G.Read(l, &lv)
		m := layers.MustNewTapeMachine(g)
		defer m.Close()
		if err := obj.Feed(rand.New(rand.NewPCG(9, 9))); err != nil {
			t.Fatal(err)
		}
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		if len(noise) > 0 {
			eps = layers.ValueFloats(noise[0].Value())
		}
		return layers.ValueFloats(lv)[0], obj.Metrics()["free_energy"], nil, eps
	}
	l0, f0, _, _ := run(0)
	l1, f1, _, eps := run(mu)
	// the latents of that batch (drawn first from the same stream), and the regulariser of their paths
	zt := layers.NewDense(tensor.Float64, []int{batch, 1, 4, 4}, nil)
	flow, _ := models.Build(cfg)
	if err := flow.Prior.Sample(rand.New(rand.NewPCG(9, 9)), zt); err != nil {
		t.Fatal(err)
	}
	ode := layers.ODE{Field: layers.KernelField{Channels: 1, Freqs: cfg.ODE.Freqs, TimeBasis: cfg.ODE.TimeBasis, Odd: true, D4: true}, Steps: 3}
	g := G.NewGraph()
	s := layers.NewScope(g, store).Sub("ode")
	zn := s.Input("z", batch, 1, 4, 4)
	en := G.NewConstant(layers.NewDense(tensor.Float64, []int{batch, 1, 4, 4}, eps), G.In(g))
	_, _, jac, err := ode.IntegrateJacobian(s, zn, en, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var jv G.Value
	G.Read(jac, &jv)
	m := layers.MustNewTapeMachine(g)
	defer m.Close()
	G.Let(zn, zt)
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	mean := 0.0
	for _, v := range layers.ValueFloats(jv) {
		mean += v / batch
	}
	if mean == 0 {
		t.Fatal("zero regulariser: the test would not see anything")
	}
	if d := l1 - l0 - mu*mean; math.Abs(d) > 1e-12*(1+math.Abs(l0)) {
		t.Errorf("loss with μ=%g: %.15g, without %.15g, μ·mean regulariser %.15g (diff %g)", mu, l1, l0, mu*mean, d)
	}
	if f0 == 0 || f0 != f1 {
		t.Errorf("the reported free energy changed with the regulariser: %v → %v", f0, f1)
	}

	// ode-rg: one probe per level, each of its level's shape; sampling graphs have none.
	rg, err := models.Preset("ode-rg", 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	rg.ODE.Steps, rg.ODE.Jacobian, rg.Engine = 1, 1, ""
	rflow, err := models.Build(rg)
	if err != nil {
		t.Fatal(err)
	}
	gr := G.NewGraph()
	sr := layers.NewScope(gr, layers.NewStore(tensor.Float64, 1))
	act8, err := lattice.NewPhi4(8, -4, 1.5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&losses.ReverseKL{Flow: rflow, Action: act8}).Build(sr, 2); err != nil {
		t.Fatal(err)
	}
	var shapes [][]int
	for _, n := range sr.NoiseInputs() {
		shapes = append(shapes, []int(n.Shape()))
	}
	want := [][]int{{2, 1, 2, 2}, {2, 1, 4, 4}, {2, 1, 8, 8}} // generation runs from the coarsest level
	if len(shapes) != len(want) {
		t.Fatalf("probe shapes %v, want %v", shapes, want)
	}
	for i := range want {
		if !tensor.Shape(shapes[i]).Eq(tensor.Shape(want[i])) {
			t.Errorf("probe shapes %v, want %v", shapes, want)
		}
	}
	sm, err := models.NewSampler(rflow, sr.Store(), 2)
	if err != nil {
		t.Fatalf("sampler of a flow with the Jacobian regulariser: %v", err)
	}
	defer sm.Close()
	if _, _, _, err := sm.Sample(rand.New(rand.NewPCG(1, 2))); err != nil {
		t.Fatalf("sampling a flow with the Jacobian regulariser: %v", err)
	}
}

func TestODEJacobianRegulariserEngine(t *testing.T) {
	// The regulariser differentiates the field twice: ode-gerdes, fused by default, runs on the graph
	// with it when no engine is named, and naming the fused engine with it is an error.
	cfg, err := models.Preset("ode-gerdes", 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.EngineName() != models.EngineFused {
		t.Fatalf("ode-gerdes engine %q by default, want fused (the test assumes it)", cfg.EngineName())
	}
	cfg.ODE.Jacobian, cfg.Engine = 0.1, ""
	if cfg.EngineName() != models.EngineGraph {
		t.Errorf("engine %q with the Jacobian regulariser, want graph", cfg.EngineName())
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("default engine with the Jacobian regulariser: %v", err)
	}
	cfg.Engine = models.EngineFused
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "fused integrator cannot") {
		t.Errorf("fused engine with the Jacobian regulariser: %v, want an error", err)
	}
}
