package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/train/comm"
)

// Objective is what the Trainer minimises. Build makes the loss graph once (a scalar node) for a fixed batch
// size, binding parameters through s (and inputs through s.Input); Feed Let()s the next batch / noise into
// those inputs before each step, drawing any randomness from rng (and only from rng, so runs are reproducible
// and resumable).
type Objective interface {
	Build(s *layers.Scope, batch int) (loss *G.Node, err error)
	Feed(rng *rand.Rand) error
}

// MetricsReporter is implemented by objectives that report extra numbers (e.g. the loss's standard error).
// Metrics is called after every step; its values go to hooks and, at log steps, to metrics.jsonl.
type MetricsReporter interface {
	Metrics() map[string]float64
}

// Config configures a Trainer. Zero values select the documented defaults; Steps and Batch are required.
type Config struct {
	// Steps is the run's TOTAL number of optimiser steps, counted from the start of the run (a resumed run
	// continues up to the same Steps).
	Steps int64 `json:"steps"`
	// Batch is the batch size passed to Objective.Build.
	Batch int `json:"batch"`
	// LR is the learning rate when Schedule is nil; 0 means 1e-3.
	LR float64 `json:"lr,omitempty"`
	// Schedule, if set, gives the learning rate of every step and LR is ignored.
	Schedule Schedule `json:"schedule,omitempty"`
	// Optimizer selects Adam or AdamW and its hyper-parameters (zero: torch's Adam defaults).
	Optimizer AdamConfig `json:"optimizer"`
	// ClipNorm is the maximum global L2 norm of the gradient; 0 disables clipping. The pre-clip norm is
	// always computed and reported.
	ClipNorm float64 `json:"clip_norm,omitempty"`
	// EMADecay, if > 0, keeps an exponential moving average of the trained weights with this decay, updated
	// after every optimiser step and saved in checkpoints (see EMA); 0 disables it. Frozen parameters are not
	// averaged (their average is the weight itself).
	EMADecay float64 `json:"ema_decay,omitempty"`
	// LogEvery is the logging period in steps (metrics.jsonl, progress lines, OnLog hooks); 0 means 100. The
	// last step is always logged.
	LogEvery int64 `json:"log_every,omitempty"`
	// CheckpointEvery is the checkpoint period in steps; 0 means 1000, negative means only the final
	// checkpoint (and the one written on interruption). Needs Out.
	CheckpointEvery int64 `json:"checkpoint_every,omitempty"`
	// Keep is how many checkpoints to keep; 0 means 3, negative keeps all.
	Keep int `json:"keep,omitempty"`
	// Seed seeds the trainer's PCG (rand.NewPCG(Seed, Seed^pcgStream)), the only source Feed sees.
	Seed uint64 `json:"seed"`
	// Out is the run directory: metrics.jsonl and checkpoints/ are written there. Empty: nothing is written.
	Out string `json:"out,omitempty"`

	// RunConfig, if set, is the JSON stored as each checkpoint's config (e.g. the CLI's resolved settings);
	// otherwise this Config is stored.
	RunConfig json.RawMessage `json:"-"`
	// Progress receives the progress display; nil means none. A terminal gets a progress bar with loss and
	// ETA, anything else plain lines at log steps.
	Progress io.Writer `json:"-"`
	// PlainProgress forces plain progress lines even on a terminal.
	PlainProgress bool `json:"-"`
	// Hooks are called during Run (on rank 0 only when Comm has several ranks).
	Hooks Hooks `json:"-"`

	// Workers is the number of in-process workers: goroutines, each with its own graph and tape machine
	// over a shard of this process's part of the batch. 0 means 1; more than the process's share of the
	// batch is reduced to it. More than one needs a ShardedObjective.
	Workers int `json:"-"`
	// Comm is the group of processes the batch is split over (see package comm); nil means a single
	// process. Every rank runs the same Trainer; rank 0 alone writes Out and shows progress.
	Comm comm.Comm `json:"-"`
	// FreshBuffers lets the kit's ops allocate their outputs afresh every step instead of recycling them
	// through each worker's layers.Arena: the reference the recycling is tested against, bit for bit.
	FreshBuffers bool `json:"-"`
}

// pcgStream is the second PCG seed word, a fixed odd constant so that Seed alone picks the stream.
const pcgStream = 0x9e3779b97f4a7c15

func (c Config) withDefaults() (Config, error) {
	if c.Steps <= 0 {
		return c, fmt.Errorf("train: Config.Steps = %d, want the run's total step count (> 0)", c.Steps)
	}
	if c.Batch <= 0 {
		return c, fmt.Errorf("train: Config.Batch = %d, want > 0", c.Batch)
	}
	if c.LR == 0 {
		c.LR = 1e-3
	}
	if !(c.LR > 0) || math.IsInf(c.LR, 0) {
		return c, fmt.Errorf("train: Config.LR = %g, want a positive finite learning rate", c.LR)
	}
	if c.Schedule == nil {
		c.Schedule = Constant{c.LR}
	}
	if !(c.EMADecay >= 0 && c.EMADecay < 1) {
		return c, fmt.Errorf("train: Config.EMADecay = %g, want 0 ≤ decay < 1 (0 disables the moving average)", c.EMADecay)
	}
	if !(c.ClipNorm >= 0) {
		return c, fmt.Errorf("train: Config.ClipNorm = %g, want ≥ 0 (0 disables clipping)", c.ClipNorm)
	}
	if c.LogEvery == 0 {
		c.LogEvery = 100
	}
	if c.LogEvery < 0 {
		return c, fmt.Errorf("train: Config.LogEvery = %d, want ≥ 0", c.LogEvery)
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = 1000
	}
	if c.Keep == 0 {
		c.Keep = 3
	}
	c.Optimizer = c.Optimizer.withDefaults()
	if err := c.Optimizer.validate(); err != nil {
		return c, err
	}
	return c, nil
}

