package train

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorgonia.org/tensor"

	"rgflow/checkpoints"
	"rgflow/layers"
)

// trainFormat is stored as the checkpoint's Extra["train_format"]; Resume rejects any other value.
const trainFormat = "1"

// Extra keys written by the Trainer.
const (
	extraFormat    = "train_format"
	extraWall      = "wall_s"
	extraDtype     = "dtype"
	extraOptimizer = "optimizer"
	extraFrozen    = "frozen"      // JSON list of the frozen parameters
	extraEMADecay  = "ema_decay"   // the decay of the saved moving average
	extraEMAUpdate = "ema_updates" // its update count
)

// CheckpointDir is where a run directory keeps its checkpoints.
func CheckpointDir(runDir string) string { return filepath.Join(runDir, "checkpoints") }

func (t *Trainer) ckptDir() string { return CheckpointDir(t.cfg.Out) }

// newestCheckpointFile returns the newest step-*.safetensors file name in dir, without loading it.
func newestCheckpointFile(dir string) (string, bool) {
	m, _ := filepath.Glob(filepath.Join(dir, "step-*.safetensors"))
	if len(m) == 0 {
		return "", false
	}
	slices.Sort(m)
	return m[len(m)-1], true
}

// checkpoint writes the current state (weights, optimiser, step, RNG, config) to Out/checkpoints and prunes old
// ones. It returns "" without writing when there is no run directory.
func (t *Trainer) checkpoint() (string, error) {
	if t.cfg.Out == "" || t.comm.Rank() != 0 {
		return "", nil
	}
	c, err := t.snapshot()
	if err != nil {
		return "", err
	}
	path, err := checkpoints.Save(t.ckptDir(), c)
	if err != nil {
		return "", fmt.Errorf("train: step %d: writing the checkpoint: %w", t.step, err)
	}
	t.lastCkpt = path
	if t.cfg.Keep > 0 {
		if err := checkpoints.Prune(t.ckptDir(), t.cfg.Keep); err != nil {
			return path, fmt.Errorf("train: step %d: checkpoint %s written, but pruning old ones failed: %w", t.step, path, err)
		}
	}
	return path, nil
}

// snapshot copies the trainer's state into a Checkpoint.
func (t *Trainer) snapshot() (*checkpoints.Checkpoint, error) {
	rng, err := t.pcg.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("train: saving the RNG state: %w", err)
	}
	cfgJSON := []byte(t.cfg.RunConfig)
	if len(cfgJSON) == 0 {
		if cfgJSON, err = json.Marshal(t.cfg); err != nil {
			return nil, fmt.Errorf("train: encoding the config: %w", err)
		}
	}
	names := t.store.SortedNames()
	weights := make([]checkpoints.Array, len(names))
	for i, n := range names {
		p, _ := t.store.Get(n)
		if weights[i], err = denseArray(n, p); err != nil {
			return nil, err
		}
	}
	bufNames := t.store.BufferNames()
	buffers := make([]checkpoints.Array, len(bufNames))
	for i, n := range bufNames {
		b, _ := t.store.GetBuffer(n)
		if buffers[i], err = denseArray(n, b); err != nil {
			return nil, err
		}
	}
	frozen, err := json.Marshal(t.store.FrozenNames())
	if err != nil {
		return nil, err
	}
	opt := "adam"
	if t.opt.cfg.AdamW {
		opt = "adamw"
	}
	extra := map[string]string{
		extraFormat:    trainFormat,
		extraWall:      strconv.FormatFloat(t.wall.Seconds(), 'g', -1, 64),
		extraDtype:     t.store.Dtype().String(),
		extraOptimizer: opt,
		extraFrozen:    string(frozen),
	}
	var ema []checkpoints.Array
	if t.ema != nil && t.ema.Started() {
		ema = t.ema.State()
		extra[extraEMADecay] = strconv.FormatFloat(t.ema.Decay(), 'g', -1, 64)
		extra[extraEMAUpdate] = strconv.FormatInt(t.ema.Updates(), 10)
	}
	if so, ok := t.obj.(StatefulObjective); ok {
		for k, v := range so.State() {
			extra[extraObjective+k] = v
		}
	}
	return &checkpoints.Checkpoint{
		Step:    t.step,
		Weights: weights,
		Optim:   t.opt.State(),
		Buffers: buffers,
		EMA:     ema,
		RNG:     rng,
		Config:  cfgJSON,
		Extra:   extra,
	}, nil
}

// StatefulObjective is implemented by objectives with state of their own that an exact resume needs (the
// position in the data order, an annealing step). State is stored in the checkpoint's metadata under
// "objective/<key>"; Restore must validate everything before changing anything.
type StatefulObjective interface {
	State() map[string]string
	Restore(state map[string]string) error
}

const extraObjective = "objective/"

