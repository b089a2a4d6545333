package losses

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/datasets/images"
	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/models"
	"rgflow/train"
	"rgflow/train/comm"
)

// shardRun is the outcome of a data-parallel training run: rank 0's loss and free energy (or NLL) per
// step and final weights.
type shardRun struct {
	loss, metric []float64
	weights      map[string][]float64
}

// parRun describes one run: ranks in-process ranks (train/comm.NewGroup) × workers workers each.
type parRun struct {
	workers, ranks int
	steps          int64
	out            string
	resume         bool
	stopAt         int64   // cancel the run's context after this step (0: never)
	lr             float64 // 0: 1e-3, torch's Adam default
}

// runShards trains a fresh copy of newObj's objective (one per rank, each with its own store initialised
// from the same seed) and checks that every rank ends with the same weights, bit for bit.
func runShards(t *testing.T, newObj func() train.ShardedObjective, metric string, batch int, p parRun) shardRun {
	t.Helper()
	if p.lr == 0 {
		p.lr = 1e-3
	}
	cs := []comm.Comm{comm.Single()}
	if p.ranks > 1 {
		var err error
		if cs, err = comm.NewGroup(p.ranks); err != nil {
			t.Fatal(err)
		}
	}
	runs := make([]shardRun, len(cs))
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for r, c := range cs {
		wg.Go(func() {
			store := layers.NewStore(tensor.Float64, 3)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			run := &runs[r]
			hook := train.Hook{Name: "record", Fn: func(rec train.Record) error {
				run.loss = append(run.loss, rec.Loss)
				run.metric = append(run.metric, rec.Metrics[metric])
				if rec.Step == p.stopAt {
					cancel()
				}
				return nil
			}}
			tr, err := train.New(store, newObj(), train.Config{
				Steps: p.steps, Batch: batch, LR: p.lr, Seed: 9, Workers: p.workers, Comm: c, Out: p.out,
				LogEvery: 5, CheckpointEvery: -1, Hooks: train.Hooks{OnStep: []train.Hook{hook}},
			})
			if err != nil {
				errs[r] = err
				return
			}
			defer tr.Close()
			if p.resume {
				if errs[r] = tr.Resume(p.out); errs[r] != nil {
					return
				}
			}
			if err := tr.Run(ctx); err != nil && !(p.stopAt > 0 && errors.Is(err, train.ErrInterrupted)) {
				errs[r] = err
				return
			}
			run.weights = map[string][]float64{}
			for _, n := range store.Names() {
				v, _ := store.Get(n)
				run.weights[n] = slices.Clone(v.Float64s())
			}
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("%d workers × %d ranks, rank %d: %v", p.workers, p.ranks, r, err)
		}
	}
	for r := 1; r < len(runs); r++ {
		for n, w := range runs[0].weights {
			if !slices.Equal(w, runs[r].weights[n]) {
				t.Fatalf("%d ranks: rank %d's %s differs from rank 0's", p.ranks, r, n)
			}
		}
	}
	return runs[0]
}

// closeRuns fails unless two runs' losses, metrics and weights agree to rel (relative, with an absolute
// floor of rel for values near zero).
func closeRuns(t *testing.T, what string, a, b shardRun, rel float64) {
	t.Helper()
	if len(a.loss) != len(b.loss) {
		t.Fatalf("%s: %d and %d steps", what, len(a.loss), len(b.loss))
	}
	near := func(x, y float64) bool { return math.Abs(x-y) <= rel*math.Max(1, math.Max(math.Abs(x), math.Abs(y))) }
	for i := range a.loss {
		if !near(a.loss[i], b.loss[i]) || !near(a.metric[i], b.metric[i]) {
			t.Fatalf("%s: step %d: loss %.17g vs %.17g, metric %.17g vs %.17g", what, i+1, a.loss[i], b.loss[i], a.metric[i], b.metric[i])
		}
	}
	for n, w := range a.weights {
		for i := range w {
			if !near(w[i], b.weights[n][i]) {
				t.Fatalf("%s: weight %s[%d]: %.17g vs %.17g", what, n, i, w[i], b.weights[n][i])
			}
		}
	}
}

func equalRuns(a, b shardRun) bool {
	if !slices.Equal(a.loss, b.loss) {
		return false
	}
	for n, w := range a.weights {
		if !slices.Equal(w, b.weights[n]) {
			return false
		}
	}
	return true
}

func reverseKLObjective(t *testing.T) func() train.ShardedObjective {
	t.Helper()
	act, err := lattice.NewPhi4(4, -1, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := models.Preset("neuralrg-small", 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	flow, err := models.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return func() train.ShardedObjective {
		return &ReverseKL{Flow: flow, Action: act, BetaStart: 0.5, BetaSteps: 10}
	}
}

func nllObjective(t *testing.T) func() train.ShardedObjective {
	t.Helper()
	sp, _ := images.ParseSpec("synthetic:40")
	data, _, err := sp.Load(images.LoadOptions{Size: 8, TestFraction: -1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	flow := tinyFlow(t, 8, 3, "")
	return func() train.ShardedObjective { return &NLL{Flow: flow, Data: data, Flip: true, DataSeed: 11} }
}

// TestShardedWorkerCounts: at a fixed global batch, 1, 2 and 3 workers (and 2 in-process ranks × 2 workers,
// the code path an MPI run takes) train the same run. The shards see the same samples bit for bit (see
// TestShardFeedIsSplitInvariant); only the order in which the batch mean and the gradient are summed
// differs, a relative change of a few ulps per step. Adam carries it forward, amplified in proportion to
// the learning rate (the NLL's loss, a sum of 192 O(1) terms per image that nearly cancel, moved by
// 2e-11–5e-10 relative at lr 1e-2 and by at most 5e-12 at lr 1e-3): 1e-10 relative over 20 steps at
// lr 1e-3.
func TestShardedWorkerCounts(t *testing.T) {
	for _, c := range []struct {
		name   string
		obj    func() train.ShardedObjective
		metric string
		batch  int
	}{
		{"reverse KL", reverseKLObjective(t), "free_energy", 7},
		{"NLL", nllObjective(t), "bits_per_dim", 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			one := runShards(t, c.obj, c.metric, c.batch, parRun{workers: 1, ranks: 1, steps: 20})
			if one.loss[0] == one.loss[19] {
				t.Fatal("the loss did not change over 20 steps: the test would not see a wrong update")
			}
			again := runShards(t, c.obj, c.metric, c.batch, parRun{workers: 1, ranks: 1, steps: 20})
			if !equalRuns(one, again) {
				t.Error("two 1-worker runs differ")
			}
			for _, p := range []parRun{{workers: 2, ranks: 1}, {workers: 3, ranks: 1}, {workers: 2, ranks: 2}} {
				p.steps = 20
				got := runShards(t, c.obj, c.metric, c.batch, p)
				closeRuns(t, fmt.Sprintf("1 worker vs %d workers × %d ranks", p.workers, p.ranks), one, got, 1e-10)
				if p.ranks == 1 {
					again := runShards(t, c.obj, c.metric, c.batch, p)
					if !equalRuns(got, again) {
						t.Errorf("two runs with %d workers differ: the worker-order sum should make them identical", p.workers)
					}
				}
			}
		})
	}
}

// TestShardedResumeOtherWorkerCount: a run interrupted after step 8 and resumed continues the uninterrupted
// run: bit for bit on the same worker count (the streams depend on the step and sample only, the data order
// on the position the checkpoint carries), and to rounding (1e-10, as above) on another worker count, where
// only the summation order changes.
func TestShardedResumeOtherWorkerCount(t *testing.T) {
	obj := reverseKLObjective(t)
	full := map[int]shardRun{}
	for _, w := range []int{1, 2} {
		full[w] = runShards(t, obj, "free_energy", 6, parRun{workers: w, ranks: 1, steps: 16})
	}
	for _, c := range []struct{ first, second int }{{2, 1}, {1, 2}, {2, 2}} {
		dir := t.TempDir()
		a := runShards(t, obj, "free_energy", 6, parRun{workers: c.first, ranks: 1, steps: 16, out: dir, stopAt: 8})
		if len(a.loss) != 8 {
			t.Fatalf("the interrupted run did %d steps, want 8", len(a.loss))
		}
		b := runShards(t, obj, "free_energy", 6, parRun{workers: c.second, ranks: 1, steps: 16, out: dir, resume: true})
		joined := shardRun{loss: append(a.loss, b.loss...), metric: append(a.metric, b.metric...), weights: b.weights}
		what := fmt.Sprintf("%d workers resumed on %d", c.first, c.second)
		if c.first == c.second {
			if !equalRuns(joined, full[c.first]) {
				t.Errorf("%s: not bit for bit the uninterrupted run", what)
			}
			continue
		}
		closeRuns(t, what, full[c.second], joined, 1e-10)
	}
}

// TestShardFeedIsSplitInvariant: the latents and images fed to the shards of a batch are, bit for bit, the
// ones a single worker gets, and sample j of step s is what the prior draws from the PCG seeded with
// train.SampleSeed(seed, s, j) (recomputed here by hand).
func TestShardFeedIsSplitInvariant(t *testing.T) {
	const batch, seed, step = 5, 77, 3
	newKL := reverseKLObjective(t)
	fedKL := func(sizes []int) [][]float64 {
		var rows [][]float64
		off := 0
		for _, n := range sizes {
			o := newKL().(*ReverseKL)
			store := layers.NewStore(tensor.Float64, 1)
			if _, err := o.Build(layers.NewScope(G.NewGraph(), store), n); err != nil {
				t.Fatal(err)
			}
			sh := train.MakeShard(seed, step, off, n, batch)
			if err := o.FeedShard(sh); err != nil {
				t.Fatal(err)
			}
			v := o.zVal.Float64s()
			for k := range n {
				rows = append(rows, slices.Clone(v[k*len(v)/n:(k+1)*len(v)/n]))
			}
			off += n
		}
		return rows
	}
	one := fedKL([]int{5})
	for _, sizes := range [][]int{{3, 2}, {2, 2, 1}, {1, 1, 1, 1, 1}} {
		if got := fedKL(sizes); !slices.EqualFunc(one, got, slices.Equal) {
			t.Errorf("latents of shards %v differ from one shard's", sizes)
		}
	}
	flow := newKL().(*ReverseKL).Flow
	zOne := layers.NewDense(tensor.Float64, flow.Shape(1), nil)
	for j := range batch {
		hi, lo := train.SampleSeed(seed, step, j)
		if err := flow.Prior.Sample(rand.New(rand.NewPCG(hi, lo)), zOne); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(zOne.Float64s(), one[j]) {
			t.Errorf("sample %d is not the prior's draw from its own stream", j)
		}
	}

	newNLL := nllObjective(t)
	fedNLL := func(sizes []int) (y, ld []float64) {
		off := 0
		for _, n := range sizes {
			o := newNLL().(*NLL)
			store := layers.NewStore(tensor.Float64, 1)
			if _, err := o.Build(layers.NewScope(G.NewGraph(), store), n); err != nil {
				t.Fatal(err)
			}
			if err := o.SetDataPosition(12); err != nil {
				t.Fatal(err)
			}
			sh := train.MakeShard(seed, step, off, n, batch)
			if err := o.FeedShard(sh); err != nil {
				t.Fatal(err)
			}
			y = append(y, o.yVal.Float64s()...)
			ld = append(ld, o.ldjVal.Float64s()...)
			if o.DataPosition() != 12+batch {
				t.Errorf("shard %v: data position %d after one step, want %d (every shard advances by the batch)", sizes, o.DataPosition(), 12+batch)
			}
			off += n
		}
		return y, ld
	}
	y1, ld1 := fedNLL([]int{5})
	for _, sizes := range [][]int{{3, 2}, {2, 2, 1}} {
		y, ld := fedNLL(sizes)
		if !slices.Equal(y, y1) || !slices.Equal(ld, ld1) {
			t.Errorf("images of shards %v differ from one shard's", sizes)
		}
	}
}

// TestEvalBitsPerDimWorkers: the parallel evaluation gives the same result, bit for bit, on 1, 2 and 3
// workers (11 images in chunks of 4, the last one short); with fixed dequantisation (no noise) it equals
// the single-stream EvalBitsPerDim exactly, since every image's code length is then the same computation.
func TestEvalBitsPerDimWorkers(t *testing.T) {
	sp, _ := images.ParseSpec("synthetic:11")
	data, _, err := sp.Load(images.LoadOptions{Size: 8, TestFraction: -1, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	flow := tinyFlow(t, 8, 3, "")
	store := layers.NewStore(tensor.Float64, 1)
	scope := layers.NewScope(G.NewGraph(), store)
	if _, _, err := flow.LogProb(scope, scope.Input("x", flow.Shape(1)...)); err != nil {
		t.Fatal(err)
	}
	store.Perturb(rand.New(rand.NewPCG(3, 3)), 0.05)
	for _, pre := range []Preprocess{{}, {Fixed: true, U: 0.5}} {
		var first Eval
		for _, w := range []int{1, 2, 3} {
			ev, err := EvalBitsPerDimWorkers(flow, store, data, 4, w, pre, rand.New(rand.NewPCG(7, 8)))
			if err != nil {
				t.Fatal(err)
			}
			if w == 1 {
				first = ev
			} else if ev != first {
				t.Errorf("fixed=%v: %d workers: %+v, 1 worker: %+v", pre.Fixed, w, ev, first)
			}
		}
		if pre.Fixed {
			single, err := EvalBitsPerDim(flow, store, data, 4, pre, nil)
			if err != nil {
				t.Fatal(err)
			}
			if single != first {
				t.Errorf("fixed dequantisation: parallel %+v, single-stream %+v", first, single)
			}
		}
	}
	if _, err := EvalBitsPerDimWorkers(flow, store, data, 4, 0, Preprocess{}, rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Error("0 workers gave no error")
	}
}