// Record describes one completed step. Step counts completed updates, so the first step is Step 1.
type Record struct {
	Step     int64
	Loss     float64
	LR       float64
	GradNorm float64 // before clipping
	Clipped  bool
	// LossMean is the mean loss over the steps since the previous log step (set at log steps only).
	LossMean float64
	// Wall is the training time of the whole run so far, across resumes.
	Wall time.Duration
	// Metrics are the objective's extra numbers (nil if it reports none).
	Metrics map[string]float64
	// Checkpoint is the file just written (OnCheckpoint hooks only).
	Checkpoint string
}

// Hook is a named callback; its name appears in the error if it fails, and a failing hook stops the run.
type Hook struct {
	Name string
	Fn   func(Record) error
}

// Hooks are the Trainer's callbacks: OnStep after every step, OnLog at log steps (after metrics.jsonl is
// written), OnCheckpoint after each checkpoint is written.
type Hooks struct {
	OnStep, OnLog, OnCheckpoint []Hook
}

func runHooks(kind string, hooks []Hook, r Record) error {
	for _, h := range hooks {
		if err := h.Fn(r); err != nil {
			return fmt.Errorf("train: step %d: %s hook %q: %w", r.Step, kind, h.Name, err)
		}
	}
	return nil
}

// Trainer drives one Objective: it builds the loss graph and its gradient once, then steps an optimiser over
// the Store's parameters. Close it when done.
type Trainer struct {
	cfg   Config
	store *layers.Store
	obj   Objective
	opt   *Adam
	ema   *EMA // nil when Config.EMADecay is 0

	comm      comm.Comm
	workers   []*worker // this process's shards, in global sample order; workers[0].obj is obj
	sharded   bool      // obj is a ShardedObjective fed through FeedShard
	names     []string  // trained parameter names (bound and not frozen), binding order
	frozen    []string  // bound frozen parameter names, binding order
	sizes     []int     // element count of each trained parameter
	flat      []float64 // the step's reduced gradient (all parameters in order), then the loss
	flat32    []float32 // flat in float32, for all-reducing a float32 model's gradient
	sq        []float64 // each gradient tensor's sum of squares this step (SumSquares), for the norm
	syncParts []int     // boundaries of the ranges of the weight copies each worker refreshes (splitMirror)
	grads     []Grad    // the reduced gradient, one tensor per trained parameter
	offs      []int     // offs[i]: parameter i's offset in flat; offs[len(sizes)] is the loss's
	parts     []int     // boundaries of the parameter ranges the work after the graphs is shared out by

	pcg *rand.PCG
	rng *rand.Rand

	step     int64
	wall     time.Duration // training time up to the last checkpoint written or loaded
	lastCkpt string        // newest checkpoint written or loaded
	resumed  bool          // Out holds this run's state (Resume was called or Run has started)

	now func() time.Time // the clock Run reads wall times from (nil: time.Now; tests inject a fake)

	times StepTimes // where the steps' time went (Times)
}

// StepTimes says where the time of the steps run so far went, summed over the steps (divide by Steps for
// one step). The phases of a step follow one another: Parallel (from starting the workers until the last
// one is done), Reduce (summing the shard gradients in worker order and across ranks, copying them into
// the gradient tensors) and Update (gradient norm, metrics, optimiser and moving average).
// ParallelCPU is the CPU time the whole process used during Parallel (all threads: the workers, the
// garbage collector, the runtime; on Unix, 0 elsewhere). Per worker, Feed, Sync and Run (in this order) are
// the wall times of feeding its shard, refreshing its range of the other workers' copies of the weights
// and waiting until every worker has done so (several workers only), and running its graph. Parallel well above the slowest
// worker's Feed + Sync + Run means the workers were started or
// collected late; ParallelCPU well below Parallel × workers means they waited for a core (a loaded
// machine); ParallelCPU growing with the number of workers for the same global batch is work the split
// adds.
type StepTimes struct {
	Steps                    int64
	Parallel, Reduce, Update time.Duration
	ParallelCPU              time.Duration
	Workers                  []WorkerTimes
}

// WorkerTimes are one worker's summed wall times (see StepTimes).
type WorkerTimes struct {
	Sync, Feed, Run time.Duration
}

// Times returns the summed phase times of the steps this Trainer has run (not counting earlier sessions of
// a resumed run).
func (t *Trainer) Times() StepTimes {
	st := t.times
	st.Workers = slices.Clone(t.times.Workers)
	return st
}

