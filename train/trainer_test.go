package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/checkpoints"
	"rgflow/layers"
)

// mlpObjective is a toy regression: y = sin(2x₀) + x₁/2 + noise/10 with x ~ N(0, 1), all drawn from the
// trainer's rng in Feed, fitted by a 2-layer tanh MLP under mean squared error. nanAt > 0 makes the nanAt-th
// Feed put a NaN into the batch.
type mlpObjective struct {
	in, hidden int
	nanAt      int

	feeds  int
	x, y   *G.Node
	xt, yt *tensor.Dense
}

func (o *mlpObjective) Build(s *layers.Scope, batch int) (*G.Node, error) {
	o.x = s.Input("x", batch, o.in)
	o.y = s.Input("y", batch, 1)
	w0 := s.Param("mlp/w0", []int{o.in, o.hidden}, layers.GlorotUniform(1))
	b0 := s.Param("mlp/b0", []int{o.hidden}, layers.Normal(0.1))
	w1 := s.Param("mlp/w1", []int{o.hidden, 1}, layers.GlorotUniform(1))
	b1 := s.Param("mlp/b1", []int{1}, layers.Zeros)
	h := G.Must(G.Tanh(G.Must(G.BroadcastAdd(G.Must(G.Mul(o.x, w0)), b0, nil, []byte{0}))))
	out := G.Must(G.BroadcastAdd(G.Must(G.Mul(h, w1)), b1, nil, []byte{0}))
	loss := G.Must(G.Mean(G.Must(G.Square(G.Must(G.Sub(out, o.y))))))
	o.xt = tensor.New(tensor.WithShape(batch, o.in), tensor.Of(s.Dtype()))
	o.yt = tensor.New(tensor.WithShape(batch, 1), tensor.Of(s.Dtype()))
	return loss, nil
}

func (o *mlpObjective) Feed(rng *rand.Rand) error {
	o.feeds++
	b := o.xt.Shape()[0]
	x := make([]float64, b*o.in)
	y := make([]float64, b)
	for i := range b {
		for j := range o.in {
			x[i*o.in+j] = rng.NormFloat64()
		}
		y[i] = math.Sin(2*x[i*o.in]) + 0.1*rng.NormFloat64()
		if o.in > 1 {
			y[i] += x[i*o.in+1] / 2
		}
	}
	if o.feeds == o.nanAt {
		x[0] = math.NaN()
	}
	layers.SetData(o.xt, x)
	layers.SetData(o.yt, y)
	if err := G.Let(o.x, o.xt); err != nil {
		return err
	}
	return G.Let(o.y, o.yt)
}

func (o *mlpObjective) Metrics() map[string]float64 {
	return map[string]float64{"feeds": float64(o.feeds)}
}

// newToy returns a fresh store (initialised from initSeed) and a trainer for the toy objective.
func newToy(t *testing.T, dt tensor.Dtype, initSeed uint64, cfg Config, nanAt int) (*layers.Store, *Trainer) {
	t.Helper()
	store := layers.NewStore(dt, initSeed)
	tr, err := New(store, &mlpObjective{in: 2, hidden: 8, nanAt: nanAt}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Error(err)
		}
	})
	return store, tr
}

// toyConfig exercises every part of the update: a warm-up cosine schedule, AdamW decay and clipping that
// triggers on some steps and not others.
func toyConfig(steps int64, out string) Config {
	return Config{
		Steps:           steps,
		Batch:           16,
		Schedule:        Cosine{Peak: 0.05, Final: 0.005, Warmup: 5, Total: 40},
		Optimizer:       AdamConfig{AdamW: true, WeightDecay: 0.01},
		ClipNorm:        0.5,
		LogEvery:        1,
		CheckpointEvery: -1,
		Seed:            42,
		Out:             out,
	}
}

// recorder collects each step's loss (and, when snap is set, a copy of the weights after every step).
type recorder struct {
	losses  []float64
	clipped int
	weights map[int64]map[string][]float64
	store   *layers.Store
}

func (r *recorder) hook() Hook {
	return Hook{Name: "record", Fn: func(rec Record) error {
		r.losses = append(r.losses, rec.Loss)
		if rec.Clipped {
			r.clipped++
		}
		if r.weights != nil {
			r.weights[rec.Step] = weightsOf(r.store)
		}
		return nil
	}}
}

