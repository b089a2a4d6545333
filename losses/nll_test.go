package losses

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/datasets/images"
	"rgflow/layers"
	"rgflow/models"
	"rgflow/train"
)

const fashion64 = "../datasets/images/testdata/fashion-mnist-64"

// fashionDataset is the first 64 Fashion-MNIST training images padded to 32×32.
func fashionDataset(t *testing.T) *images.Dataset {
	t.Helper()
	sp, err := images.ParseSpec("fashion-mnist:" + fashion64)
	if err != nil {
		t.Fatal(err)
	}
	tr, _, err := sp.Load(images.LoadOptions{Size: 32, TestFraction: -1})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func tinyFlow(t *testing.T, L, channels int, prior string) *models.Flow {
	t.Helper()
	cfg, err := models.Preset("rgflow-tiny", L, channels)
	if err != nil {
		t.Fatal(err)
	}
	if prior != "" {
		cfg.Prior = prior
	}
	f, err := models.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// hostIdentityBitsPerDim computes the identity-at-initialisation bits/dim on the host, independently of the package's code: the raw
// IDX pixels padded by hand, x̃ = (x + ½)/256, y = logit(0.05 + 0.9 x̃), ln p(x̃) = Σ ln prior(y) + ln|dy/dx̃|
// with the identity flow (z = y). It returns the mean code length of the 32×32 canvas in bits,
// (−ln p(x̃) + 1024 ln 256)/ln 2, divided by the 1024 canvas values and by the 784 real pixels.
func hostIdentityBitsPerDim(t *testing.T, gauss bool) (canvas, real float64) {
	im, err := images.ReadIDXImages(filepath.Join(fashion64, "train-images-idx3-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for n := 0; n < 64; n++ {
		var lp float64
		for i := 0; i < 32; i++ {
			for j := 0; j < 32; j++ {
				x := 0.0
				if i >= 2 && i < 30 && j >= 2 && j < 30 {
					x = float64(im.Pix[n*784+(i-2)*28+j-2])
				}
				q := 0.05 + 0.9*(x+0.5)/256
				y := math.Log(q) - math.Log(1-q)
				lp += math.Log(0.9) - math.Log(q) - math.Log(1-q)
				if gauss {
					lp += -y*y/2 - 0.5*math.Log(2*math.Pi)
				} else { // Laplace with b = T/√2, T = 1
					lp += -math.Abs(y)*math.Sqrt2 - math.Log(math.Sqrt2)
				}
			}
		}
		total += -lp
	}
	bits := (total/64 + 1024*math.Log(256)) / math.Ln2
	return bits / 1024, bits / 784
}

// With every coupling the identity (the flow at initialisation), the first 64 Fashion-MNIST training images padded to 32×32,
// u = ½ and T = 1, bits/dim = 9.555760 (Laplace) and 10.122061 (Gaussian) over the 1024 canvas values. The
// graph (the NLL objective run once), the evaluation helper and an independent host computation must all
// agree with these to 1e-6 (the reference numbers are rounded to 6 decimals; the three routes agree to ~1e-12
// among themselves in float64). The real-pixel figure (the canvas's code length over the 784 pixels of a
// 28×28 image) must equal the host's to 1e-10 too, and hence the reference number × 1024/784.
func TestNLLIdentityBitsPerDim(t *testing.T) {
	data := fashionDataset(t)
	for _, c := range []struct {
		prior string
		want  float64
	}{{"laplace", 9.555760}, {"gaussian", 10.122061}} {
		flow := tinyFlow(t, 32, 1, c.prior)
		store := layers.NewStore(tensor.Float64, 1)
		obj := &NLL{Flow: flow, Data: data, Pre: Preprocess{Fixed: true, U: 0.5}, DataSeed: 9}
		g := G.NewGraph()
		loss, err := obj.Build(layers.NewScope(g, store), 64)
		if err != nil {
			t.Fatal(err)
		}
		var lv G.Value
		G.Read(loss, &lv)
		m := layers.MustNewTapeMachine(g)
		if err := obj.Feed(nil); err != nil { // fixed u, no flips: no randomness needed
			t.Fatal(err)
		}
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		graph := BitsPerDim(layers.ValueFloats(lv)[0], 1024)
		met := obj.Metrics()
		m.Close()
		host, hostReal := hostIdentityBitsPerDim(t, c.prior == "gaussian")
		ev, err := EvalBitsPerDim(flow, store, data, 24, Preprocess{Fixed: true, U: 0.5}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: graph %.9f, metric %.9f, eval %.9f ± %.4f (N=%d), host %.9f, reference %.6f; real pixels %.9f",
			c.prior, graph, met["bits_per_dim_canvas"], ev.BitsPerDimCanvas, ev.BitsPerDimCanvasErr, ev.N, host, c.want, ev.BitsPerDim)
		for name, v := range map[string]float64{"graph loss": graph, "metric": met["bits_per_dim_canvas"], "eval": ev.BitsPerDimCanvas, "host": host} {
			if math.Abs(v-c.want) > 1e-6 {
				t.Errorf("%s prior: %s canvas bits/dim %.9f, reference %.6f", c.prior, name, v, c.want)
			}
			if math.Abs(v-host) > 1e-10 {
				t.Errorf("%s prior: %s canvas bits/dim %.12f, host %.12f", c.prior, name, v, host)
			}
		}
		for name, v := range map[string]float64{"metric": met["bits_per_dim"], "eval": ev.BitsPerDim} {
			if math.Abs(v-hostReal) > 1e-10 || math.Abs(v-c.want*1024/784) > 2e-6 {
				t.Errorf("%s prior: %s real-pixel bits/dim %.12f, host %.12f, reference×1024/784 %.9f", c.prior, name, v, hostReal, c.want*1024/784)
			}
		}
		if ev.N != 64 || ev.Dim != 1024 || ev.RealDim != 784 || !(ev.BitsPerDimErr > 0) ||
			math.Abs(ev.BitsPerDimErr*784-ev.BitsPerDimCanvasErr*1024) > 1e-12 {
			t.Errorf("eval over %d images of %d values (%d real), errors %g and %g", ev.N, ev.Dim, ev.RealDim, ev.BitsPerDimErr, ev.BitsPerDimCanvasErr)
		}
		if met["bits_per_dim_err"] <= 0 || math.Abs(met["bits_per_dim_err"]*784-met["bits_per_dim_canvas_err"]*1024) > 1e-12 {
			t.Errorf("metric errors %g (real) and %g (canvas)", met["bits_per_dim_err"], met["bits_per_dim_canvas_err"])
		}
	}
}

// Real images through an rgflow-tiny with random non-zero weights in float32: decode(encode(y)) = y to
// 1e-4 on the logit scale (|y| ≤ logit(0.95) ≈ 2.94), and the pixels come back exactly.
func TestNLLRoundTripRealImages(t *testing.T) {
	data := fashionDataset(t)
	flow := tinyFlow(t, 32, 1, "")
	store := layers.NewStore(tensor.Float32, 5)
	enc, err := models.NewEncoder(flow, store, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	rng := rand.New(rand.NewPCG(7, 8))
	store.Perturb(rng, 0.2)
	dec, err := models.NewSampler(flow, store, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	pix := make([]uint8, 64*1024)
	if err := data.Batch(pix, seqInts(64), nil); err != nil {
		t.Fatal(err)
	}
	pre := Preprocess{Fixed: true, U: 0.5}
	y := make([]float64, len(pix))
	ld := make([]float64, 64)
	if err := pre.Apply(nil, pix, 1024, y, ld); err != nil {
		t.Fatal(err)
	}
	z, logq, err := enc.Encode(y)
	if err != nil {
		t.Fatal(err)
	}
	back, logqBack, err := dec.Decode(z)
	if err != nil {
		t.Fatal(err)
	}
	var maxErr, moved float64
	for i := range y {
		maxErr = math.Max(maxErr, math.Abs(back[i]-y[i]))
		moved = math.Max(moved, math.Abs(z[i]-y[i]))
	}
	var lqErr float64
	for b := range logq {
		lqErr = math.Max(lqErr, math.Abs(logq[b]-logqBack[b])/math.Abs(logq[b]))
	}
	t.Logf("max |decode(encode(y)) − y| = %.3g; max |z − y| = %.3g (the flow is not the identity); log q relative difference %.3g",
		maxErr, moved, lqErr)
	if maxErr > 1e-4 {
		t.Errorf("round-trip error %.3g > 1e-4", maxErr)
	}
	if moved < 0.1 {
		t.Errorf("the random weights left the flow near the identity (max |z − y| = %g)", moved)
	}
	if lqErr > 1e-4 {
		t.Errorf("log q forward and back differ by %g (relative)", lqErr)
	}
	got := make([]uint8, len(back))
	pre.Pixels(got, back)
	if !slices.Equal(got, pix) {
		t.Error("decoded pixels differ from the originals")
	}
}

func seqInts(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// A run interrupted after 2 steps and resumed (trainer checkpoint + the NLL's State in the same place)
// ends with the same weights, bit for bit, as an uninterrupted 4-step run; the data order, flips and
// dequantisation noise all resume.
func TestNLLResumeBitForBit(t *testing.T) {
	sp, _ := images.ParseSpec("synthetic:40")
	data, _, err := sp.Load(images.LoadOptions{Size: 8, TestFraction: -1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	flow := tinyFlow(t, 8, 3, "")
	newObj := func() *NLL { return &NLL{Flow: flow, Data: data, Flip: true, DataSeed: 11} }
	run := func(obj *NLL, steps int64, out string, resume bool) *layers.Store {
		store := layers.NewStore(tensor.Float32, 1)
		tr, err := train.New(store, obj, train.Config{Steps: steps, Batch: 16, LR: 3e-3, Seed: 5, Out: out, LogEvery: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		if resume {
			if err := tr.Resume(out); err != nil {
				t.Fatal(err)
			}
		}
		if err := tr.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		return store
	}
	full := run(newObj(), 4, t.TempDir(), false)

	dir := t.TempDir()
	first := newObj()
	run(first, 2, dir, false)
	state := first.State() // what the trainer's checkpoint Extra map would carry
	if state[ExtraDataPosition] != "32" {
		t.Errorf("data position after 2 steps of 16: %s", state[ExtraDataPosition])
	}
	second := newObj()
	if err := second.Restore(state); err != nil {
		t.Fatal(err)
	}
	resumed := run(second, 4, dir, true)
	for _, n := range full.Names() {
		a, _ := full.Get(n)
		b, _ := resumed.Get(n)
		if !slices.Equal(a.Float32s(), b.Float32s()) {
			t.Errorf("parameter %s differs after resuming", n)
		}
	}
	if second.DataPosition() != 64 {
		t.Errorf("final data position %d, want 64", second.DataPosition())
	}
	if err := newObj().Restore(map[string]string{ExtraDataPosition: "3", ExtraDataSeed: "12"}); err == nil || !strings.Contains(err.Error(), "data seed") {
		t.Errorf("restoring another seed's position: %v", err)
	}
	if err := newObj().Restore(map[string]string{ExtraDataPosition: "3", ExtraDataLen: "41"}); err == nil || !strings.Contains(err.Error(), "41 images") {
		t.Errorf("restoring another data set's position: %v", err)
	}
}

func TestNLLErrors(t *testing.T) {
	data := fashionDataset(t)
	store := layers.NewStore(tensor.Float64, 0)
	for _, c := range []struct {
		obj  *NLL
		want string
	}{
		{&NLL{Data: data}, "needs a Flow"},
		{&NLL{Flow: tinyFlow(t, 16, 1, ""), Data: data}, "the data are 1×32×32 images, the flow wants 1×16×16"},
		{&NLL{Flow: tinyFlow(t, 32, 3, ""), Data: data}, "the flow wants 3×32×32"},
		{&NLL{Flow: tinyFlow(t, 32, 1, ""), Data: data, Pre: Preprocess{Alpha: 0.6}}, "squeeze"},
	} {
		if _, err := c.obj.Build(layers.NewScope(G.NewGraph(), store), 4); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
	if err := (&NLL{}).Feed(nil); err == nil {
		t.Error("Feed before Build accepted")
	}
}

// The same check in float32 (the image models' usual dtype). The graph sums 1024 prior terms per image in
// float32: partial sums reach ≈ 7000 nats, so each addition rounds by up to ε·7000 ≈ 4e-4 nats, and over
// 1024 terms that is ≈ 0.01 nats per image ≈ 1.6e-5 bits/dim (what this machine gives); the tolerance is
// therefore 5e-5 bits/dim rather than 1e-6.
func TestNLLIdentityBitsPerDimFloat32(t *testing.T) {
	data := fashionDataset(t)
	flow := tinyFlow(t, 32, 1, "laplace")
	store := layers.NewStore(tensor.Float32, 1)
	ev, err := EvalBitsPerDim(flow, store, data, 64, Preprocess{Fixed: true, U: 0.5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("float32: %.9f canvas bits/dim (reference 9.555760), %.9f per real pixel", ev.BitsPerDimCanvas, ev.BitsPerDim)
	if math.Abs(ev.BitsPerDimCanvas-9.555760) > 5e-5 {
		t.Errorf("float32 canvas bits/dim %.9f, reference 9.555760", ev.BitsPerDimCanvas)
	}
	// The same rounding per image, spread over 784 instead of 1024 values.
	if math.Abs(ev.BitsPerDim-9.555760*1024/784) > 5e-5*1024/784 {
		t.Errorf("float32 real-pixel bits/dim %.9f, reference×1024/784 %.9f", ev.BitsPerDim, 9.555760*1024/784)
	}
}

// BenchmarkNLLFeed measures drawing, dequantising and letting one batch of 64 padded Fashion-MNIST images.
func BenchmarkNLLFeed(b *testing.B) {
	sp, _ := images.ParseSpec("fashion-mnist:" + fashion64)
	data, _, err := sp.Load(images.LoadOptions{Size: 32, TestFraction: -1})
	if err != nil {
		b.Fatal(err)
	}
	cfg, _ := models.Preset("rgflow-tiny", 32, 1)
	flow, _ := models.Build(cfg)
	obj := &NLL{Flow: flow, Data: data, Flip: true}
	if _, err := obj.Build(layers.NewScope(G.NewGraph(), layers.NewStore(tensor.Float32, 1)), 64); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	b.ResetTimer()
	for range b.N {
		if err := obj.Feed(rng); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNLLStepEngines times one maximum-likelihood training step of the model bench/rgflow_torch.py
// builds in PyTorch (rgflow-small with the input ActNorm, width 64 and 96; 32×32 grey synthetic images,
// batch 32, float32, one worker) with either engine. Run it with -cpu 1 for the one-thread comparison;
// cpu-ms/op is the process's CPU time per step (see runStepBench).
func BenchmarkNLLStepEngines(b *testing.B) {
	for _, width := range []int{64, 96} {
		for _, engine := range []string{models.EngineFused, models.EngineGraph} {
			b.Run(fmt.Sprintf("width=%d/%s", width, engine), func(b *testing.B) {
				cfg, err := models.Preset("rgflow-small", 32, 1)
				if err != nil {
					b.Fatal(err)
				}
				cfg.Width, cfg.InputActNorm, cfg.Engine = width, true, engine
				flow, err := models.Build(cfg)
				if err != nil {
					b.Fatal(err)
				}
				sp, err := images.ParseSpec("synthetic:256")
				if err != nil {
					b.Fatal(err)
				}
				data, _, err := sp.Load(images.LoadOptions{Size: 32, Channels: 1, TestFraction: -1, Seed: 1})
				if err != nil {
					b.Fatal(err)
				}
				runStepBench(b, layers.NewStore(tensor.Float32, 1), &NLL{Flow: flow, Data: data, DataSeed: 1}, 32, 1)
			})
		}
	}
}