// Resume loads the newest valid checkpoint of the run directory dir (dir/checkpoints, via checkpoints.Latest)
// into the store, the optimiser, the RNG and the step counter, so that Run continues exactly where that run
// left off. Config.Out is where the continued run writes (normally dir); its metrics.jsonl is cut back to the
// checkpoint's step. Every store parameter must be in the checkpoint with its shape and dtype, and vice versa.
// The same holds for buffers. The frozen parameters must be the ones the checkpoint records. With
// Config.EMADecay > 0 the saved moving average continues (a checkpoint without one starts it afresh at the
// restored weights); with 0 any saved average is dropped.
// On error nothing has been changed. The checkpoint's own config is not applied: the caller decides which
// settings to take from it (see CheckpointConfig).
//
// The checkpoint does not depend on the number of workers or ranks: a run may continue on any other split
// of the same global batch. With several ranks every rank reads the checkpoint itself, so the run directory
// must be on a file system they share.
func (t *Trainer) Resume(dir string) error {
	path, c, skipped, err := checkpoints.Latest(CheckpointDir(dir))
	if err != nil {
		return fmt.Errorf("train: resume %s: %w", dir, err)
	}
	if t.cfg.Progress != nil {
		for _, e := range skipped { // newer files that did not load; Latest chose the newest good one
			fmt.Fprintf(t.cfg.Progress, "train: resume: skipping an unreadable checkpoint: %v\n", e)
		}
	}
	if err := t.restore(c); err != nil {
		return fmt.Errorf("train: resume from %s: %w", path, err)
	}
	t.lastCkpt = path
	t.resumed = true
	if t.cfg.Out != "" && t.comm.Rank() == 0 {
		if err := trimMetrics(filepath.Join(t.cfg.Out, metricsFile), t.step); err != nil {
			return err
		}
	}
	return nil
}

// restore validates c against the trainer and then applies it.
func (t *Trainer) restore(c *checkpoints.Checkpoint) error {
	if f := c.Extra[extraFormat]; f != trainFormat {
		return fmt.Errorf("train format %q, want %q", f, trainFormat)
	}
	if c.Step > t.cfg.Steps {
		return fmt.Errorf("checkpoint is at step %d, past the run's total of %d steps (raise --steps)", c.Step, t.cfg.Steps)
	}
	want := map[string]bool{}
	for _, n := range t.store.Names() {
		want[n] = true
	}
	for _, a := range c.Weights {
		p, ok := t.store.Get(a.Name)
		if !ok {
			return fmt.Errorf("weight %q is not a parameter of this model", a.Name)
		}
		delete(want, a.Name)
		if !slices.Equal(p.Shape(), a.Shape) {
			return fmt.Errorf("weight %q has shape %v, the model's is %v", a.Name, a.Shape, []int(p.Shape()))
		}
		n := p.Shape().TotalSize()
		ok64, ok32 := false, false
		switch d := a.Data.(type) {
		case []float64:
			ok64 = len(d) == n
		case []float32:
			ok32 = len(d) == n
		}
		if !(p.Dtype() == tensor.Float64 && ok64 || p.Dtype() == tensor.Float32 && ok32) {
			return fmt.Errorf("weight %q holds %T of length %d, the model wants %d values of %v", a.Name, a.Data, dataLen(a.Data), n, p.Dtype())
		}
	}
	if len(want) > 0 {
		missing := make([]string, 0, len(want))
		for n := range want {
			missing = append(missing, n)
		}
		slices.Sort(missing)
		return fmt.Errorf("the checkpoint lacks %d model parameters: %q", len(missing), missing)
	}
	frozen, err := checkpointFrozen(c)
	if err != nil {
		return err
	}
	if have := t.store.FrozenNames(); !slices.Equal(frozen, have) {
		return fmt.Errorf("the checkpoint's frozen parameters are %q, this model's are %q (freeze the same ones to resume)", frozen, have)
	}
	buffers, err := checkBuffers(t.store, c.Buffers)
	if err != nil {
		return err
	}
	var ema *EMA
	if t.ema != nil {
		scratch := *t.ema
		ema = &scratch
		ema.avg, ema.updates = nil, 0
		if len(c.EMA) > 0 {
			n, err := strconv.ParseInt(c.Extra[extraEMAUpdate], 10, 64)
			if err != nil {
				return fmt.Errorf("extra %s = %q: %w", extraEMAUpdate, c.Extra[extraEMAUpdate], err)
			}
			if err := ema.Restore(c.EMA, n); err != nil {
				return err
			}
		}
	}
	pcg := *t.pcg
	if err := pcg.UnmarshalBinary(c.RNG); err != nil {
		return fmt.Errorf("RNG state: %w", err)
	}
	var wall float64
	if s, ok := c.Extra[extraWall]; ok {
		var err error
		if wall, err = strconv.ParseFloat(s, 64); err != nil {
			return fmt.Errorf("extra %s = %q: %w", extraWall, s, err)
		}
	}
	// The objective and the optimiser validate their state and keep the old one on error; the optimiser goes
	// last of the fallible steps, and if it fails the objective gets its previous state back.
	so, stateful := t.obj.(StatefulObjective)
	var prev map[string]string
	if stateful {
		prev = so.State()
		st := map[string]string{}
		for k, v := range c.Extra {
			if strings.HasPrefix(k, extraObjective) {
				st[strings.TrimPrefix(k, extraObjective)] = v
			}
		}
		if err := so.Restore(st); err != nil {
			return fmt.Errorf("objective state: %w", err)
		}
	}
	if err := t.opt.Restore(c.Optim); err != nil {
		if stateful {
			_ = so.Restore(prev) // its own earlier state, valid by construction
		}
		return err
	}
	if stateful { // the other workers' copies take the state the first one accepted
		st := so.State()
		for w, wk := range t.workers[1:] {
			if err := wk.obj.(StatefulObjective).Restore(st); err != nil {
				return fmt.Errorf("objective state of worker %d: %w", w+1, err)
			}
		}
	}
	for _, a := range c.Weights {
		p, _ := t.store.Get(a.Name)
		switch d := a.Data.(type) {
		case []float64:
			copy(p.Float64s(), d)
		case []float32:
			copy(p.Float32s(), d)
		}
	}
	for _, b := range buffers {
		b.apply()
	}
	if ema != nil {
		*t.ema = *ema
	}
	*t.pcg = pcg
	t.step = c.Step
	t.wall = time.Duration(wall * float64(time.Second))
	return nil
}

