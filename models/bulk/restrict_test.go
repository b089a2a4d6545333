package bulk

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/models"
)

// fullInverse decodes z through the flow's own Inverse (the whole graph) and returns x and ldj_I(z).
func fullInverse(t *testing.T, flow *models.Flow, store *layers.Store, z []float64) ([]float64, float64) {
	t.Helper()
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	in := s.Input("z", flow.Shape(1)...)
	x, ld, err := flow.Bijector.Inverse(s, in)
	if err != nil {
		t.Fatal(err)
	}
	var xv, lv G.Value
	G.Read(x, &xv)
	G.Read(ld, &lv)
	m := layers.MustNewTapeMachine(g)
	defer m.Close()
	if err := G.Let(in, layers.NewDense(store.Dtype(), flow.Shape(1), z)); err != nil {
		t.Fatal(err)
	}
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	return layers.ValueFloats(xv), layers.ValueFloats(lv)[0]
}

// restrictedInverse decodes z through a ConeDecoder built around base.
func restrictedInverse(t *testing.T, d *ConeDecoder, flow *models.Flow, store *layers.Store, z []float64) ([]float64, float64) {
	t.Helper()
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	in := s.Input("z", flow.Shape(1)...)
	x, ld, err := d.Build(s, in)
	if err != nil {
		t.Fatal(err)
	}
	var xv, lv G.Value
	G.Read(x, &xv)
	if ld != nil {
		G.Read(ld, &lv)
	}
	m := layers.MustNewTapeMachine(g)
	defer m.Close()
	if err := G.Let(in, layers.NewDense(store.Dtype(), flow.Shape(1), z)); err != nil {
		t.Fatal(err)
	}
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	if ld == nil {
		return layers.ValueFloats(xv), math.NaN()
	}
	return layers.ValueFloats(xv), layers.ValueFloats(lv)[0]
}

// coneLatents is the flat latent indices of the cone of region, truncated to levels below top (0: all).
func coneLatents(t *testing.T, flow *models.Flow, region []int, top int) []int {
	t.Helper()
	seq, err := layers.BlockSequence(flow.Bijector)
	if err != nil {
		t.Fatal(err)
	}
	cone, err := flow.Hier.Cone(region, seq)
	if err != nil {
		t.Fatal(err)
	}
	if top > 0 {
		cone = cone[:top]
	}
	v := flow.L * flow.L
	var out []int
	for ch := range flow.Channels {
		for _, lv := range cone {
			for _, s := range lv {
				out = append(out, ch*v+s)
			}
		}
	}
	return out
}