// New builds obj's graph for cfg.Batch over store, its gradient with respect to every bound parameter that is
// not frozen (layers.Grad, so the objective may itself differentiate inside Build), and a tape machine.
// Parameters the objective creates are initialised by the store. Frozen parameters (layers.Store.Freeze) are
// bound and read but get no gradient, no optimiser state and no update; buffers (Scope.Buffer) are never
// differentiated.
//
// Data parallelism: the global batch cfg.Batch is split into contiguous shards (Split), first over the ranks
// of cfg.Comm and then over cfg.Workers workers per process; each worker builds its own graph for its shard
// (obj itself for the first, bound to store's tensors; obj.NewShard() for the others, bound to copies of
// them that are refreshed before every step). A step's loss and gradient are the shard means weighted by shard size over the batch, summed
// worker by worker in order and then over the ranks, so every rank applies the same update. With several
// ranks, rank 0's initial weights are broadcast to all.
func New(store *layers.Store, obj Objective, cfg Config) (_ *Trainer, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.Workers < 0 {
		return nil, fmt.Errorf("train: Config.Workers = %d, want ≥ 0 (0 means 1)", cfg.Workers)
	}
	if cfg.Workers == 0 {
		cfg.Workers = 1
	}
	if cfg.Comm == nil {
		cfg.Comm = comm.Single()
	}
	t := &Trainer{cfg: cfg, store: store, obj: obj, opt: NewAdam(store, cfg.Optimizer), comm: cfg.Comm}
	t.pcg = rand.NewPCG(cfg.Seed, cfg.Seed^pcgStream)
	t.rng = rand.New(t.pcg)

	size, rank := cfg.Comm.Size(), cfg.Comm.Rank()
	sobj, sharded := obj.(ShardedObjective)
	t.sharded = sharded
	if !sharded && (cfg.Workers > 1 || size > 1) {
		return nil, fmt.Errorf("train: the objective %T cannot be split over %d workers × %d processes (it is not a ShardedObjective); use one worker", obj, cfg.Workers, size)
	}
	if size > cfg.Batch {
		return nil, fmt.Errorf("train: a batch of %d cannot be split over %d processes (each needs at least one sample)", cfg.Batch, size)
	}
	procShares := Split(cfg.Batch, size)
	offset := 0
	for _, n := range procShares[:rank] {
		offset += n
	}
	nw := min(cfg.Workers, procShares[rank])
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	for w, n := range Split(procShares[rank], nw) {
		o, bind, mir := obj, store, (*mirror)(nil)
		if w > 0 {
			so, err := sobj.NewShard()
			if err != nil {
				return nil, fmt.Errorf("train: a copy of the objective for worker %d: %w", w, err)
			}
			o = so
			bind, mir = newMirror(store)
		}
		wk, err := t.buildWorker(o, n, bind)
		if err != nil {
			if len(t.workers) > 0 {
				return nil, fmt.Errorf("train: worker %d (%d samples): %w", w, n, err)
			}
			return nil, err
		}
		if mir != nil {
			if bind.Len() != store.Len() || len(bind.BufferNames()) != len(store.BufferNames()) {
				return nil, fmt.Errorf("train: worker %d's copy of the objective created parameters or buffers the first one did not", w)
			}
			wk.mirror = mir
		}
		if sharded {
			wk.shard = newShard(cfg.Seed, offset, n, cfg.Batch)
		}
		offset += n
		t.workers = append(t.workers, wk)
	}
	t.sizes = make([]int, len(t.names))
	total := 0
	for i, n := range t.names {
		p, _ := store.Get(n)
		t.sizes[i] = p.Shape().TotalSize()
		total += t.sizes[i]
		t.grads[i].Value = tensor.New(tensor.WithShape(p.Shape().Clone()...), tensor.Of(store.Dtype()))
	}
	t.flat = make([]float64, total+1)
	t.sq = make([]float64, len(t.names))
	t.splitParams(len(t.workers))
	t.splitMirror()
	if store.Dtype() == tensor.Float32 && size > 1 {
		t.flat32 = make([]float32, total+1)
	}
	for _, wk := range t.workers {
		wk.flat = make([]float64, total+1)
	}
	if len(t.workers) == 1 {
		t.workers[0].flat = t.flat // the sum over one worker is its own vector
	}
	if cfg.EMADecay > 0 {
		if t.ema, err = NewEMA(store, t.names, cfg.EMADecay); err != nil {
			return nil, err
		}
	}
	if size > 1 {
		if err := t.broadcastWeights(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// worker is one shard's graph and machine.
type worker struct {
	obj      Objective
	mirror   *mirror // the worker's own copy of the weights (nil for the first worker, which binds the store's)
	shard    *Shard  // nil for an objective that is not sharded
	g        *G.ExprGraph
	vm       G.VM
	arena    *layers.Arena // the outputs of the kit's ops, recycled from step to step (Reset before each run)
	lossVal  G.Value       // filled by a Read node each run
	gradVals []G.Value     // filled by Read nodes each run (where gradFrom[i].k < 0)
	gradFrom []packedSlice // per trained parameter: where its gradient is read from
	packed   []*G.Value    // packed gradients of fused ops, filled by Read nodes each run
	flat     []float64     // the shard's gradient and loss, weighted by its share of the batch

	syncTime, feedTime, runTime time.Duration // the last step's (see StepTimes)
}

// packedSlice locates a parameter's gradient: packed[k][off : off+size] of its worker, or, for k < 0, the
// worker's gradVals entry.
type packedSlice struct{ k, off int }

// mirror is a worker's private copy of the Store's parameters and buffers. Workers other than the first bind
// copies rather than the Store's own tensors because Gorgonia's matrix product transposes an operand in
// place (its shape and strides) while it computes the backward pass: two graphs running at once on one
// weight tensor would see each other's transposes. The copies are refreshed from the Store before every
// step (after the previous update, a resume or a broadcast), one pass over the parameters per extra worker.
type mirror struct {
	src, dst []*tensor.Dense
}

// newMirror returns a store holding copies of store's parameters and buffers, and the mirror that keeps
// them in step.
func newMirror(store *layers.Store) (*layers.Store, *mirror) {
	ms := layers.NewStore(store.Dtype(), store.Seed())
	m := &mirror{}
	for _, n := range store.Names() {
		p, _ := store.Get(n)
		m.src = append(m.src, p)
		m.dst = append(m.dst, ms.Param(n, p.Shape().Clone(), nil))
	}
	for _, n := range store.BufferNames() {
		b, _ := store.GetBuffer(n)
		m.src = append(m.src, b)
		m.dst = append(m.dst, ms.Buffer(n, b.Shape().Clone(), nil))
	}
	m.sync()
	return ms, m
}

// sync copies the Store's current values into the copies.
func (m *mirror) sync() { m.syncRange(0, len(m.dst)) }

// syncRange copies the Store's current values of tensors [lo, hi) (in the mirror's order) into the copies.
func (m *mirror) syncRange(lo, hi int) {
	for i, d := range m.dst[lo:hi] {
		switch v := d.Data().(type) {
		case []float64:
			copy(v, m.src[lo+i].Float64s())
		case []float32:
			copy(v, m.src[lo+i].Float32s())
		}
	}
}

// splitMirror sets t.syncParts to len(t.workers)+1 boundaries that cut the mirrors' tensors into one range
// per worker, of about equal element counts (balancedCuts): every worker refreshes its range of every copy.
func (t *Trainer) splitMirror() {
	t.syncParts = nil
	if len(t.workers) < 2 {
		return
	}
	m := t.workers[1].mirror
	sizes := make([]int, len(m.dst))
	for i, d := range m.dst {
		sizes[i] = d.Shape().TotalSize()
	}
	t.syncParts = balancedCuts(prefixSums(sizes), len(t.workers))
}

// buildWorker builds o for a shard of n samples. The first worker fixes the trained and frozen parameters;
// later ones must bind the same ones in the same order.
func (t *Trainer) buildWorker(o Objective, n int, bind *layers.Store) (*worker, error) {
	wk := &worker{obj: o, g: G.NewGraph()}
	if !t.cfg.FreshBuffers {
		wk.arena = layers.NewArena()
	}
	scope := layers.NewScope(wk.g, bind)
	// Everything a step leaves for later is copied out of the graph (Read nodes, the gradient copied into
	// flat, the objective's own Reads for its metrics) before the worker runs again, so the worker can hand
	// the kit's op outputs back to its arena at the start of every run.
	scope.SetArena(wk.arena)
	loss, err := o.Build(scope, n)
	if err != nil {
		return nil, fmt.Errorf("train: building the objective (batch %d): %w", n, err)
	}
	if loss == nil {
		return nil, errors.New("train: the objective's Build returned a nil loss")
	}
	if !loss.IsScalar() {
		return nil, fmt.Errorf("train: the objective's loss %q has shape %v, want a scalar", loss.Name(), loss.Shape())
	}
	if loss.Dtype() != t.store.Dtype() {
		return nil, fmt.Errorf("train: the objective's loss is %v, the store is %v", loss.Dtype(), t.store.Dtype())
	}
	allNames, allNodes := scope.Params()
	if len(allNodes) == 0 {
		return nil, errors.New("train: the objective bound no parameters")
	}
	var names, frozen []string
	var nodes []*G.Node
	for i, name := range allNames {
		if t.store.Frozen(name) {
			frozen = append(frozen, name)
			continue
		}
		names = append(names, name)
		nodes = append(nodes, allNodes[i])
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("train: all %d parameters the objective bound are frozen; nothing to train", len(allNodes))
	}
	if len(t.workers) == 0 {
		t.names, t.frozen = names, frozen
		t.grads = make([]Grad, len(names))
		for i, name := range names {
			t.grads[i].Name = name
		}
	} else if !slices.Equal(names, t.names) || !slices.Equal(frozen, t.frozen) {
		return nil, fmt.Errorf("train: the copy bound parameters %q (frozen %q), the first worker %q (frozen %q)", names, frozen, t.names, t.frozen)
	}
	// layers.Grad, not G.Grad: Build may already have differentiated (forces, divergences, scores), and
	// G.Grad would silently reuse those derivative nodes.
	gradNodes, err := layers.Grad(loss, nodes...)
	if err != nil {
		return nil, fmt.Errorf("train: differentiating the loss with respect to %d parameters: %w", len(nodes), err)
	}
	// Values are read through Read nodes, which copy them out as soon as they are computed: a node's own
	// Value() may share a register that a later instruction reuses.
	G.Read(loss, &wk.lossVal)
	// A parameter whose gradient is its slice of a fused op's packed gradient (layers.PackedGradient) and
	// that nothing else reads is taken from the packed vector, read once per fused op; the slicing nodes
	// are left out of the machine. That is one Read per fused op instead of two instructions per
	// parameter (the slice and its Read): Gorgonia's cost per instruction is paid again by every worker,
	// and the neuralrg preset has 170 parameters per fused op.
	wk.gradVals = make([]G.Value, len(gradNodes))
	wk.gradFrom = make([]packedSlice, len(gradNodes))
	packedAt := map[*G.Node]int{}
	skip := map[*G.Node]bool{}
	for i, gn := range gradNodes {
		pk, off, size, ok := layers.PackedGradient(gn)
		if ok && size == gn.Shape().TotalSize() && wk.g.To(gn.ID()).Len() == 0 {
			k, seen := packedAt[pk]
			if !seen {
				k = len(wk.packed)
				packedAt[pk] = k
				v := new(G.Value)
				wk.packed = append(wk.packed, v)
				G.Read(pk, v)
			}
			wk.gradFrom[i] = packedSlice{k: k, off: off}
			skip[gn] = true
			continue
		}
		wk.gradFrom[i] = packedSlice{k: -1}
		G.Read(gn, &wk.gradVals[i])
	}
	mg := wk.g
	if len(skip) > 0 {
		var roots G.Nodes
		for _, n := range wk.g.AllNodes() {
			if !skip[n] && wk.g.To(n.ID()).Len() == 0 {
				roots = append(roots, n)
			}
		}
		mg = wk.g.ExactSubgraphRoots(roots...)
	}
	if wk.vm, err = layers.NewTapeMachine(mg); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return wk, nil
}

// broadcastWeights copies rank 0's parameters (trained and frozen) and buffers to every rank.
func (t *Trainer) broadcastWeights() error {
	var ts []*tensor.Dense
	for _, n := range t.store.SortedNames() {
		p, _ := t.store.Get(n)
		ts = append(ts, p)
	}
	for _, n := range t.store.BufferNames() {
		b, _ := t.store.GetBuffer(n)
		ts = append(ts, b)
	}
	for _, d := range ts {
		var err error
		switch v := d.Data().(type) {
		case []float64:
			err = t.comm.Broadcast64(0, v)
		case []float32:
			err = t.comm.Broadcast32(0, v)
		default:
			err = fmt.Errorf("unsupported dtype %v", d.Dtype())
		}
		if err != nil {
			return fmt.Errorf("train: broadcasting rank 0's initial weights: %w", err)
		}
	}
	return nil
}

// Close releases the tape machines. It is safe to call more than once.
func (t *Trainer) Close() error {
	var first error
	for _, wk := range t.workers {
		if wk.vm == nil {
			continue
		}
		err := wk.vm.Close()
		wk.vm = nil
		if err != nil && first == nil {
			first = fmt.Errorf("train: closing the tape machine: %w", err)
		}
	}
	t.workers = nil
	return first
}

// Workers is the number of workers (graphs) in this process.
func (t *Trainer) Workers() int { return len(t.workers) }

// Comm is the group of processes the trainer runs in.
func (t *Trainer) Comm() comm.Comm { return t.comm }

// Step is the number of completed optimiser steps.
func (t *Trainer) Step() int64 { return t.step }

// Config is the configuration in use, defaults filled in.
func (t *Trainer) Config() Config { return t.cfg }

// Optimizer is the trainer's optimiser.
func (t *Trainer) Optimizer() *Adam { return t.opt }

// Params lists the names of the parameters being trained, in binding order (frozen ones excluded).
func (t *Trainer) Params() []string { return append([]string(nil), t.names...) }

// Frozen lists the frozen parameters the objective bound, in binding order.
func (t *Trainer) Frozen() []string { return append([]string(nil), t.frozen...) }

// EMA is the moving average of the trained weights (nil when Config.EMADecay is 0). It starts from the weights
// before the first update of the run (or of a resumed run whose checkpoint had none).
func (t *Trainer) EMA() *EMA { return t.ema }

// LastCheckpoint is the newest checkpoint this trainer wrote or resumed from ("" if none).
func (t *Trainer) LastCheckpoint() string { return t.lastCkpt }

// ErrInterrupted is wrapped by the error Run returns when its context was cancelled.
var ErrInterrupted = errors.New("interrupted")

// ErrNonFinite is wrapped by the error Run returns when a loss or gradient was NaN or infinite.
var ErrNonFinite = errors.New("non-finite loss or gradient")

// NonFiniteError reports a NaN or infinite loss or gradient. The update of that step was not applied.
type NonFiniteError struct {
	Step       int64   // the step that failed (completed steps + 1)
	What       string  // "loss", "gradient of <param>" or "gradient norm"
	Value      float64 // the offending value
	Checkpoint string  // the last good checkpoint ("" if none)
	Out        string  // the run directory ("" if none)
}

func (e *NonFiniteError) Error() string {
	msg := fmt.Sprintf("train: step %d: %s is %v; stopped without applying the update (the weights are those after step %d)",
		e.Step, e.What, e.Value, e.Step-1)
	switch {
	case e.Out == "":
		msg += "; nothing was saved (no run directory); lower the learning rate or enable clipping and start again"
	case e.Checkpoint == "":
		msg += fmt.Sprintf("; no checkpoint was written yet in %s; lower the learning rate (--lr) or enable clipping (--clip) and start again", e.Out)
	default:
		msg += fmt.Sprintf("; the last good checkpoint is %s; lower the learning rate (--lr) or enable clipping (--clip) and continue with --resume %s",
			e.Checkpoint, e.Out)
	}
	return msg
}

// Is makes errors.Is(err, ErrNonFinite) true.
func (e *NonFiniteError) Is(target error) bool { return target == ErrNonFinite }

// Run trains from the current step up to Config.Steps. It stops:
//   - at the end, after writing a final checkpoint (nil error);
//   - when ctx is cancelled: the step in progress is finished, a checkpoint written, and an error wrapping
//     ErrInterrupted says how to resume;
//   - on a NaN/Inf loss or gradient: the update is not applied, no checkpoint is written, and a
//     *NonFiniteError names the step and the last good checkpoint;
//   - on any other error (Feed, the graph, a hook, the file system), with context.
func (t *Trainer) Run(ctx context.Context) (err error) {
	if t.workers == nil {
		return errors.New("train: Run on a closed Trainer")
	}
	if t.step >= t.cfg.Steps {
		return nil
	}
	var mw *metricsWriter
	fresh := !t.resumed // a new run directory: metrics.jsonl starts empty
	if t.cfg.Out != "" {
		if !t.resumed {
			if latest, ok := newestCheckpointFile(t.ckptDir()); ok {
				return fmt.Errorf("train: %s already holds checkpoints (%s); continue it with --resume %s or choose a new output directory",
					t.cfg.Out, filepath.Base(latest), t.cfg.Out)
			}
		}
		t.resumed = true // from now on this trainer owns Out: a second Run continues it
	}
	lead := t.comm.Rank() == 0 // the rank that writes, reports and runs the hooks
	if t.cfg.Out != "" && lead {
		mw, err = openMetrics(filepath.Join(t.cfg.Out, metricsFile), fresh)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := mw.close(); cerr != nil && err == nil {
				err = cerr
			}
		}()
	}
	progOut := t.cfg.Progress
	if !lead {
		progOut = nil
	}
	prog := newProgress(progOut, t.cfg.PlainProgress, t.step, t.cfg.Steps)
	defer prog.finish()

	// The run's wall time is what earlier sessions took (fixed here, before t.wall is overwritten by the
	// checkpoints of this session) plus the time since this session started.
	clock := t.now
	if clock == nil {
		clock = time.Now
	}
	base, start := t.wall, clock()
	wall := func() time.Duration { return base + clock().Sub(start) }
	var lossSum float64
	var lossN int64
	hooks := t.cfg.Hooks
	if !lead {
		hooks = Hooks{}
	}
	for t.step < t.cfg.Steps {
		stop, err := t.stopRequested(ctx)
		if err != nil {
			return err
		}
		if stop {
			t.wall = wall()
			path, err := t.checkpoint()
			if err != nil {
				return fmt.Errorf("train: interrupted at step %d and the final checkpoint failed: %w", t.step, err)
			}
			if !lead {
				return fmt.Errorf("train: %w at step %d (rank %d; rank 0 writes the checkpoint)", ErrInterrupted, t.step, t.comm.Rank())
			}
			if path == "" {
				return fmt.Errorf("train: %w at step %d (no run directory, nothing saved)", ErrInterrupted, t.step)
			}
			return fmt.Errorf("train: %w at step %d; checkpoint %s written; resume with --resume %s", ErrInterrupted, t.step, path, t.cfg.Out)
		}
		rec, err := t.trainStep()
		if err != nil {
			var nf *NonFiniteError
			if errors.As(err, &nf) {
				nf.Checkpoint, nf.Out = t.lastCkpt, t.cfg.Out
			}
			return err
		}
		rec.Wall = wall()
		lossSum += rec.Loss
		lossN++
		if err := runHooks("OnStep", hooks.OnStep, rec); err != nil {
			return err
		}
		if t.step%t.cfg.LogEvery == 0 || t.step == t.cfg.Steps {
			rec.LossMean = lossSum / float64(lossN)
			lossSum, lossN = 0, 0
			if mw != nil {
				if err := mw.write(rec); err != nil {
					return err
				}
			}
			prog.log(rec)
			if err := runHooks("OnLog", hooks.OnLog, rec); err != nil {
				return err
			}
		}
		prog.step(rec)
		if t.cfg.CheckpointEvery > 0 && t.step%t.cfg.CheckpointEvery == 0 || t.step == t.cfg.Steps {
			t.wall = rec.Wall
			path, err := t.checkpoint()
			if err != nil {
				return err
			}
			if path != "" {
				rec.Checkpoint = path
				if err := runHooks("OnCheckpoint", hooks.OnCheckpoint, rec); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// stopRequested reports whether ctx is cancelled; with several ranks, whether it is on any of them (one
// small all-reduce), so that all stop before the same step.
func (t *Trainer) stopRequested(ctx context.Context) (bool, error) {
	stop := ctx.Err() != nil
	if t.comm.Size() == 1 {
		return stop, nil
	}
	flag := []float64{0}
	if stop {
		flag[0] = 1
	}
	if err := t.comm.AllReduceSum64(flag); err != nil {
		return false, fmt.Errorf("train: step %d: agreeing on a stop across ranks: %w", t.step+1, err)
	}
	return flag[0] > 0, nil
}

// trainStep runs one step: every worker feeds and runs its shard (in parallel), the weighted shard
// gradients and losses are summed in worker order and then across ranks, and the update is applied after
// the finiteness checks and clipping. The work after the graphs (the sum over workers, the copy into the
// gradient tensors and the optimiser) is shared out over as many goroutines as there are workers, each
// taking a fixed range of parameters (see parts); every element is computed as in a serial pass, so the
// result does not depend on how many goroutines do it. So does the gradient norm: each tensor's sum of squares
// is taken by the goroutine that wrote the tensor, and the sums are added in parameter order (GradNorm).
func (t *Trainer) trainStep() (Record, error) {
	n := t.step + 1
	if len(t.times.Workers) != len(t.workers) {
		t.times.Workers = make([]WorkerTimes, len(t.workers))
	}
	t0, cpu0 := time.Now(), processCPU()
	errs := make([]error, len(t.workers))
	if len(t.workers) == 1 {
		errs[0] = t.runWorker(0, t.workers[0], nil)
	} else {
		// Every worker, after feeding, refreshes its range of the extra workers' copies of the weights (see
		// mirror); the graphs start when all copies are whole.
		var synced, wg sync.WaitGroup
		synced.Add(len(t.workers))
		for w, wk := range t.workers {
			wg.Go(func() { errs[w] = t.runWorker(w, wk, &synced) })
		}
		wg.Wait()
	}
	t1 := time.Now()
	t.times.ParallelCPU += processCPU() - cpu0
	for w, err := range errs {
		if err != nil {
			if len(t.workers) > 1 {
				return Record{}, fmt.Errorf("train: step %d: worker %d: %w", n, w, err)
			}
			return Record{}, fmt.Errorf("train: step %d: %w", n, err)
		}
	}
	// The sum in worker order, element by element: a fixed order, so the result does not depend on
	// scheduling. With one rank the gradient tensors follow in the same pass.
	single := t.comm.Size() == 1
	t.forParts(func(p int) {
		a, b := t.parts[p], t.parts[p+1]
		if single {
			t.reduceGradRange(a, b)
			t.sumSquaresRange(a, b)
		} else {
			t.reduceRange(t.offs[a], t.offs[b])
		}
	})
	t.reduceRange(len(t.flat)-1, len(t.flat)) // the loss
	if !single {
		if err := t.allReduce(); err != nil {
			return Record{}, fmt.Errorf("train: step %d: all-reducing the gradient: %w", n, err)
		}
		t.forParts(func(p int) {
			a, b := t.parts[p], t.parts[p+1]
			t.gradRange(a, b)
			t.sumSquaresRange(a, b)
		})
	}
	t2 := time.Now()
	loss := t.flat[len(t.flat)-1]
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return Record{}, &NonFiniteError{Step: n, What: "the loss", Value: loss}
	}
	// Every tensor's sum of squares was taken above, on the goroutine that wrote it; the sums are added in
	// parameter order: the same bits as GradNorm, on any number of workers.
	norm, bad, badVal := normOf(t.grads, t.sq)
	if bad != "" {
		return Record{}, &NonFiniteError{Step: n, What: fmt.Sprintf("the gradient of %q", bad), Value: badVal}
	}
	if math.IsInf(norm, 0) {
		return Record{}, &NonFiniteError{Step: n, What: "the gradient norm (overflow)", Value: norm}
	}
	metrics, err := t.metrics()
	if err != nil {
		return Record{}, fmt.Errorf("train: step %d: %w", n, err)
	}
	lr := t.cfg.Schedule.LR(t.step)
	scale := ClipScale(norm, t.cfg.ClipNorm)
	if t.ema != nil && !t.ema.Started() {
		t.ema.Start() // the average begins at the weights before this run's first update
	}
	if err := t.opt.prepare(t.grads); err != nil {
		return Record{}, fmt.Errorf("train: step %d: %w", n, err)
	}
	t.forParts(func(p int) {
		a, b := t.parts[p], t.parts[p+1]
		t.opt.update(lr, scale, t.grads[a:b], t.opt.bound[a:b])
	})
	if t.ema != nil {
		t.ema.Update()
	}
	t3 := time.Now()
	t.times.Steps++
	t.times.Parallel += t1.Sub(t0)
	t.times.Reduce += t2.Sub(t1)
	t.times.Update += t3.Sub(t2)
	for w, wk := range t.workers {
		t.times.Workers[w].Sync += wk.syncTime
		t.times.Workers[w].Feed += wk.feedTime
		t.times.Workers[w].Run += wk.runTime
	}
	t.step = n
	return Record{Step: n, Loss: loss, LR: lr, GradNorm: norm, Clipped: scale != 1, Metrics: metrics}, nil
}

// forParts runs f(p) for every part p of the parameters (see parts), on that many goroutines.
func (t *Trainer) forParts(f func(p int)) {
	np := len(t.parts) - 1
	if np == 1 {
		f(0)
		return
	}
	var wg sync.WaitGroup
	for p := 1; p < np; p++ {
		wg.Go(func() { f(p) })
	}
	f(0)
	wg.Wait()
}

// reduceRange sets t.flat[lo:hi] to the sum of the workers' flat[lo:hi], in worker order. A single worker
// writes into t.flat itself (see New): nothing to do.
func (t *Trainer) reduceRange(lo, hi int) {
	if len(t.workers) == 1 && &t.workers[0].flat[0] == &t.flat[0] {
		return
	}
	dst := t.flat[lo:hi]
	copy(dst, t.workers[0].flat[lo:hi])
	for _, wk := range t.workers[1:] {
		src := wk.flat[lo:hi]
		for i := range dst {
			dst[i] += src[i]
		}
	}
}

// reduceGradRange sums the workers' gradients of parameters [a, b) in worker order, as reduceRange, and
// writes the sums straight into the gradient tensors, as gradRange (one rank: t.flat's gradient part is
// not needed). The sums are made a block at a time in a buffer that stays in cache: one pass over the
// workers' vectors instead of a pass that writes t.flat and another that reads it; the same bits.
func (t *Trainer) reduceGradRange(a, b int) {
	if len(t.workers) == 1 {
		t.reduceRange(t.offs[a], t.offs[b])
		t.gradRange(a, b)
		return
	}
	var buf [1024]float64
	for i := a; i < b; i++ {
		off, n := t.offs[i], t.sizes[i]
		for lo := 0; lo < n; lo += len(buf) {
			hi := min(n, lo+len(buf))
			sum := buf[:hi-lo]
			copy(sum, t.workers[0].flat[off+lo:off+hi])
			for _, wk := range t.workers[1:] {
				addTo(sum, wk.flat[off+lo:off+hi])
			}
			switch d := t.grads[i].Value.Data().(type) {
			case []float64:
				copy(d[lo:hi], sum)
			case []float32:
				toFloat32(d[lo:hi], sum)
			}
		}
	}
}

// sumSquaresRange sets t.sq[i] to the sum of squares of gradient i for the parameters [a, b) (SumSquares).
func (t *Trainer) sumSquaresRange(a, b int) {
	for i := a; i < b; i++ {
		t.sq[i] = SumSquares(t.grads[i].Value)
	}
}

// gradRange copies the reduced gradients of parameters [a, b) into their tensors (rounded to the model's
// dtype).
func (t *Trainer) gradRange(a, b int) {
	for i := a; i < b; i++ {
		src := t.flat[t.offs[i]:t.offs[i+1]]
		switch d := t.grads[i].Value.Data().(type) {
		case []float64:
			copy(d, src)
		case []float32:
			toFloat32(d, src)
		}
	}
}

// splitParams sets t.parts to at most k+1 boundaries in [0, len(sizes)] that cut the parameters into k
// ranges of about equal element counts (balancedCuts, without its empty ranges: fewer when there are fewer
// parameters), and t.offs to every parameter's offset in the flat gradient.
func (t *Trainer) splitParams(k int) {
	t.offs = prefixSums(t.sizes)
	k = max(1, min(k, len(t.sizes)))
	t.parts = []int{0}
	for _, c := range balancedCuts(t.offs, k)[1:k] {
		if c > t.parts[len(t.parts)-1] && c < len(t.sizes) {
			t.parts = append(t.parts, c)
		}
	}
	t.parts = append(t.parts, len(t.sizes))
}

// prefixSums returns the offsets of consecutive ranges of the given sizes: offs[0] = 0, offs[i+1] =
// offs[i] + sizes[i].
func prefixSums(sizes []int) []int {
	offs := make([]int, len(sizes)+1)
	for i, sz := range sizes {
		offs[i+1] = offs[i] + sz
	}
	return offs
}

// balancedCuts returns k+1 boundaries 0 = c₀ ≤ c₁ ≤ … ≤ c_k = n over the n tensors whose element offsets
// are offs (offs[n] the total): c_p is the first tensor that ends past p/k of the elements, so the ranges
// [c_p, c_{p+1}) hold about equal element counts; some are empty when a few large tensors dominate.
func balancedCuts(offs []int, k int) []int {
	n := len(offs) - 1
	cuts := make([]int, k+1)
	i := 0
	for p := 1; p < k; p++ {
		for i < n && offs[i+1] <= offs[n]*p/k {
			i++
		}
		cuts[p] = i
	}
	cuts[k] = n
	return cuts
}

// runWorker feeds and runs worker w's graph and leaves its gradient and loss, each times the shard's
// share of the global batch, in wk.flat.
//
// With several workers, every one feeds first, then refreshes its range (syncParts) of every extra
// worker's copy of the weights, and waits until all workers have done so. So the feeds run side by side
// (host work on every core), the copies are shared out over all workers (the first worker, which binds
// the Store itself, waited idle while the others copied before), and all graphs start together: a worker
// that refreshed its copy first and fed afterwards fed while the first worker's graph already ran, twice
// as slowly, and started its graph last.
func (t *Trainer) runWorker(w int, wk *worker, synced *sync.WaitGroup) error {
	released := synced == nil
	defer func() {
		if !released {
			synced.Done() // a failed feed must not leave the other workers waiting
		}
	}()
	f0 := time.Now()
	if wk.shard != nil {
		wk.shard.Step = t.step
		if err := wk.obj.(ShardedObjective).FeedShard(wk.shard); err != nil {
			return fmt.Errorf("feeding the objective: %w", err)
		}
	} else if err := wk.obj.Feed(t.rng); err != nil {
		return fmt.Errorf("feeding the objective: %w", err)
	}
	s0 := time.Now()
	wk.feedTime = s0.Sub(f0)
	if synced != nil {
		for _, other := range t.workers[1:] {
			other.mirror.syncRange(t.syncParts[w], t.syncParts[w+1])
		}
		synced.Done()
		released = true
		synced.Wait() // every copy of the Store's weights is whole
		wk.syncTime = time.Since(s0)
	}
	defer wk.vm.Reset()
	wk.arena.Reset()
	r0 := time.Now()
	if err := wk.vm.RunAll(); err != nil {
		return fmt.Errorf("running the graph: %w", err)
	}
	wk.runTime = time.Since(r0)
	weight := 1.0
	if wk.shard != nil {
		weight = float64(wk.shard.Size) / float64(t.cfg.Batch)
	}
	loss, err := scalarValue(wk.lossVal)
	if err != nil {
		return fmt.Errorf("reading the loss: %w", err)
	}
	for i, v := range wk.gradVals {
		n := t.sizes[i]
		lo := 0
		if src := wk.gradFrom[i]; src.k >= 0 {
			v, lo = *wk.packed[src.k], src.off
		}
		d, ok := v.(*tensor.Dense)
		if !ok || d.Shape().TotalSize() < lo+n || wk.gradFrom[i].k < 0 && d.Shape().TotalSize() != n {
			shape := "no shape"
			if tt, isT := v.(tensor.Tensor); isT {
				shape = fmt.Sprintf("shape %v", tt.Shape())
			}
			return fmt.Errorf("gradient of %q is a %T (%s), want a *tensor.Dense of %d values", t.names[i], v, shape, n)
		}
		dst := wk.flat[t.offs[i]:t.offs[i+1]]
		switch d.Dtype() {
		case tensor.Float64:
			scaleInto(dst, d.Float64s()[lo:lo+n], weight)
		case tensor.Float32:
			scaleInto(dst, d.Float32s()[lo:lo+n], weight)
		default:
			return fmt.Errorf("gradient of %q has dtype %v", t.names[i], d.Dtype())
		}
	}
	wk.flat[t.offs[len(t.sizes)]] = loss * weight
	return nil
}

// allReduce sums t.flat over the ranks, in the model's dtype (a float32 model sends float32).
func (t *Trainer) allReduce() error {
	if t.comm.Size() == 1 {
		return nil
	}
	if t.flat32 == nil {
		return t.comm.AllReduceSum64(t.flat)
	}
	for i, v := range t.flat {
		t.flat32[i] = float32(v)
	}
	if err := t.comm.AllReduceSum32(t.flat32); err != nil {
		return err
	}
	for i, v := range t.flat32 {
		t.flat[i] = float64(v)
	}
	return nil
}

// metrics returns the objective's metrics of the step just run: from the per-sample numbers of every shard
// (gathered across ranks by an all-reduce of zero-padded vectors) when it is a SampleReporter, else its own
// Metrics when there is a single shard.
func (t *Trainer) metrics() (map[string]float64, error) {
	sr, ok := t.obj.(SampleReporter)
	if !ok || !t.sharded {
		if mr, ok := t.obj.(MetricsReporter); ok && len(t.workers) == 1 && t.comm.Size() == 1 {
			return mr.Metrics(), nil
		}
		return nil, nil
	}
	B := t.cfg.Batch
	var keys []string
	var buf []float64
	for w, wk := range t.workers {
		vals := wk.obj.(SampleReporter).SampleValues()
		if w == 0 {
			for k := range vals {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			buf = make([]float64, len(keys)*B)
		}
		if len(vals) != len(keys) {
			return nil, fmt.Errorf("worker %d reports %d per-sample numbers, worker 0 %d", w, len(vals), len(keys))
		}
		for i, k := range keys {
			v, ok := vals[k]
			if !ok || len(v) != wk.shard.Size {
				return nil, fmt.Errorf("worker %d: per-sample %q has %d values, want %d", w, k, len(v), wk.shard.Size)
			}
			copy(buf[i*B+wk.shard.Offset:], v)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	if t.comm.Size() > 1 {
		if err := t.comm.AllReduceSum64(buf); err != nil {
			return nil, fmt.Errorf("gathering per-sample metrics: %w", err)
		}
	}
	all := make(map[string][]float64, len(keys))
	for i, k := range keys {
		all[k] = buf[i*B : (i+1)*B]
	}
	return sr.MetricsOf(all), nil
}

// scalarValue reads a scalar Value of either float dtype.
func scalarValue(v G.Value) (float64, error) {
	switch x := v.(type) {
	case *G.F64:
		return float64(*x), nil
	case *G.F32:
		return float64(*x), nil
	case *tensor.Dense:
		if x.Shape().TotalSize() != 1 {
			return 0, fmt.Errorf("value has shape %v, want a scalar", x.Shape())
		}
		switch x.Dtype() {
		case tensor.Float64:
			return x.Float64s()[0], nil
		case tensor.Float32:
			return float64(x.Float32s()[0]), nil
		}
	case nil:
		return 0, errors.New("no value (the graph did not run)")
	}
	return 0, fmt.Errorf("unsupported value %T", v)
}