// CheckpointConfig returns the config JSON stored in the newest valid checkpoint of a run directory, for a
// CLI that restores the saved settings before applying explicitly given flags.
func CheckpointConfig(dir string) ([]byte, error) {
	_, c, _, err := checkpoints.Latest(CheckpointDir(dir))
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return c.Config, nil
}

// checkpointFrozen reads the sorted list of frozen parameters a checkpoint records (none for checkpoints
// written before frozen parameters existed).
func checkpointFrozen(c *checkpoints.Checkpoint) ([]string, error) {
	raw, ok := c.Extra[extraFrozen]
	if !ok {
		return nil, nil
	}
	var names []string
	if err := json.Unmarshal([]byte(raw), &names); err != nil {
		return nil, fmt.Errorf("extra %s = %q is not a JSON list of names: %w", extraFrozen, raw, err)
	}
	slices.Sort(names)
	if len(names) == 0 {
		names = nil
	}
	return names, nil
}

// pendingBuffer is a validated buffer value waiting to be copied into the store.
type pendingBuffer struct {
	dst *tensor.Dense
	src checkpoints.Array
}

func (b pendingBuffer) apply() {
	switch d := b.src.Data.(type) {
	case []float64:
		copy(b.dst.Float64s(), d)
	case []float32:
		copy(b.dst.Float32s(), d)
	}
}

// checkBuffers validates a checkpoint's buffers against the store's: the same names, shapes and dtypes.
func checkBuffers(store *layers.Store, arrays []checkpoints.Array) ([]pendingBuffer, error) {
	want := map[string]bool{}
	for _, n := range store.BufferNames() {
		want[n] = true
	}
	out := make([]pendingBuffer, 0, len(arrays))
	for _, a := range arrays {
		b, ok := store.GetBuffer(a.Name)
		if !ok || !want[a.Name] {
			return nil, fmt.Errorf("buffer %q is not a buffer of this model (or appears twice)", a.Name)
		}
		delete(want, a.Name)
		if _, err := arrayDense(a, b); err != nil {
			return nil, fmt.Errorf("buffer %w", err)
		}
		out = append(out, pendingBuffer{dst: b, src: a})
	}
	if len(want) > 0 {
		missing := make([]string, 0, len(want))
		for n := range want {
			missing = append(missing, n)
		}
		slices.Sort(missing)
		return nil, fmt.Errorf("the checkpoint lacks %d model buffers: %q", len(missing), missing)
	}
	return out, nil
}

// LoadWeights copies the raw (not averaged) weights and the buffers of the newest valid checkpoint of a run
// directory into store: LoadRunWeights(store, dir, false).
func LoadWeights(store *layers.Store, dir string) (step int64, err error) {
	l, err := LoadRunWeights(store, dir, false)
	return l.Step, err
}

// Loaded says what LoadRunWeights put into a store.
type Loaded struct {
	Path       string   // the checkpoint file
	Step       int64    // its step
	HasEMA     bool     // the checkpoint holds a moving average of the weights
	EMA        bool     // the averaged weights were loaded (asked for and present)
	EMADecay   float64  // the average's decay (when HasEMA)
	EMAUpdates int64    // its number of updates (when HasEMA)
	Frozen     []string // parameters the checkpoint records as frozen (now frozen in store too)
}