// The restricted decode equals the full decode through the flow's own graph: x and ldj_I to 1e-12 (float64
// rounding of differently ordered sums over ~10² blocks of O(1) log-dets; x itself runs the same ops on
// the same block inputs), for full and truncated cones, one latent and none, on a k=2 flow (NeuralRG,
// fused engine), a k=4 flow with the input ActNorm (RG-Flow, graph engine, two channels) and a chain with
// Named and Invert wrappers (an inverted layer runs its Forward in generation).
func TestConeDecoderMatchesFlow(t *testing.T) {
	cfgTiny, err := models.Preset("rgflow-tiny", 16, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfgTiny.InputActNorm = true
	wrapped := func(t *testing.T) (*models.Flow, *layers.Store) {
		cfg, err := models.Preset("neuralrg-small", 8, 1)
		if err != nil {
			t.Fatal(err)
		}
		flow, err := models.Build(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c := flow.Bijector.(layers.Chain)
		flow.Bijector = layers.Chain{c[0], layers.Invert{Bijector: c[1]},
			layers.Named{Name: "outer", Bijector: layers.Chain{c[2], layers.Invert{Bijector: layers.Chain{c[3], c[4]}}}}, c[5]}
		return flow, perturbedStore(t, flow, 0.15, 9)
	}
	cases := []struct {
		name  string
		build func(t *testing.T) (*models.Flow, *layers.Store)
	}{
		{"neuralrg-small", func(t *testing.T) (*models.Flow, *layers.Store) { return testFlow(t, "neuralrg-small", 16, 0.15, 3) }},
		{"rgflow-tiny+actnorm", func(t *testing.T) (*models.Flow, *layers.Store) { return testFlowCfg(t, cfgTiny, 0.15, 4) }},
		{"named+invert", wrapped},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			flow, store := tc.build(t)
			L, n := flow.L, flow.Channels*flow.L*flow.L
			rng := rand.New(rand.NewPCG(11, 12))
			base := gauss(rng, n, 1)
			region := []int{3*L + 3, 3*L + 4, 4*L + 3, 4*L + 4}
			sets := []struct {
				name string
				free []int
			}{
				{"cone", coneLatents(t, flow, region, 0)},
				{"level0", coneLatents(t, flow, region, 1)},
				{"one latent", []int{L + 1}},
				{"none", nil},
			}
			for _, set := range sets {
				name, free := set.name, set.free
				d, err := NewConeDecoder(flow, store, base, free, nil)
				if err != nil {
					t.Fatal(err)
				}
				z := append([]float64(nil), base...)
				for _, k := range free {
					z[k] += rng.NormFloat64()
				}
				xw, lw := fullInverse(t, flow, store, z)
				xg, lg := restrictedInverse(t, d, flow, store, z)
				worst := 0.0
				for i := range xw {
					worst = math.Max(worst, math.Abs(xg[i]-xw[i]))
				}
				t.Logf("%s: %d free, %d of %d blocks run, max |Δx| %.2g, ldj %.10g vs %.10g", name, len(free), d.BlocksRun, d.BlocksTotal, worst, lg, lw)
				if worst > 1e-12 {
					t.Errorf("%s: restricted x differs from the full decode by %g", name, worst)
				}
				if math.Abs(lg-lw) > 1e-12*math.Max(1, math.Abs(lw)) {
					t.Errorf("%s: restricted ldj %.15g, full %.15g", name, lg, lw)
				}
				if name == "none" && d.BlocksRun != 0 {
					t.Errorf("no free latents but %d blocks run", d.BlocksRun)
				}
				// The same with a window (the region and a margin of 1): exact on the window, fewer blocks.
				var window []int
				for i := 2; i <= 5; i++ {
					for j := 2; j <= 5; j++ {
						window = append(window, i*L+j)
					}
				}
				dw, err := NewConeDecoder(flow, store, base, free, window)
				if err != nil {
					t.Fatal(err)
				}
				xwin, _ := restrictedInverse(t, dw, flow, store, z)
				for ch := range flow.Channels {
					for _, s := range window {
						if k := ch*L*L + s; math.Abs(xwin[k]-xw[k]) > 1e-12 {
							t.Fatalf("%s: windowed decode at %d: %.15g, full %.15g", name, k, xwin[k], xw[k])
						}
					}
				}
				if len(free) > 0 && dw.BlocksRun >= d.BlocksRun && d.BlocksRun == d.BlocksTotal {
					t.Errorf("%s: windowed decode runs %d blocks, unwindowed %d of %d", name, dw.BlocksRun, d.BlocksRun, d.BlocksTotal)
				}
			}
		})
	}
}

// perturbedStore binds flow's parameters in a new float64 store and perturbs them by N(0, scale²).
func perturbedStore(t *testing.T, flow *models.Flow, scale float64, seed uint64) *layers.Store {
	t.Helper()
	store := layers.NewStore(tensor.Float64, seed)
	s := layers.NewScope(G.NewGraph(), store)
	if _, _, err := flow.LogProb(s, s.Input("x", flow.Shape(1)...)); err != nil {
		t.Fatal(err)
	}
	store.Perturb(rand.New(rand.NewPCG(seed, 2)), scale)
	return store
}