func weightsOf(s *layers.Store) map[string][]float64 {
	out := map[string][]float64{}
	for _, n := range s.Names() {
		p, _ := s.Get(n)
		out[n] = layers.Float64s(p)
	}
	return out
}

// sameBits compares two weight sets bit for bit (float32 values convert to float64 exactly).
func sameBits(t *testing.T, what string, a, b map[string][]float64) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d vs %d parameters", what, len(a), len(b))
	}
	for n, av := range a {
		bv := b[n]
		for i := range av {
			if math.Float64bits(av[i]) != math.Float64bits(bv[i]) {
				t.Fatalf("%s: %s[%d] = %v vs %v", what, n, i, av[i], bv[i])
			}
		}
	}
}

func sameLosses(t *testing.T, what string, a, b []float64) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d vs %d losses", what, len(a), len(b))
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			t.Fatalf("%s: loss of step %d = %v vs %v", what, i+1, a[i], b[i])
		}
	}
}

// uninterrupted trains 2N = 40 steps in one go and returns the losses and final weights.
func uninterrupted(t *testing.T, dt tensor.Dtype) ([]float64, map[string][]float64) {
	var rec recorder
	cfg := toyConfig(40, t.TempDir())
	cfg.Hooks.OnStep = []Hook{rec.hook()}
	store, tr := newToy(t, dt, 1, cfg, 0)
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec.clipped == 0 || rec.clipped == len(rec.losses) {
		t.Fatalf("clipping triggered on %d of %d steps; the test wants some of each", rec.clipped, len(rec.losses))
	}
	if rec.losses[len(rec.losses)-1] > rec.losses[0]/2 {
		t.Errorf("did not learn: loss %v → %v", rec.losses[0], rec.losses[len(rec.losses)-1])
	}
	return rec.losses, weightsOf(store)
}

func TestResumeIsExact(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			wantLoss, wantW := uninterrupted(t, dt)

			dir := t.TempDir()
			var first recorder
			cfg := toyConfig(20, dir) // N steps; the schedule's Total stays 40
			cfg.Hooks.OnStep = []Hook{first.hook()}
			_, tr := newToy(t, dt, 1, cfg, 0)
			if err := tr.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := tr.Close(); err != nil {
				t.Fatal(err)
			}

			// A fresh process: new store initialised differently, new objective, new trainer, Resume.
			var second recorder
			cfg = toyConfig(40, dir)
			cfg.Hooks.OnStep = []Hook{second.hook()}
			store, tr2 := newToy(t, dt, 999, cfg, 0)
			if err := tr2.Resume(dir); err != nil {
				t.Fatal(err)
			}
			if tr2.Step() != 20 {
				t.Fatalf("resumed at step %d, want 20", tr2.Step())
			}
			if err := tr2.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			sameLosses(t, "N + resume + N vs 2N", append(first.losses, second.losses...), wantLoss)
			sameBits(t, "final weights", weightsOf(store), wantW)
		})
	}
}

func TestInterruptWritesCheckpointAndResumes(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			wantLoss, wantW := uninterrupted(t, dt)

			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var first recorder
			cfg := toyConfig(40, dir)
			cfg.Hooks.OnStep = []Hook{first.hook(), {Name: "ctrl-c", Fn: func(r Record) error {
				if r.Step == 13 {
					cancel() // as ContextWithSignals does on SIGINT
				}
				return nil
			}}}
			_, tr := newToy(t, dt, 1, cfg, 0)
			err := tr.Run(ctx)
			if !errors.Is(err, ErrInterrupted) {
				t.Fatalf("Run after cancel: %v, want ErrInterrupted", err)
			}
			t.Log(err)
			for _, want := range []string{"interrupted at step 13", "--resume " + dir, "step-0000013.safetensors"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if tr.Step() != 13 {
				t.Errorf("stopped at step %d, want 13 (the step in progress is finished)", tr.Step())
			}

			// Simulate a crash mid-log after the checkpoint: a later line and a torn one, both to be dropped.
			f, err := os.OpenFile(filepath.Join(dir, metricsFile), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprint(f, `{"step":14,"loss":1}`+"\n"+`{"step":15,"lo`)
			f.Close()

			var second recorder
			cfg = toyConfig(40, dir)
			cfg.Hooks.OnStep = []Hook{second.hook()}
			store, tr2 := newToy(t, dt, 5, cfg, 0)
			if err := tr2.Resume(dir); err != nil {
				t.Fatal(err)
			}
			if err := tr2.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			sameLosses(t, "interrupted + resumed vs uninterrupted", append(first.losses, second.losses...), wantLoss)
			sameBits(t, "final weights", weightsOf(store), wantW)

			// metrics.jsonl: every line is JSON, steps 1..40 once each, with the objective's metric.
			steps := readMetrics(t, filepath.Join(dir, metricsFile))
			if len(steps) != 40 {
				t.Fatalf("metrics.jsonl has %d lines, want 40", len(steps))
			}
			for i, s := range steps {
				if s != int64(i+1) {
					t.Fatalf("metrics.jsonl line %d is step %d", i+1, s)
				}
			}
		})
	}
}

