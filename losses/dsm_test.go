package losses

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/models/diffusion"
	"rgflow/train"
)

// dsmFree returns a DSM on exact free-field data (L=4, m²=0.5) under a Carosso heat flow, with a small CNN.
func dsmFree(t *testing.T, n int, weighting string) (*DSM, []float64) {
	t.Helper()
	lat, err := diffusion.NewLattice(4)
	if err != nil {
		t.Fatal(err)
	}
	sde, err := diffusion.NewCarosso(lat, 1, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	v0, err := lat.FreeVariance(0.5)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]float64, n*lat.V)
	g := &diffusion.Gaussian{Lat: lat, Var: v0}
	if err := g.Sample(rand.New(rand.NewPCG(1, 2)), data); err != nil {
		t.Fatal(err)
	}
	net, err := diffusion.NewCNNScore(sde, 1, 8, 2, false, v0)
	if err != nil {
		t.Fatal(err)
	}
	return &DSM{Net: net, Data: data, Weighting: weighting, TMin: 0.01, DataSeed: 3}, v0
}

// analyticDSM is the expected loss of the exact score with t uniform in [tmin, T]: the t-average (midpoint
// rule, 4000 points) of Σ_j λ_j (1/q_j − 1/v_j(t)).
func analyticDSM(t *testing.T, d *DSM, v0 []float64) float64 {
	sde := d.Net.Process()
	V := len(v0)
	const K = 4000
	m, q, v, a, b := make([]float64, V), make([]float64, V), make([]float64, V), make([]float64, V), make([]float64, V)
	sum := 0.0
	for i := range K {
		tt := d.TMin + (sde.T()-d.TMin)*(float64(i)+0.5)/K
		if err := sde.Transition(0, tt, m, q); err != nil {
			t.Fatal(err)
		}
		if err := sde.Coefficients(tt, a, b); err != nil {
			t.Fatal(err)
		}
		for j := range V {
			v[j] = m[j]*m[j]*v0[j] + q[j]
			lam := q[j]
			if d.Weighting == "likelihood" {
				lam = b[j] * b[j]
			}
			sum += lam * (1/q[j] - 1/v[j])
		}
	}
	return sum / K
}

func TestDSMExactScoreIsOptimal(t *testing.T) {
	for _, w := range []string{"variance", "likelihood"} {
		const n = 6000
		d, v0 := dsmFree(t, n, w)
		exact, err := diffusion.NewFreeScore(d.Net.Process(), v0)
		if err != nil {
			t.Fatal(err)
		}
		pv := make([]float64, len(v0))
		for j := range pv {
			pv[j] = v0[j] * (1 + 0.5*float64(j%3)) // a wrong start: some modes' variance too large
		}
		pert, err := diffusion.NewFreeScore(d.Net.Process(), pv)
		if err != nil {
			t.Fatal(err)
		}
		// Each data sample is used once (one epoch), so the estimate is an unbiased Monte Carlo average.
		me, se, err := d.Evaluate(exact, n, rand.New(rand.NewPCG(5, 6)))
		if err != nil {
			t.Fatal(err)
		}
		mp, _, err := d.Evaluate(pert, n, rand.New(rand.NewPCG(5, 6))) // the same draws
		if err != nil {
			t.Fatal(err)
		}
		want := analyticDSM(t, d, v0)
		// Tolerance: 4 standard errors of the Monte Carlo mean (the t-quadrature error is far smaller).
		if math.Abs(me-want) > 4*se {
			t.Errorf("%s: exact score's loss %.5g ± %.2g, analytic %.5g", w, me, se, want)
		}
		if !(mp > me) {
			t.Errorf("%s: a wrong score's loss %.5g is not above the exact score's %.5g", w, mp, me)
		}
		t.Logf("%s: exact %.5g ± %.2g (analytic %.5g), wrong %.5g", w, me, se, want, mp)
	}
}

// TestDSMGraphMatchesHost checks the loss graph against the host: the same inputs, the network evaluated by
// a separate forward graph (NetScore), the mode transform on the host.
func TestDSMGraphMatchesHost(t *testing.T) {
	for _, gm := range []bool{false, true} {
		d, _ := dsmFree(t, 50, "likelihood")
		d.Net.(*diffusion.CNNScore).GlobalMean = gm
		checkDSMGraph(t, d)
	}
}