// Block counts derived by hand for L=8, k=2 (levels 0, 1, 2) and the single level-0 latent at site (1, 1):
// the level-2 and level-1 blocks hold only sites with even coordinates, so none is dirty; the level-0
// decimator's blocks start at odd coordinates, and the one at (1, 1) holds it (1 of 16); it marks (1..2,
// 1..2), which meets the four level-0 disentangler blocks at (0, 0), (0, 2), (2, 0), (2, 2) (4 of 16).
// Total per decode: 1+1+4+4+16+16 = 42 blocks, 5 of them run.
func TestConeDecoderCounts(t *testing.T) {
	flow, store := testFlow(t, "neuralrg-small", 8, 0.1, 1)
	d, err := NewConeDecoder(flow, store, make([]float64, 64), []int{1*8 + 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.BlocksRun != 5 || d.BlocksTotal != 42 {
		t.Errorf("%d of %d blocks run, want 5 of 42", d.BlocksRun, d.BlocksTotal)
	}
	if _, err := NewConeDecoder(flow, store, make([]float64, 63), nil, nil); err == nil {
		t.Error("63 base latents for an 8×8 flow: no error")
	}
	if _, err := NewConeDecoder(flow, store, make([]float64, 64), []int{64}, nil); err == nil {
		t.Error("free latent 64 of 64: no error")
	}
}

// The repair objective through the restricted decoder has the value and the gradient of the objective
// through the full decode (1e-10 relative: the data term sums ~10² squared differences of values equal to
// 1e-12), for a full and a truncated cone.
func TestRepairRestrictedEqualsFull(t *testing.T) {
	const L = 16
	flow, store := testFlow(t, "neuralrg-small", L, 0.15, 21)
	if err := store.Freeze(store.Names()...); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	n := L * L
	obs := gauss(rng, n, 1)
	start := gauss(rng, n, 1)
	region := []int{5*L + 5, 5*L + 6, 6*L + 5, 6*L + 6}
	var window []int // rows and columns 3 … 8: the region with a margin of 2
	for i := 3; i <= 8; i++ {
		for j := 3; j <= 8; j++ {
			window = append(window, i*L+j)
		}
	}
	for _, tc := range []struct {
		levels int
		window []int
	}{{0, nil}, {1, nil}, {0, window}} {
		levels := tc.levels
		eval := func(full bool) (float64, []float64, *Repair) {
			rep := &Repair{Flow: flow, Observed: obs, Region: region, Start: start, Sigma: 0.3, Levels: levels, FullDecode: full,
				Window: tc.window, Name: "test/z"}
			g := G.NewGraph()
			st := layers.NewStore(tensor.Float64, 1)
			for _, name := range store.Names() {
				w, _ := store.Get(name)
				st.Param(name, w.Shape().Clone(), nil)
				if err := st.Set(name, w.Shape().Clone(), layers.Float64s(w)); err != nil {
					t.Fatal(err)
				}
			}
			s := layers.NewScope(g, st)
			loss, err := rep.Build(s, 1)
			if err != nil {
				t.Fatal(err)
			}
			zc := s.Param("test/z", []int{len(rep.Cone)}, nil)
			// move the free latents off Start so that the gradient is not special
			layers.SetData(zc.Value().(*tensor.Dense), gauss(rng, len(rep.Cone), 1))
			grads, err := layers.Grad(loss, zc)
			if err != nil {
				t.Fatal(err)
			}
			var lv, gv G.Value
			G.Read(loss, &lv)
			G.Read(grads[0], &gv)
			m := layers.MustNewTapeMachine(g)
			defer m.Close()
			if err := rep.Feed(nil); err != nil {
				t.Fatal(err)
			}
			if err := m.RunAll(); err != nil {
				t.Fatal(err)
			}
			return layers.ValueFloats(lv)[0], layers.ValueFloats(gv), rep
		}
		rng = rand.New(rand.NewPCG(5, uint64(levels)))
		lf, gf, _ := eval(true)
		rng = rand.New(rand.NewPCG(5, uint64(levels)))
		lr, gr, rep := eval(false)
		t.Logf("levels %d, window %d sites: %d latents, %d of %d blocks; loss %.12g vs %.12g", levels, len(tc.window), len(rep.Cone), rep.Decoder.BlocksRun, rep.Decoder.BlocksTotal, lr, lf)
		if math.Abs(lr-lf) > 1e-10*math.Abs(lf) {
			t.Errorf("levels %d: restricted loss %.15g, full %.15g", levels, lr, lf)
		}
		scale := 0.0
		for _, v := range gf {
			scale = math.Max(scale, math.Abs(v))
		}
		for i := range gf {
			if math.Abs(gr[i]-gf[i]) > 1e-10*scale {
				t.Fatalf("levels %d: gradient %d: restricted %.15g, full %.15g", levels, i, gr[i], gf[i])
			}
		}
		if (levels == 1 || tc.window != nil) && rep.Decoder.BlocksRun >= rep.Decoder.BlocksTotal {
			t.Errorf("truncated cone runs %d of %d blocks, want fewer", rep.Decoder.BlocksRun, rep.Decoder.BlocksTotal)
		}
	}
}

// BenchmarkRepairStep times one forward and backward pass of the repair objective of an 8×8 box on a
// 32×32 RG-Flow (rgflow-small, float32 as image runs train) through the full decode, the cone's restricted
// decode (every block is dirty: the same work) and the restricted decode with the data term on a window of
// margin 4 (83 of 170 blocks), at batch 1 and 10 (ten images repaired together). cpu-ms/op is the process's CPU time per step (less sensitive to a loaded
// machine than the wall time).
func BenchmarkRepairStep(b *testing.B) {
	cfg, err := models.Preset("rgflow-small", 32, 1)
	if err != nil {
		b.Fatal(err)
	}
	flow, err := models.Build(cfg)
	if err != nil {
		b.Fatal(err)
	}
	store := layers.NewStore(tensor.Float32, 1)
	s0 := layers.NewScope(G.NewGraph(), store)
	if _, _, err := flow.LogProb(s0, s0.Input("x", flow.Shape(1)...)); err != nil {
		b.Fatal(err)
	}
	store.Perturb(rand.New(rand.NewPCG(1, 2)), 0.05)
	if err := store.Freeze(store.Names()...); err != nil {
		b.Fatal(err)
	}
	const L = 32
	rng := rand.New(rand.NewPCG(3, 4))
	obs, start := gauss(rng, L*L, 1), gauss(rng, L*L, 1)
	var region, window []int
	for i := 8; i < 24; i++ {
		for j := 8; j < 24; j++ {
			window = append(window, i*L+j)
			if i >= 12 && i < 20 && j >= 12 && j < 20 {
				region = append(region, i*L+j)
			}
		}
	}
	for _, batch := range []int{1, 10} {
		for _, bc := range []struct {
			name   string
			full   bool
			window []int
		}{{"full", true, nil}, {"cone", false, nil}, {"window4", false, window}} {
			name := fmt.Sprintf("%s/B%d", bc.name, batch)
			b.Run(name, func(b *testing.B) {
				var obsB, startB []float64
				for range batch {
					obsB, startB = append(obsB, obs...), append(startB, start...)
				}
				rep := &Repair{Flow: flow, Observed: obsB, Region: region, Start: startB, Sigma: 0.5, FullDecode: bc.full, Window: bc.window, Name: "bench/" + name}
				g := G.NewGraph()
				s := layers.NewScope(g, store)
				loss, err := rep.Build(s, batch)
				if err != nil {
					b.Fatal(err)
				}
				zc := s.Param(rep.param(), []int{batch * len(rep.Cone)}, nil)
				if _, err := layers.Grad(loss, zc); err != nil {
					b.Fatal(err)
				}
				m := layers.MustNewTapeMachine(g)
				defer m.Close()
				b.ResetTimer()
				c0 := processCPU()
				defer func() { b.ReportMetric(float64(processCPU()-c0)/float64(b.N)/1e6, "cpu-ms/op") }()
				for range b.N {
					if err := rep.Feed(nil); err != nil {
						b.Fatal(err)
					}
					if err := m.RunAll(); err != nil {
						b.Fatal(err)
					}
					m.Reset()
				}
			})
		}
	}
}

// A batch of repairs is the sum of single repairs: the loss of a batch of two through the restricted,
// windowed decode equals the sum of the two batch-1 losses through the full decode, and its gradient is
// theirs side by side (1e-10 relative, as above); the decoder's per-sample log-det matches each sample's
// full decode (1e-12).
func TestRepairBatch(t *testing.T) {
	const L = 16
	flow, store := testFlow(t, "neuralrg-small", L, 0.15, 23)
	if err := store.Freeze(store.Names()...); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(2, 3))
	n := L * L
	obs, start := gauss(rng, 2*n, 1), gauss(rng, 2*n, 1)
	region := []int{9*L + 9, 9*L + 10}
	var window []int
	for i := 7; i <= 11; i++ {
		for j := 7; j <= 12; j++ {
			window = append(window, i*L+j)
		}
	}
	zfree := gauss(rng, 2*n, 1) // values for the free latents
	eval := func(obs, start []float64, full bool, batch int) (float64, []float64) {
		rep := &Repair{Flow: flow, Observed: obs, Region: region, Start: start, Sigma: 0.4, Window: window, FullDecode: full, Name: "test/z"}
		g := G.NewGraph()
		s := layers.NewScope(g, layers.NewStore(tensor.Float64, 1))
		for _, name := range store.Names() {
			w, _ := store.Get(name)
			s.Store().Param(name, w.Shape().Clone(), nil)
			if err := s.Store().Set(name, w.Shape().Clone(), layers.Float64s(w)); err != nil {
				t.Fatal(err)
			}
		}
		loss, err := rep.Build(s, batch)
		if err != nil {
			t.Fatal(err)
		}
		zc := s.Param("test/z", []int{batch * len(rep.Cone)}, nil)
		layers.SetData(zc.Value().(*tensor.Dense), zfree[:batch*len(rep.Cone)])
		grads, err := layers.Grad(loss, zc)
		if err != nil {
			t.Fatal(err)
		}
		var lv, gv G.Value
		G.Read(loss, &lv)
		G.Read(grads[0], &gv)
		m := layers.MustNewTapeMachine(g)
		defer m.Close()
		if err := rep.Feed(nil); err != nil {
			t.Fatal(err)
		}
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		return layers.ValueFloats(lv)[0], layers.ValueFloats(gv)
	}
	lb, gb := eval(obs, start, false, 2)
	l0, g0 := eval(obs[:n], start[:n], true, 1)
	// the second sample's free values are zfree[nc:2nc]: shift zfree for the single evaluation
	nc := len(g0)
	saved := append([]float64(nil), zfree...)
	copy(zfree, saved[nc:2*nc])
	l1, g1 := eval(obs[n:], start[n:], true, 1)
	copy(zfree, saved)
	if math.Abs(lb-(l0+l1)) > 1e-10*math.Abs(l0+l1) {
		t.Errorf("batch loss %.15g, sum of single losses %.15g", lb, l0+l1)
	}
	want := append(g0, g1...)
	scale := 0.0
	for _, v := range want {
		scale = math.Max(scale, math.Abs(v))
	}
	for i := range want {
		if math.Abs(gb[i]-want[i]) > 1e-10*scale {
			t.Fatalf("gradient %d: batch %.15g, single %.15g", i, gb[i], want[i])
		}
	}
	// Per-sample log-dets of a batch-2 decoder (no window) against the full decodes.
	free := coneLatents(t, flow, region, 0)
	d, err := NewConeDecoder(flow, store, start, free, nil)
	if err != nil {
		t.Fatal(err)
	}
	z := append([]float64(nil), start...)
	for b := range 2 {
		for _, k := range free {
			z[b*n+k] += rng.NormFloat64()
		}
	}
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	in := s.Input("z", flow.Shape(2)...)
	x, ld, err := d.Build(s, in)
	if err != nil {
		t.Fatal(err)
	}
	var xv, lv G.Value
	G.Read(x, &xv)
	G.Read(ld, &lv)
	m := layers.MustNewTapeMachine(g)
	defer m.Close()
	if err := G.Let(in, layers.NewDense(tensor.Float64, flow.Shape(2), z)); err != nil {
		t.Fatal(err)
	}
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	xs, lds := layers.ValueFloats(xv), layers.ValueFloats(lv)
	for b := range 2 {
		xw, lw := fullInverse(t, flow, store, z[b*n:(b+1)*n])
		for i := range xw {
			if math.Abs(xs[b*n+i]-xw[i]) > 1e-12 {
				t.Fatalf("sample %d value %d: batch decode %.15g, full %.15g", b, i, xs[b*n+i], xw[i])
			}
		}
		if math.Abs(lds[b]-lw) > 1e-12*math.Max(1, math.Abs(lw)) {
			t.Errorf("sample %d: ldj %.15g, full %.15g", b, lds[b], lw)
		}
	}
}