// readMetrics parses every line of a metrics.jsonl and returns the steps.
func readMetrics(t *testing.T, path string) []int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d %q: %v", len(steps)+1, sc.Text(), err)
		}
		for _, k := range []string{"step", "loss", "loss_mean", "lr", "grad_norm", "clipped", "wall_s", "feeds"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("line %d %q lacks %q", len(steps)+1, sc.Text(), k)
			}
		}
		steps = append(steps, int64(m["step"].(float64)))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return steps
}

func TestNaNStopsWithoutUpdate(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			dir := t.TempDir()
			cfg := toyConfig(40, dir)
			cfg.CheckpointEvery = 5
			cfg.Keep = 2
			store, tr := newToy(t, dt, 1, cfg, 12)
			rec := recorder{weights: map[int64]map[string][]float64{}, store: store}
			tr.cfg.Hooks.OnStep = []Hook{rec.hook()}
			err := tr.Run(context.Background())
			var nf *NonFiniteError
			if !errors.As(err, &nf) || !errors.Is(err, ErrNonFinite) {
				t.Fatalf("Run: %v, want a *NonFiniteError", err)
			}
			t.Log(err)
			good := filepath.Join(CheckpointDir(dir), "step-0000010.safetensors")
			for _, want := range []string{"step 12:", "the loss is NaN", "without applying the update", good, "--resume " + dir} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if tr.Step() != 11 || nf.Step != 12 {
				t.Errorf("Step() = %d, error step %d; want 11 and 12", tr.Step(), nf.Step)
			}
			sameBits(t, "weights after the failed step", weightsOf(store), rec.weights[11])

			// The last good checkpoint is intact, loadable, still the newest (keep = 2 left step 5 too), and
			// resuming from it gives the weights of step 10.
			names, _ := filepath.Glob(filepath.Join(CheckpointDir(dir), "*"))
			if len(names) != 2 || filepath.Base(names[1]) != "step-0000010.safetensors" {
				t.Errorf("checkpoint dir holds %v, want steps 5 and 10", names)
			}
			if _, err := checkpoints.Load(good); err != nil {
				t.Fatal(err)
			}
			store2, tr2 := newToy(t, dt, 3, toyConfig(40, dir), 0)
			if err := tr2.Resume(dir); err != nil {
				t.Fatal(err)
			}
			if tr2.Step() != 10 {
				t.Errorf("resumed at %d, want 10", tr2.Step())
			}
			sameBits(t, "resumed weights", weightsOf(store2), rec.weights[10])
		})
	}
}