func checkDSMGraph(t *testing.T, d *DSM) {
	store := layers.NewStore(tensor.Float64, 7)
	g := G.NewGraph()
	const B = 6
	loss, err := d.Build(layers.NewScope(g, store), B)
	if err != nil {
		t.Fatal(err)
	}
	vm := layers.MustNewTapeMachine(g)
	defer vm.Close()
	if err := d.Feed(rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Fatal(err)
	}
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	got := layers.ValueFloats(loss.Value())[0]
	ns, err := diffusion.NewNetScore(d.Net, store, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	lat := d.Net.Process().Lattice()
	V := lat.V
	want := 0.0
	s, u, x := make([]float64, V), make([]float64, V), make([]float64, V)
	for j := range B {
		tt := d.bufs.t[j]
		c, err := d.Net.Scale(tt)
		if err != nil {
			t.Fatal(err)
		}
		for k := range x {
			x[k] = d.bufs.x[j*V+k] / c
		}
		if err := ns.Score(tt, x, s); err != nil {
			t.Fatal(err)
		}
		lat.ToModes(u, s)
		for k := range u {
			r := d.bufs.w[j*V+k]/c*u[k] - d.bufs.target[j*V+k]
			want += r * r
		}
	}
	want /= B
	// Tolerance: float64 rounding of a sum of B·V squares of O(1…100) terms.
	if math.Abs(got-want) > 1e-9*math.Abs(want) {
		t.Errorf("%T: graph loss %.12g, host %.12g", d.Net, got, want)
	}
}

// trainedLoss returns d's expected loss, on the same n paired draws, of a fresh network (store seed 7) and of
// that network after steps training steps (batch 16, learning rate lr).
func trainedLoss(t *testing.T, d *DSM, n int, steps int64, lr float64) (before, after float64) {
	t.Helper()
	store := layers.NewStore(tensor.Float64, 7)
	eval := func() float64 {
		ns, err := diffusion.NewNetScore(d.Net, store, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer ns.Close()
		m, _, err := d.Evaluate(ns, n, rand.New(rand.NewPCG(9, 9)))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tr, err := train.New(store, d, train.Config{Steps: steps, Batch: 16, LR: lr, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	before = eval()
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return before, eval()
}

// TestDSMTrainingReducesLoss trains the small CNN briefly and compares the expected loss before and after
// on the same draws.
func TestDSMTrainingReducesLoss(t *testing.T) {
	d, _ := dsmFree(t, 512, "variance")
	before, after := trainedLoss(t, d, 200, 150, 3e-3)
	t.Logf("expected loss before %.4g, after %.4g", before, after)
	// The initial CNN's score is unrelated to the data; 150 steps must cut its loss by at least a quarter
	// (a margin far beyond the paired 200-sample noise).
	if !(after < 0.75*before) {
		t.Errorf("loss %.4g after training, %.4g before", after, before)
	}
}

func TestDSMRejects(t *testing.T) {
	d, _ := dsmFree(t, 4, "variance")
	for name, mod := range map[string]func(*DSM){
		"weighting": func(d *DSM) { d.Weighting = "x" },
		"tmin":      func(d *DSM) { d.TMin = 0 },
		"data":      func(d *DSM) { d.Data = d.Data[:5] },
	} {
		c := *d
		mod(&c)
		if _, err := c.Build(layers.NewScope(G.NewGraph(), layers.NewStore(tensor.Float64, 1)), 2); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// effectiveDSM is dsmFree with the effective-action score (hidden 6, starting at the free action of m² 0.5).
func effectiveDSM(t *testing.T, n int) (*DSM, []float64) {
	d, v0 := dsmFree(t, n, "variance")
	e, err := diffusion.NewEffectiveScore(d.Net.Process(), 1, 6, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	d.Net = e
	return d, v0
}

// At the start the effective action is the free action of m² = 0.5 plus f₂ Σφ⁴ with f₂ = softplus(−4), so
// its score at t = 0 is −(−Δ + m²)φ − 4 f₂ φ³: the graph gradient against the host's exact free score plus
// the quartic term.
func TestEffectiveScoreStartsFree(t *testing.T) {
	d, v0 := effectiveDSM(t, 4)
	store := layers.NewStore(tensor.Float64, 3)
	ns, err := diffusion.NewNetScore(d.Net, store, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	exact, err := diffusion.NewFreeScore(d.Net.Process(), v0)
	if err != nil {
		t.Fatal(err)
	}
	x := d.Data[:4*16]
	got, want := make([]float64, len(x)), make([]float64, len(x))
	if err := ns.Score(0, x, got); err != nil {
		t.Fatal(err)
	}
	if err := exact.Score(0, x, want); err != nil {
		t.Fatal(err)
	}
	f2 := math.Log1p(math.Exp(-4))
	for i := range got {
		want[i] -= 4 * f2 * x[i] * x[i] * x[i]
		// Tolerance: rounding of O(10) sums; the FFT in the exact score adds ~1e-15 relative.
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("score[%d] = %.15g, exact %.15g", i, got[i], want[i])
		}
	}
}

// The DSM loss of the effective score depends on a gradient (layers.Grad inside the graph); the Trainer's
// second derivative with respect to the MLP weights is checked against central finite differences, for
// the effective action with and without the zero-mode quartic and for the effective action plus a CNN
// remainder (whose gain, zero at the start, is perturbed with the rest).
func TestEffectiveScoreSecondOrder(t *testing.T) {
	for _, kind := range []string{"effective", "zero quartic", "effective+cnn"} {
		t.Run(kind, func(t *testing.T) {
			d, v0 := effectiveDSM(t, 16)
			e := d.Net.(*diffusion.EffectiveScore)
			switch kind {
			case "zero quartic":
				e.ZeroQuartic = true
			case "effective+cnn":
				e.ZeroQuartic = true
				cnn, err := diffusion.NewCNNScore(e.SDE, 1, 3, 1, false, v0)
				if err != nil {
					t.Fatal(err)
				}
				if d.Net, err = diffusion.NewEffectiveCNNScore(e, cnn); err != nil {
					t.Fatal(err)
				}
			}
			checkDSMSecondOrder(t, d)
		})
	}
}

func checkDSMSecondOrder(t *testing.T, d *DSM) {
	store := layers.NewStore(tensor.Float64, 3)
	g := G.NewGraph()
	sc := layers.NewScope(g, store)
	loss, err := d.Build(sc, 4)
	if err != nil {
		t.Fatal(err)
	}
	store.Perturb(rand.New(rand.NewPCG(2, 2)), 0.3) // w2 starts at zero: make every path count
	names, nodes := sc.Params()
	grads, err := layers.Grad(loss, nodes...)
	if err != nil {
		t.Fatal(err)
	}
	vm := layers.MustNewTapeMachine(g)
	defer vm.Close()
	if err := d.Feed(rand.New(rand.NewPCG(4, 4))); err != nil {
		t.Fatal(err)
	}
	eval := func() float64 {
		if err := d.let(); err != nil {
			t.Fatal(err)
		}
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		defer vm.Reset()
		return layers.ValueFloats(loss.Value())[0]
	}
	eval()
	checked := 0
	for i, name := range names {
		gv := layers.ValueFloats(grads[i].Value())
		p, _ := store.Get(name)
		vals := layers.Float64s(p)
		for k := 0; k < len(vals); k += 1 + len(vals)/4 {
			const h = 1e-6
			orig := vals[k]
			vals[k] = orig + h
			if err := store.Set(name, p.Shape(), vals); err != nil {
				t.Fatal(err)
			}
			up := eval()
			vals[k] = orig - h
			if err := store.Set(name, p.Shape(), vals); err != nil {
				t.Fatal(err)
			}
			dn := eval()
			vals[k] = orig
			if err := store.Set(name, p.Shape(), vals); err != nil {
				t.Fatal(err)
			}
			fd := (up - dn) / (2 * h)
			// Tolerance: central differences with h = 1e-6 on a loss of O(10–100): truncation ~h²·f‴,
			// rounding ~1e-16·loss/h ≈ 1e-8; 1e-5 relative (plus 1e-7 absolute) is above both (h = 1e-4 and 1e-5
			// show a truncation error of 2–5e-5 relative on the quartic terms, so h is small here).
			if math.Abs(fd-gv[k]) > 1e-5*math.Abs(fd)+1e-7 {
				t.Errorf("%s[%d]: gradient %.10g, finite difference %.10g", name, k, gv[k], fd)
			}
			checked++
		}
	}
	if checked < 8 {
		t.Fatalf("only %d parameters checked", checked)
	}
}

// A short training of the effective action lowers its loss (from the t = 0 action, which is wrong for
// t > 0).
func TestEffectiveScoreTrains(t *testing.T) {
	d, _ := effectiveDSM(t, 512)
	before, after := trainedLoss(t, d, 300, 100, 1e-2)
	t.Logf("effective action: expected loss before %.4g, after %.4g", before, after)
	// Paired draws: the same 300 (x_0, t, ε); 100 steps must lower the loss by at least 5%.
	if !(after < 0.95*before) {
		t.Errorf("loss %.4g after training, %.4g before", after, before)
	}
}

// BenchmarkDSMStep times whole DSM training steps (batch 64, one worker) on L=8 for the two score networks.
func BenchmarkDSMStep(b *testing.B) {
	lat, _ := diffusion.NewLattice(8)
	sde, _ := diffusion.NewCarosso(lat, 1, 1, 4)
	v0, _ := lat.FreeVariance(0.5)
	data := make([]float64, 256*lat.V)
	if err := (&diffusion.Gaussian{Lat: lat, Var: v0}).Sample(rand.New(rand.NewPCG(1, 2)), data); err != nil {
		b.Fatal(err)
	}
	cnn, _ := diffusion.NewCNNScore(sde, 1, 32, 3, false, v0)
	cnn.GlobalMean = true
	eff, _ := diffusion.NewEffectiveScore(sde, 1, 16, 0.5)
	for name, net := range map[string]diffusion.GraphScore{"cnn32x3": cnn, "effective": eff} {
		b.Run(name, func(b *testing.B) {
			d := &DSM{Net: net, Data: data, TMin: 0.02}
			tr, err := train.New(layers.NewStore(tensor.Float64, 1), d, train.Config{
				Steps: int64(b.N), Batch: 64, LR: 1e-4, CheckpointEvery: -1, LogEvery: 1 << 40,
			})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			b.ResetTimer()
			if err := tr.Run(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	}
}
