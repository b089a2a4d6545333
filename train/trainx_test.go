package train

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/checkpoints"
	"rgflow/layers"
)

// arraysBits compares two lists of checkpoint arrays bit for bit.
func arraysBits(t *testing.T, what string, a, b []checkpoints.Array) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d vs %d arrays", what, len(a), len(b))
	}
	for i := range a {
		if a[i].Name != b[i].Name || !slices.Equal(a[i].Shape, b[i].Shape) {
			t.Fatalf("%s: array %d is %q %v vs %q %v", what, i, a[i].Name, a[i].Shape, b[i].Name, b[i].Shape)
		}
		var eq bool
		switch x := a[i].Data.(type) {
		case []float64:
			y, ok := b[i].Data.([]float64)
			eq = ok && slices.EqualFunc(x, y, func(p, q float64) bool { return math.Float64bits(p) == math.Float64bits(q) })
		case []float32:
			y, ok := b[i].Data.([]float32)
			eq = ok && slices.EqualFunc(x, y, func(p, q float32) bool { return math.Float32bits(p) == math.Float32bits(q) })
		case []int64:
			y, ok := b[i].Data.([]int64)
			eq = ok && slices.Equal(x, y)
		}
		if !eq {
			t.Fatalf("%s: %q differs: %v vs %v", what, a[i].Name, a[i].Data, b[i].Data)
		}
	}
}

// emaRun is what an EMA run leaves behind.
type emaRun struct {
	losses  []float64
	weights map[string][]float64
	ema     []checkpoints.Array
	updates int64
	adam    []checkpoints.Array
}

func finish(tr *Trainer, store *layers.Store, losses []float64) emaRun {
	return emaRun{losses: losses, weights: weightsOf(store), ema: tr.EMA().State(), updates: tr.EMA().Updates(),
		adam: tr.Optimizer().State()}
}

// emaDecay 0.5 makes the warm-up min(decay, (1+n)/(10+n)) pick (1+n)/(10+n) for n < 8 and the decay after, so
// 40 steps exercise both branches.
const emaDecay = 0.5

func TestEMAInterruptedResumeIsExact(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			// Uninterrupted 40 steps, recording the weights after every step.
			var rec recorder
			cfg := toyConfig(40, t.TempDir())
			cfg.EMADecay = emaDecay
			cfg.Hooks.OnStep = []Hook{rec.hook()}
			store, tr := newToy(t, dt, 1, cfg, 0)
			initial := weightsOf(store)
			rec.store, rec.weights = store, map[int64]map[string][]float64{}
			if err := tr.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			want := finish(tr, store, rec.losses)
			if want.updates != 40 {
				t.Fatalf("EMA has %d updates after 40 steps", want.updates)
			}

			// The averages against the formula evaluated on the host from the recorded weights. float64: the
			// same operations in the same order, so only a fused multiply-add could differ (1e-12); float32:
			// 40 updates each rounding to float32 (ε = 6e-8) on O(1) values stay below 1e-5.
			tol := 1e-12
			if dt == tensor.Float32 {
				tol = 1e-5
			}
			host := map[string][]float64{}
			for n, w := range initial {
				host[n] = slices.Clone(w)
			}
			for step := int64(1); step <= 40; step++ {
				d := math.Min(emaDecay, float64(1+step)/float64(10+step))
				for n, avg := range host {
					for i := range avg {
						avg[i] -= (1 - d) * (avg[i] - rec.weights[step][n][i])
					}
				}
			}
			moved := false
			for _, a := range want.ema {
				got, _ := float64sOf(a)
				for i, g := range got {
					h := host[a.Name][i]
					if math.Abs(g-h) > tol*math.Max(1, math.Abs(h)) {
						t.Fatalf("EMA of %s[%d] = %v, host formula %v", a.Name, i, g, h)
					}
					moved = moved || g != want.weights[a.Name][i]
				}
			}
			if !moved {
				t.Fatal("the EMA equals the weights: the test would not see a missing average")
			}

			// The same run cancelled after step 13 (the SIGINT path), then resumed in a fresh trainer.
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var first recorder
			cfg = toyConfig(40, dir)
			cfg.EMADecay = emaDecay
			cfg.Hooks.OnStep = []Hook{first.hook(), {Name: "ctrl-c", Fn: func(r Record) error {
				if r.Step == 13 {
					cancel()
				}
				return nil
			}}}
			_, tr1 := newToy(t, dt, 1, cfg, 0)
			if err := tr1.Run(ctx); !errors.Is(err, ErrInterrupted) {
				t.Fatalf("Run after cancel: %v, want ErrInterrupted", err)
			}
			c, err := checkpoints.Load(tr1.LastCheckpoint())
			if err != nil {
				t.Fatal(err)
			}
			if len(c.EMA) != 4 || c.Extra[extraEMAUpdate] != "13" {
				t.Fatalf("checkpoint holds %d EMA arrays with %q updates, want 4 and 13", len(c.EMA), c.Extra[extraEMAUpdate])
			}
			var second recorder
			cfg = toyConfig(40, dir)
			cfg.EMADecay = emaDecay
			cfg.Hooks.OnStep = []Hook{second.hook()}
			store2, tr2 := newToy(t, dt, 77, cfg, 0)
			if err := tr2.Resume(dir); err != nil {
				t.Fatal(err)
			}
			if err := tr2.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := finish(tr2, store2, append(first.losses, second.losses...))
			sameLosses(t, "losses", got.losses, want.losses)
			sameBits(t, "weights", got.weights, want.weights)
			arraysBits(t, "EMA", got.ema, want.ema)
			arraysBits(t, "Adam state", got.adam, want.adam)
			if got.updates != want.updates {
				t.Fatalf("EMA updates %d, want %d", got.updates, want.updates)
			}

			// LoadRunWeights picks the averages when asked, the raw weights otherwise.
			for _, useEMA := range []bool{false, true} {
				fresh := layers.NewStore(dt, 3)
				bind(t, fresh)
				l, err := LoadRunWeights(fresh, dir, useEMA)
				if err != nil {
					t.Fatal(err)
				}
				if !l.HasEMA || l.EMA != useEMA || l.EMADecay != emaDecay || l.EMAUpdates != 40 || l.Step != 40 {
					t.Fatalf("LoadRunWeights(useEMA=%v) = %+v", useEMA, l)
				}
				wantW := want.weights
				if useEMA {
					wantW = map[string][]float64{}
					for _, a := range want.ema {
						wantW[a.Name], _ = float64sOf(a)
					}
				}
				sameBits(t, "loaded weights", weightsOf(fresh), wantW)
			}
		})
	}
}

