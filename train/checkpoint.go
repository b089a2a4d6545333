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
	if t.cfg.Out == "" {
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
		var data any
		switch p.Dtype() {
		case tensor.Float64:
			data = slices.Clone(p.Float64s())
		case tensor.Float32:
			data = slices.Clone(p.Float32s())
		default:
			return nil, fmt.Errorf("train: parameter %q has dtype %v", n, p.Dtype())
		}
		weights[i] = checkpoints.Array{Name: n, Shape: slices.Clone([]int(p.Shape())), Data: data}
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
// On error nothing has been changed. The checkpoint's own config is not applied: the caller decides which
// settings to take from it (see CheckpointConfig).
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
	if t.cfg.Out != "" {
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
	for _, a := range c.Weights {
		p, _ := t.store.Get(a.Name)
		switch d := a.Data.(type) {
		case []float64:
			copy(p.Float64s(), d)
		case []float32:
			copy(p.Float32s(), d)
		}
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

// LoadWeights copies the weights of the newest valid checkpoint of a run directory into store (for sampling or
// evaluation without a Trainer). Every checkpoint weight must exist in store with its shape; store parameters
// absent from the checkpoint are an error too.
func LoadWeights(store *layers.Store, dir string) (step int64, err error) {
	path, c, _, err := checkpoints.Latest(CheckpointDir(dir))
	if err != nil {
		return 0, fmt.Errorf("train: %w", err)
	}
	seen := map[string]bool{}
	for _, a := range c.Weights {
		p, ok := store.Get(a.Name)
		if !ok {
			return 0, fmt.Errorf("train: %s: weight %q is not a parameter of this model", path, a.Name)
		}
		if !slices.Equal(p.Shape(), a.Shape) {
			return 0, fmt.Errorf("train: %s: weight %q has shape %v, the model's is %v", path, a.Name, a.Shape, []int(p.Shape()))
		}
		seen[a.Name] = true
	}
	for _, n := range store.Names() {
		if !seen[n] {
			return 0, fmt.Errorf("train: %s: no weight for model parameter %q", path, n)
		}
	}
	for _, a := range c.Weights {
		p, _ := store.Get(a.Name)
		var vals []float64
		switch d := a.Data.(type) {
		case []float64:
			vals = d
		case []float32:
			vals = make([]float64, len(d))
			for i, x := range d {
				vals[i] = float64(x)
			}
		default:
			return 0, fmt.Errorf("train: %s: weight %q holds %T", path, a.Name, a.Data)
		}
		if err := store.Set(a.Name, p.Shape(), vals); err != nil {
			return 0, fmt.Errorf("train: %s: %w", path, err)
		}
	}
	return c.Step, nil
}