// TestGradientsAreRead checks the gradients the trainer reads out of the machine against central finite
// differences of the loss (the trainer relies on G.Read copies, not on node values that registers may reuse).
func TestGradientsAreRead(t *testing.T) {
	cfg := toyConfig(1, "")
	store, tr := newToy(t, tensor.Float64, 1, cfg, 0)
	obj := tr.obj.(*mlpObjective)
	if err := obj.Feed(rand.New(rand.NewPCG(1, 2))); err != nil {
		t.Fatal(err)
	}
	wk := tr.workers[0]
	lossAt := func() float64 {
		if err := wk.vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		defer wk.vm.Reset()
		l, err := scalarValue(wk.lossVal)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	lossAt()
	grads := map[string][]float64{}
	for i, n := range tr.names {
		grads[n] = layers.Float64s(wk.gradVals[i].(*tensor.Dense))
	}
	const h = 1e-6
	for _, n := range tr.names {
		p, _ := store.Get(n)
		w := p.Float64s()
		for i := range w {
			orig := w[i]
			w[i] = orig + h
			lp := lossAt()
			w[i] = orig - h
			lm := lossAt()
			w[i] = orig
			fd := (lp - lm) / (2 * h)
			// Central differences: truncation O(h²·f''') ≈ 1e-12, rounding ≈ 1e-16/h = 1e-10.
			if d := math.Abs(fd - grads[n][i]); d > 1e-8*math.Max(1, math.Abs(fd)) {
				t.Errorf("∂L/∂%s[%d] = %.12g, finite difference %.12g", n, i, grads[n][i], fd)
			}
		}
	}
}

func TestMetricsAndProgress(t *testing.T) {
	dir := t.TempDir()
	var progress bytes.Buffer
	cfg := toyConfig(10, dir)
	cfg.LogEvery = 3
	cfg.Progress = &progress
	var logged []int64
	var ckpts []string
	cfg.Hooks.OnLog = []Hook{{Name: "log", Fn: func(r Record) error { logged = append(logged, r.Step); return nil }}}
	cfg.Hooks.OnCheckpoint = []Hook{{Name: "ckpt", Fn: func(r Record) error { ckpts = append(ckpts, r.Checkpoint); return nil }}}
	_, tr := newToy(t, tensor.Float32, 1, cfg, 0)
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	steps := readMetrics(t, filepath.Join(dir, metricsFile))
	if fmt.Sprint(steps) != "[3 6 9 10]" || fmt.Sprint(logged) != "[3 6 9 10]" {
		t.Errorf("logged steps %v (metrics.jsonl) and %v (OnLog), want [3 6 9 10]", steps, logged)
	}
	if len(ckpts) != 1 || filepath.Base(ckpts[0]) != "step-0000010.safetensors" {
		t.Errorf("checkpoints %v, want only the final one", ckpts)
	}
	lines := strings.Split(strings.TrimSpace(progress.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[3], "step 10/10  loss ") {
		t.Errorf("plain progress:\n%s", progress.String())
	}

	// A fresh (not resumed) run into a directory with checkpoints is refused.
	_, tr2 := newToy(t, tensor.Float32, 1, toyConfig(10, dir), 0)
	if err := tr2.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "--resume "+dir) {
		t.Errorf("fresh run over an existing run: %v", err)
	}
	// A hook error stops the run and is named.
	cfg = toyConfig(10, "")
	cfg.Hooks.OnStep = []Hook{{Name: "boom", Fn: func(Record) error { return errors.New("bang") }}}
	_, tr3 := newToy(t, tensor.Float32, 1, cfg, 0)
	if err := tr3.Run(context.Background()); err == nil || !strings.Contains(err.Error(), `"boom"`) {
		t.Errorf("failing hook: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no steps":     {Batch: 4},
		"no batch":     {Steps: 4},
		"negative lr":  {Steps: 4, Batch: 4, LR: -1},
		"bad beta":     {Steps: 4, Batch: 4, Optimizer: AdamConfig{Beta1: 1}},
		"negative log": {Steps: 4, Batch: 4, LogEvery: -1},
	} {
		store := layers.NewStore(tensor.Float64, 1)
		if _, err := New(store, &mlpObjective{in: 1, hidden: 2}, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// TestRunContinuesAfterInterrupt: a second Run on the same trainer continues the run it interrupted.
func TestRunContinuesAfterInterrupt(t *testing.T) {
	wantLoss, wantW := uninterrupted(t, tensor.Float64)
	ctx, cancel := context.WithCancel(context.Background())
	var rec recorder
	cfg := toyConfig(40, t.TempDir())
	cfg.Hooks.OnStep = []Hook{rec.hook(), {Name: "stop", Fn: func(r Record) error {
		if r.Step == 7 {
			cancel()
		}
		return nil
	}}}
	store, tr := newToy(t, tensor.Float64, 1, cfg, 0)
	if err := tr.Run(ctx); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("first Run: %v", err)
	}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatalf("second Run: %v", err)
	}
	sameLosses(t, "two Runs vs one", rec.losses, wantLoss)
	sameBits(t, "final weights", weightsOf(store), wantW)
}

func TestContextWithSignals(t *testing.T) {
	ctx, stop := ContextWithSignals(context.Background())
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("SIGINT did not cancel the context")
	}
}

// BenchmarkTrainerStep measures one full step of the toy objective (Feed, forward+backward, clip, AdamW).
func BenchmarkTrainerStep(b *testing.B) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		b.Run(dt.String(), func(b *testing.B) {
			store := layers.NewStore(dt, 1)
			cfg := toyConfig(1<<40, "")
			cfg.Batch = 256
			tr, err := New(store, &mlpObjective{in: 2, hidden: 64}, cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tr.trainStep(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