// bind creates the toy objective's parameters in store.
func bind(t *testing.T, store *layers.Store) {
	t.Helper()
	if _, err := (&mlpObjective{in: 2, hidden: 8}).Build(layers.NewScope(G.NewGraph(), store), 1); err != nil {
		t.Fatal(err)
	}
}

func TestEMAConfig(t *testing.T) {
	for _, d := range []float64{-0.1, 1, 1.5, math.NaN()} {
		cfg := toyConfig(1, "")
		cfg.EMADecay = d
		if _, err := New(layers.NewStore(tensor.Float64, 1), &mlpObjective{in: 2, hidden: 8}, cfg); err == nil ||
			!strings.Contains(err.Error(), "EMADecay") {
			t.Errorf("EMADecay %v: error %v, want one naming EMADecay", d, err)
		}
	}
	// Without EMA the trainer has none and checkpoints hold none.
	dir := t.TempDir()
	_, tr := newToy(t, tensor.Float64, 1, toyConfig(3, dir), 0)
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if tr.EMA() != nil {
		t.Fatal("EMA without EMADecay")
	}
	c, err := checkpoints.Load(tr.LastCheckpoint())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.EMA) != 0 {
		t.Fatalf("checkpoint without EMA holds %d averages", len(c.EMA))
	}
	// Resuming it with EMA on starts the average at the restored weights: after steps 4 and 5 it is
	// w3 → w3 − (1−d₁)(w3 − w4) → … − (1−d₂)(· − w5) with d_n = min(0.9, (1+n)/(10+n)) = 2/11, 3/12
	// (float64, the same operations: exact up to a fused multiply-add, 1e-12).
	var rec recorder
	cfg := toyConfig(5, dir)
	cfg.EMADecay = 0.9
	cfg.Hooks.OnStep = []Hook{rec.hook()}
	store, tr2 := newToy(t, tensor.Float64, 1, cfg, 0)
	rec.store, rec.weights = store, map[int64]map[string][]float64{}
	if err := tr2.Resume(dir); err != nil {
		t.Fatal(err)
	}
	host := weightsOf(store)
	if err := tr2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if tr2.EMA().Updates() != 2 {
		t.Fatalf("EMA started on resume has %d updates after 2 steps, want 2", tr2.EMA().Updates())
	}
	for k, d := range []float64{2.0 / 11, 3.0 / 12} {
		for n, avg := range host {
			for i := range avg {
				avg[i] -= (1 - d) * (avg[i] - rec.weights[int64(4+k)][n][i])
			}
		}
	}
	for _, n := range tr2.EMA().Names() {
		avg, _ := tr2.EMA().Average(n)
		for i, a := range layers.Float64s(avg) {
			if math.Abs(a-host[n][i]) > 1e-12*math.Max(1, math.Abs(a)) {
				t.Fatalf("EMA of %s[%d] = %v, want %v", n, i, a, host[n][i])
			}
		}
	}
}