// LoadRunWeights copies the weights of the newest valid checkpoint of a run directory into store, for sampling
// or evaluation without a Trainer. With useEMA and a checkpoint that holds a moving average, every averaged
// parameter gets its average and the others (frozen ones) their weight; otherwise the raw weights are loaded.
// Every checkpoint weight must exist in store with its shape, and every store parameter in the checkpoint.
// Buffers are loaded too (created in store if the model has not made them yet), and the parameters the
// checkpoint records as frozen are frozen in store. On error store is unchanged.
func LoadRunWeights(store *layers.Store, dir string, useEMA bool) (Loaded, error) {
	path, c, _, err := checkpoints.Latest(CheckpointDir(dir))
	if err != nil {
		return Loaded{}, fmt.Errorf("train: %w", err)
	}
	l := Loaded{Path: path, Step: c.Step, HasEMA: len(c.EMA) > 0}
	fail := func(err error) (Loaded, error) { return Loaded{}, fmt.Errorf("train: %s: %w", path, err) }
	seen := map[string]bool{}
	for _, a := range c.Weights {
		p, ok := store.Get(a.Name)
		if !ok {
			return fail(fmt.Errorf("weight %q is not a parameter of this model", a.Name))
		}
		if !slices.Equal(p.Shape(), a.Shape) {
			return fail(fmt.Errorf("weight %q has shape %v, the model's is %v", a.Name, a.Shape, []int(p.Shape())))
		}
		if _, err := float64sOf(a); err != nil {
			return fail(err)
		}
		seen[a.Name] = true
	}
	for _, n := range store.Names() {
		if !seen[n] {
			return fail(fmt.Errorf("no weight for model parameter %q", n))
		}
	}
	for _, a := range c.Buffers {
		if b, ok := store.GetBuffer(a.Name); ok && !slices.Equal(b.Shape(), a.Shape) {
			return fail(fmt.Errorf("buffer %q has shape %v, the model's is %v", a.Name, a.Shape, []int(b.Shape())))
		}
		if _, ok := store.Get(a.Name); ok {
			return fail(fmt.Errorf("buffer %q is a parameter of this model", a.Name))
		}
		if _, err := float64sOf(a); err != nil {
			return fail(err)
		}
	}
	if l.Frozen, err = checkpointFrozen(c); err != nil {
		return fail(err)
	}
	for _, n := range l.Frozen {
		if !seen[n] {
			return fail(fmt.Errorf("frozen parameter %q has no weight", n))
		}
	}
	load := c.Weights
	if l.HasEMA {
		if l.EMADecay, err = strconv.ParseFloat(c.Extra[extraEMADecay], 64); err != nil {
			return fail(fmt.Errorf("extra %s = %q: %w", extraEMADecay, c.Extra[extraEMADecay], err))
		}
		if l.EMAUpdates, err = strconv.ParseInt(c.Extra[extraEMAUpdate], 10, 64); err != nil {
			return fail(fmt.Errorf("extra %s = %q: %w", extraEMAUpdate, c.Extra[extraEMAUpdate], err))
		}
		for _, a := range c.EMA {
			p, ok := store.Get(a.Name)
			if !ok || !slices.Equal(p.Shape(), a.Shape) {
				return fail(fmt.Errorf("moving average %q does not match a parameter of this model", a.Name))
			}
			if _, err := float64sOf(a); err != nil {
				return fail(err)
			}
		}
		if useEMA {
			l.EMA = true
			load = append(slices.Clone(c.Weights), c.EMA...) // the averages overwrite their weights
		}
	}
	for _, a := range load {
		p, _ := store.Get(a.Name)
		vals, _ := float64sOf(a)
		if err := store.Set(a.Name, p.Shape(), vals); err != nil {
			return fail(err)
		}
	}
	for _, a := range c.Buffers {
		vals, _ := float64sOf(a)
		if _, ok := store.GetBuffer(a.Name); !ok {
			store.Buffer(a.Name, a.Shape, vals)
		} else if err := store.SetBuffer(a.Name, a.Shape, vals); err != nil {
			return fail(err)
		}
	}
	if err := store.Freeze(l.Frozen...); err != nil {
		return fail(err)
	}
	return l, nil
}

// float64sOf converts a float32 or float64 array's values to float64.
func float64sOf(a checkpoints.Array) ([]float64, error) {
	switch d := a.Data.(type) {
	case []float64:
		return d, nil
	case []float32:
		vals := make([]float64, len(d))
		for i, x := range d {
			vals[i] = float64(x)
		}
		return vals, nil
	}
	return nil, fmt.Errorf("%q holds %T, want float32 or float64 values", a.Name, a.Data)
}
