package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/train/comm"
)

// linObjective is least squares of a linear model, loss = mean_j (w·x_j + b − t_j)², with sample j's x
// (dim values) and t drawn from sh.Rand(j): a sharded objective whose full-batch gradient is easy to write
// down on the host.
type linObjective struct {
	dim    int
	x, t   *G.Node
	xt, tt *tensor.Dense
}

func (o *linObjective) Build(s *layers.Scope, batch int) (*G.Node, error) {
	o.x = s.Input("x", batch, o.dim)
	o.t = s.Input("t", batch, 1)
	w := s.Param("w", []int{o.dim, 1}, layers.Constant(0.3))
	b := s.Param("b", []int{1}, layers.Constant(-0.2))
	out := G.Must(G.BroadcastAdd(G.Must(G.Mul(o.x, w)), b, nil, []byte{0}))
	o.xt = tensor.New(tensor.WithShape(batch, o.dim), tensor.Of(s.Dtype()))
	o.tt = tensor.New(tensor.WithShape(batch, 1), tensor.Of(s.Dtype()))
	return G.Mean(G.Must(G.Square(G.Must(G.Sub(out, o.t)))))
}

func (o *linObjective) Feed(*rand.Rand) error { panic("a sharded objective is fed through FeedShard") }

func (o *linObjective) NewShard() (ShardedObjective, error) { return &linObjective{dim: o.dim}, nil }

func (o *linObjective) FeedShard(sh *Shard) error {
	x, t := sampleData(sh, o.dim)
	layers.SetData(o.xt, x)
	layers.SetData(o.tt, t)
	if err := G.Let(o.x, o.xt); err != nil {
		return err
	}
	return G.Let(o.t, o.tt)
}

// sampleData draws the shard's samples: x_j ~ N(0, 1)^dim, t_j = 1 + x_j0 + noise/10.
func sampleData(sh *Shard, dim int) (x, t []float64) {
	for k := range sh.Size {
		rng := sh.Rand(sh.Offset + k)
		row := make([]float64, dim)
		for i := range row {
			row[i] = rng.NormFloat64()
		}
		x = append(x, row...)
		t = append(t, 1+row[0]+0.1*rng.NormFloat64())
	}
	return x, t
}

// hostLinGrad is the loss and gradient norm of the whole batch of step 0 at the initial weights, on the host.
func hostLinGrad(seed uint64, batch, dim int) (loss, norm float64) {
	x, t := sampleData(MakeShard(seed, 0, 0, batch, batch), dim)
	gw := make([]float64, dim)
	var gb float64
	for j := range batch {
		r := -0.2 - t[j]
		for i := range dim {
			r += 0.3 * x[j*dim+i]
		}
		loss += r * r / float64(batch)
		for i := range dim {
			gw[i] += 2 * r * x[j*dim+i] / float64(batch)
		}
		gb += 2 * r / float64(batch)
	}
	norm = gb * gb
	for _, g := range gw {
		norm += g * g
	}
	return loss, math.Sqrt(norm)
}

// TestShardedFirstStepIsFullBatch: with 1, 2, 4 and 7 workers, and with 3 in-process ranks of 2 workers each,
// the first step's loss and gradient norm are those of the whole batch computed on the host (the shard
// means weighted by shard size, summed over workers and ranks); 1e-12 relative covers the different
// summation orders of 7 O(1) terms.
func TestShardedFirstStepIsFullBatch(t *testing.T) {
	const batch, dim, seed = 7, 3, 5
	wantLoss, wantNorm := hostLinGrad(seed, batch, dim)
	check := func(what string, r Record) {
		t.Helper()
		if math.Abs(r.Loss-wantLoss) > 1e-12*wantLoss || math.Abs(r.GradNorm-wantNorm) > 1e-12*wantNorm {
			t.Errorf("%s: loss %.17g, |g| %.17g; the host's full batch: %.17g, %.17g", what, r.Loss, r.GradNorm, wantLoss, wantNorm)
		}
	}
	// first runs one step and returns its record and the number of workers the trainer used.
	first := func(workers int, c comm.Comm) (Record, int, error) {
		var rec Record
		store := layers.NewStore(tensor.Float64, 0)
		tr, err := New(store, &linObjective{dim: dim}, Config{Steps: 1, Batch: batch, Seed: seed, Workers: workers, Comm: c,
			Hooks: Hooks{OnStep: []Hook{{Name: "first", Fn: func(r Record) error { rec = r; return nil }}}}})
		if err != nil {
			return rec, 0, err
		}
		defer tr.Close()
		return rec, tr.Workers(), tr.Run(context.Background())
	}
	for _, w := range []int{1, 2, 4, 7, 9} {
		rec, used, err := first(w, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(w, batch); used != want {
			t.Errorf("%d workers asked for a batch of %d: %d workers, want %d", w, batch, used, want)
		}
		check(fmt.Sprintf("%d workers", w), rec)
	}
	cs, err := comm.NewGroup(3)
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]Record, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for r, c := range cs {
		wg.Go(func() { recs[r], _, errs[r] = first(2, c) })
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	check("3 ranks × 2 workers, rank 0", recs[0]) // only rank 0 runs the hooks
	if recs[1].Step != 0 {
		t.Error("rank 1 ran the hooks")
	}
}

func TestParallelConfigErrors(t *testing.T) {
	store := layers.NewStore(tensor.Float64, 1)
	if _, err := New(store, &mlpObjective{in: 1, hidden: 2}, Config{Steps: 1, Batch: 4, Workers: 2}); err == nil || !strings.Contains(err.Error(), "ShardedObjective") {
		t.Errorf("a plain objective on 2 workers: %v", err)
	}
	if _, err := New(store, &linObjective{dim: 1}, Config{Steps: 1, Batch: 4, Workers: -1}); err == nil {
		t.Error("Workers = -1 gave no error")
	}
	cs, _ := comm.NewGroup(3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for r, c := range cs {
		wg.Go(func() {
			_, errs[r] = New(layers.NewStore(tensor.Float64, 0), &linObjective{dim: 1}, Config{Steps: 1, Batch: 2, Comm: c})
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "3 processes") {
			t.Errorf("rank %d: a batch of 2 over 3 ranks: %v", r, err)
		}
	}
}