func TestFrozenParameters(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			dir := t.TempDir()
			store := layers.NewStore(dt, 1)
			bind(t, store) // the parameters exist, as after loading a trained model
			if err := store.Freeze("mlp/w0", "mlp/b0"); err != nil {
				t.Fatal(err)
			}
			before := weightsOf(store)
			cfg := toyConfig(10, dir)
			cfg.EMADecay = 0.9
			tr, err := New(store, &mlpObjective{in: 2, hidden: 8}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if !slices.Equal(tr.Frozen(), []string{"mlp/w0", "mlp/b0"}) || !slices.Equal(tr.Params(), []string{"mlp/w1", "mlp/b1"}) {
				t.Fatalf("frozen %q, trained %q", tr.Frozen(), tr.Params())
			}
			if err := tr.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			after := weightsOf(store)
			for n := range before {
				same := slices.EqualFunc(before[n], after[n], func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) })
				if frozen := store.Frozen(n); frozen != same {
					t.Errorf("%s: frozen %v, unchanged after 10 steps %v", n, frozen, same)
				}
			}
			for _, a := range tr.Optimizer().State() {
				if strings.HasSuffix(a.Name, "/w0") || strings.HasSuffix(a.Name, "/b0") {
					t.Errorf("Adam keeps state %q for a frozen parameter", a.Name)
				}
			}
			if slices.ContainsFunc(tr.EMA().Names(), store.Frozen) {
				t.Errorf("EMA averages frozen parameters: %q", tr.EMA().Names())
			}

			// The checkpoint holds every weight and records which are frozen.
			c, err := checkpoints.Load(tr.LastCheckpoint())
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Weights) != 4 || c.Extra[extraFrozen] != `["mlp/b0","mlp/w0"]` {
				t.Fatalf("checkpoint: %d weights, frozen %q", len(c.Weights), c.Extra[extraFrozen])
			}
			fresh := layers.NewStore(dt, 9)
			bind(t, fresh)
			l, err := LoadRunWeights(fresh, dir, false)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(l.Frozen, []string{"mlp/b0", "mlp/w0"}) || !slices.Equal(fresh.FrozenNames(), l.Frozen) {
				t.Fatalf("loaded frozen %q, store frozen %q", l.Frozen, fresh.FrozenNames())
			}
			sameBits(t, "round trip", weightsOf(fresh), after)

			// Resuming needs the same parameters frozen.
			cfg = toyConfig(20, dir)
			_, other := newToy(t, dt, 1, cfg, 0)
			if err := other.Resume(dir); err == nil || !strings.Contains(err.Error(), "frozen") {
				t.Fatalf("resume without the freeze: %v, want an error about frozen parameters", err)
			}
			tr3, err := New(fresh, &mlpObjective{in: 2, hidden: 8}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer tr3.Close()
			if err := tr3.Resume(dir); err != nil {
				t.Fatal(err)
			}
			if err := tr3.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			final := weightsOf(fresh)
			sameBits(t, "frozen after resume", map[string][]float64{"mlp/w0": final["mlp/w0"], "mlp/b0": final["mlp/b0"]},
				map[string][]float64{"mlp/w0": before["mlp/w0"], "mlp/b0": before["mlp/b0"]})
		})
	}
}

func TestFrozenErrors(t *testing.T) {
	store := layers.NewStore(tensor.Float64, 1)
	bind(t, store)
	if err := store.Freeze("mlp/w9"); err == nil || !strings.Contains(err.Error(), `"mlp/w9"`) {
		t.Errorf("Freeze of a missing name: %v", err)
	}
	if err := store.Freeze("mlp/"); err != nil {
		t.Fatal(err)
	}
	if _, err := New(store, &mlpObjective{in: 2, hidden: 8}, toyConfig(1, "")); err == nil || !strings.Contains(err.Error(), "all 4 parameters") {
		t.Errorf("everything frozen: %v, want an error saying nothing is trained", err)
	}
}

// bufObjective is the toy objective plus two buffers that Feed updates on the host and the loss reads: a
// feed counter and a running mean m of the targets, with loss = MSE + m². A resume that lost the buffers
// would change the losses after it.
type bufObjective struct {
	mlpObjective
	count, mean *tensor.Dense
}

func (o *bufObjective) Build(s *layers.Scope, batch int) (*G.Node, error) {
	loss, err := o.mlpObjective.Build(s, batch)
	if err != nil {
		return nil, err
	}
	s = s.Sub("stats")
	m := s.Buffer("ymean", []int{1}, nil)
	s.Buffer("feeds", []int{1}, nil)
	o.count, _ = s.Store().GetBuffer("stats/feeds")
	o.mean, _ = s.Store().GetBuffer("stats/ymean")
	return G.Add(loss, G.Must(G.Sum(G.Must(G.Square(m)))))
}

func (o *bufObjective) Feed(rng *rand.Rand) error {
	if err := o.mlpObjective.Feed(rng); err != nil {
		return err
	}
	y := layers.Float64s(o.yt)
	var s float64
	for _, v := range y {
		s += v
	}
	layers.SetData(o.mean, []float64{0.9*layers.Float64s(o.mean)[0] + 0.1*s/float64(len(y))})
	layers.SetData(o.count, []float64{layers.Float64s(o.count)[0] + 1})
	return nil
}

func TestBuffersResume(t *testing.T) {
	newBuf := func(cfg Config) (*layers.Store, *Trainer) {
		store := layers.NewStore(tensor.Float64, 1)
		tr, err := New(store, &bufObjective{mlpObjective: mlpObjective{in: 2, hidden: 8}}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return store, tr
	}
	var all recorder
	cfg := toyConfig(20, t.TempDir())
	cfg.Hooks.OnStep = []Hook{all.hook()}
	store, tr := newBuf(cfg)
	if slices.Contains(tr.Params(), "stats/ymean") {
		t.Fatal("a buffer is trained")
	}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, _ := store.GetBuffer("stats/feeds"); layers.Float64s(b)[0] != 20 {
		t.Fatalf("feed counter %v after 20 steps", layers.Float64s(b))
	}

	dir := t.TempDir()
	var first, second recorder
	cfg = toyConfig(8, dir)
	cfg.Hooks.OnStep = []Hook{first.hook()}
	_, tr1 := newBuf(cfg)
	if err := tr1.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, err := checkpoints.Load(tr1.LastCheckpoint())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Buffers) != 2 || c.Buffers[0].Name != "stats/feeds" || c.Buffers[0].Data.([]float64)[0] != 8 {
		t.Fatalf("checkpoint buffers %+v", c.Buffers)
	}
	cfg = toyConfig(20, dir)
	cfg.Hooks.OnStep = []Hook{second.hook()}
	store2, tr2 := newBuf(cfg)
	if err := tr2.Resume(dir); err != nil {
		t.Fatal(err)
	}
	if err := tr2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	sameLosses(t, "buffers across a resume", append(first.losses, second.losses...), all.losses)
	for _, n := range []string{"stats/feeds", "stats/ymean"} {
		a, _ := store.GetBuffer(n)
		b, _ := store2.GetBuffer(n)
		if math.Float64bits(layers.Float64s(a)[0]) != math.Float64bits(layers.Float64s(b)[0]) {
			t.Errorf("buffer %s: %v resumed vs %v", n, layers.Float64s(b), layers.Float64s(a))
		}
	}
	// A model without the buffers cannot resume this run.
	_, plain := newToy(t, tensor.Float64, 1, toyConfig(20, dir), 0)
	if err := plain.Resume(dir); err == nil || !strings.Contains(err.Error(), "buffer") {
		t.Fatalf("resume into a model without buffers: %v", err)
	}
}

// BenchmarkEMAUpdate is one moving-average update of 2¹⁸ parameters (four 256×256 tensors), the per-step
// cost EMA adds to training.
func BenchmarkEMAUpdate(b *testing.B) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		b.Run(dt.String(), func(b *testing.B) {
			store := layers.NewStore(dt, 1)
			var names []string
			for i := range 4 {
				n := "w" + string(rune('0'+i))
				store.Param(n, []int{256, 256}, layers.Normal(1))
				names = append(names, n)
			}
			e, err := NewEMA(store, names, 0.999)
			if err != nil {
				b.Fatal(err)
			}
			e.Start()
			b.SetBytes(int64(4 * 256 * 256 * dt.Size()))
			for b.Loop() {
				e.Update()
			}
		})
	}
}
