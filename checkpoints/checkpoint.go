package checkpoints

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// FormatVersion is stored in every checkpoint's metadata as "format_version"; Load rejects any other value.
const FormatVersion = "rgflow-ckpt-1"

// Metadata keys and tensor-name prefixes of a checkpoint file.
const (
	keyFormat     = "format_version"
	keyStep       = "step"
	keyRNG        = "rng"
	keyConfig     = "config"
	prefixExtra   = "extra/"
	prefixWeights = "weights/"
	prefixOptim   = "optim/"
	prefixBuffers = "buffers/"
	prefixEMA     = "ema/"
)

// ErrNoCheckpoint is returned (wrapped) by Latest when a directory holds no checkpoint that loads.
var ErrNoCheckpoint = errors.New("no valid checkpoint")

// Checkpoint is everything needed to continue a run bit for bit.
type Checkpoint struct {
	Step    int64
	Weights []Array           // model parameters, names as in the model ("level0/disentangler/coupling3/s/w0")
	Optim   []Array           // optimiser state, names like "adam/m/<param>", "adam/v/<param>"
	Buffers []Array           // non-trained model state (running statistics, counters), names as in the model
	EMA     []Array           // exponential moving averages of the weights, one per averaged weight, same names
	RNG     []byte            // serialised RNG state (math/rand/v2 PCG MarshalBinary)
	Config  []byte            // JSON of the resolved run config
	Extra   map[string]string // free-form metadata (data-order position, etc.)
}

// FileName returns the base name of the checkpoint of step: "step-NNNNNNN.safetensors".
func FileName(step int64) string { return fmt.Sprintf("step-%07d.safetensors", step) }

// parseFileName returns the step of a "step-NNNNNNN.safetensors" name.
func parseFileName(name string) (int64, bool) {
	digits, ok := strings.CutPrefix(name, "step-")
	if !ok {
		return 0, false
	}
	digits, ok = strings.CutSuffix(digits, ".safetensors")
	if !ok || len(digits) < 7 || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	step, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || FileName(step) != name {
		return 0, false
	}
	return step, true
}

// Save writes c to dir/step-NNNNNNN.safetensors atomically (creating dir if needed) and returns the path. An
// existing checkpoint of the same step is replaced.
func Save(dir string, c *Checkpoint) (path string, err error) {
	return save(dir, c, nil)
}

// save is Save with a hook that wraps the file writer, so that tests can make a write fail part way.
func save(dir string, c *Checkpoint, wrap func(io.Writer) io.Writer) (string, error) {
	path := filepath.Join(dir, FileName(c.Step))
	arrays, md, err := c.encode()
	if err != nil {
		return "", fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	header, order, err := safetensorsHeader(arrays, md)
	if err != nil {
		return "", fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("checkpoints: %w", err)
	}
	err = WriteFileAtomic(path, func(w io.Writer) error {
		if wrap != nil {
			w = wrap(w)
		}
		if err := writeSafetensorsBody(w, header, arrays, order); err != nil {
			return fmt.Errorf("checkpoints: %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return path, nil
}

// encode returns the tensors and metadata of c's file.
func (c *Checkpoint) encode() ([]Array, map[string]string, error) {
	if c.Step < 0 {
		return nil, nil, fmt.Errorf("negative step %d", c.Step)
	}
	if len(c.Config) > 0 && !json.Valid(c.Config) {
		return nil, nil, errors.New("Config is not valid JSON")
	}
	arrays := make([]Array, 0, len(c.Weights)+len(c.Optim)+len(c.Buffers)+len(c.EMA))
	for _, group := range []struct {
		prefix string
		arrays []Array
	}{{prefixWeights, c.Weights}, {prefixOptim, c.Optim}, {prefixBuffers, c.Buffers}, {prefixEMA, c.EMA}} {
		for _, a := range group.arrays {
			if a.Name == "" {
				return nil, nil, fmt.Errorf("%sarray with an empty name", group.prefix)
			}
			a.Name = group.prefix + a.Name
			arrays = append(arrays, a)
		}
	}
	md := map[string]string{
		keyFormat: FormatVersion,
		keyStep:   strconv.FormatInt(c.Step, 10),
	}
	if len(c.RNG) > 0 {
		md[keyRNG] = base64.StdEncoding.EncodeToString(c.RNG)
	}
	if len(c.Config) > 0 {
		md[keyConfig] = string(c.Config)
	}
	for k, v := range c.Extra {
		if k == "" {
			return nil, nil, errors.New("Extra has an empty key")
		}
		md[prefixExtra+k] = v
	}
	return arrays, md, nil
}

// Load reads and validates a checkpoint file: the safetensors structure, the format version, the metadata, the
// tensor prefixes and, for a file named step-NNNNNNN.safetensors, that the stored step matches the name.
func Load(path string) (*Checkpoint, error) {
	arrays, md, err := ReadSafetensors(path)
	if err != nil {
		return nil, err
	}
	c, err := decodeCheckpoint(filepath.Base(path), arrays, md)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	return c, nil
}

func decodeCheckpoint(base string, arrays []Array, md map[string]string) (*Checkpoint, error) {
	if err := checkFormat(md); err != nil {
		return nil, err
	}
	c := &Checkpoint{}
	for k, v := range md {
		var err error
		switch {
		case k == keyFormat:
		case k == keyStep:
			c.Step, err = strconv.ParseInt(v, 10, 64)
			if err != nil || c.Step < 0 {
				err = fmt.Errorf("metadata step %q is not a non-negative integer", v)
			}
		case k == keyRNG:
			c.RNG, err = base64.StdEncoding.DecodeString(v)
			if err != nil {
				err = fmt.Errorf("metadata rng is not valid base64: %v", err)
			}
		case k == keyConfig:
			if !json.Valid([]byte(v)) {
				err = errors.New("metadata config is not valid JSON")
			}
			c.Config = []byte(v)
		case strings.HasPrefix(k, prefixExtra) && len(k) > len(prefixExtra):
			if c.Extra == nil {
				c.Extra = map[string]string{}
			}
			c.Extra[k[len(prefixExtra):]] = v
		default:
			err = fmt.Errorf("unknown metadata key %q", k)
		}
		if err != nil {
			return nil, err
		}
	}
	if _, ok := md[keyStep]; !ok {
		return nil, errors.New("metadata has no step")
	}
	if step, ok := parseFileName(base); ok && step != c.Step {
		return nil, fmt.Errorf("metadata step %d does not match the file name", c.Step)
	}
	for _, a := range arrays {
		switch {
		case strings.HasPrefix(a.Name, prefixWeights) && len(a.Name) > len(prefixWeights):
			a.Name = a.Name[len(prefixWeights):]
			c.Weights = append(c.Weights, a)
		case strings.HasPrefix(a.Name, prefixOptim) && len(a.Name) > len(prefixOptim):
			a.Name = a.Name[len(prefixOptim):]
			c.Optim = append(c.Optim, a)
		case strings.HasPrefix(a.Name, prefixBuffers) && len(a.Name) > len(prefixBuffers):
			a.Name = a.Name[len(prefixBuffers):]
			c.Buffers = append(c.Buffers, a)
		case strings.HasPrefix(a.Name, prefixEMA) && len(a.Name) > len(prefixEMA):
			a.Name = a.Name[len(prefixEMA):]
			c.EMA = append(c.EMA, a)
		default:
			return nil, fmt.Errorf("tensor %q: name must start with %q, %q, %q or %q", a.Name, prefixWeights, prefixOptim, prefixBuffers, prefixEMA)
		}
	}
	return c, nil
}

func checkFormat(md map[string]string) error {
	v, ok := md[keyFormat]
	if !ok {
		return fmt.Errorf("metadata has no %s, want %q (not an rgflow checkpoint?)", keyFormat, FormatVersion)
	}
	if v != FormatVersion {
		return fmt.Errorf("checkpoint format %q, want %q (written by another rgflow version?)", v, FormatVersion)
	}
	return nil
}

// stepFile is a checkpoint file found in a directory.
type stepFile struct {
	step int64
	path string
}

// listSteps returns dir's step-NNNNNNN.safetensors files, newest (highest step) first, and its stale temporary
// files.
func listSteps(dir string) (steps []stepFile, temps []string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		name := e.Name()
		if step, ok := parseFileName(name); ok && e.Type().IsRegular() {
			steps = append(steps, stepFile{step, filepath.Join(dir, name)})
		} else if isTempName(name) && strings.HasPrefix(name, ".step-") && e.Type().IsRegular() {
			temps = append(temps, filepath.Join(dir, name))
		}
	}
	slices.SortFunc(steps, func(a, b stepFile) int { return cmp.Compare(b.step, a.step) })
	return steps, temps, nil
}

// Latest returns the newest checkpoint in dir that loads, with its path. Newer files that fail to load (corrupt or
// truncated, e.g. by a crash) are skipped and returned in skipped, newest first. If none loads, err wraps
// ErrNoCheckpoint (and fs.ErrNotExist when dir does not exist) and lists the reasons.
func Latest(dir string) (path string, c *Checkpoint, skipped []error, err error) {
	steps, _, err := listSteps(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil, nil, fmt.Errorf("checkpoints: %s: %w: %w", dir, ErrNoCheckpoint, fs.ErrNotExist)
		}
		return "", nil, nil, fmt.Errorf("checkpoints: %w", err)
	}
	for _, s := range steps {
		c, err := Load(s.path)
		if err == nil {
			return s.path, c, skipped, nil
		}
		skipped = append(skipped, err)
	}
	if len(steps) == 0 {
		return "", nil, nil, fmt.Errorf("checkpoints: %s: %w (no step-NNNNNNN.safetensors files)", dir, ErrNoCheckpoint)
	}
	return "", nil, skipped, fmt.Errorf("checkpoints: %s: %w: all %d checkpoint files are invalid: %w", dir, ErrNoCheckpoint, len(steps), errors.Join(skipped...))
}

// Prune keeps the newest keep (≥ 1) checkpoints in dir and removes older ones, and removes stale temporary files
// left by interrupted saves (so it must not run concurrently with Save on the same dir). Only checkpoints whose
// structure checks out (header, sizes, format version; not a full load) count towards keep: a corrupt file never
// causes a good one to be removed, and corrupt files newer than the kept ones are left for inspection.
func Prune(dir string, keep int) error {
	if keep < 1 {
		return fmt.Errorf("checkpoints: Prune %s: keep = %d, want ≥ 1", dir, keep)
	}
	steps, temps, err := listSteps(dir)
	if err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	var errs []error
	for _, t := range temps {
		if err := os.Remove(t); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	kept := 0
	for i, s := range steps {
		if kept == keep {
			for _, old := range steps[i:] {
				if err := os.Remove(old.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, err)
				}
			}
			break
		}
		if checkStructure(s.path) == nil {
			kept++
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("checkpoints: Prune %s: %w", dir, errors.Join(errs...))
	}
	return syncDir(dir)
}

// checkStructure validates a checkpoint's header, offsets and sizes against its length, and its format version,
// without reading the tensor data.
func checkStructure(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close() // read-only
	st, err := f.Stat()
	if err != nil {
		return err
	}
	_, md, _, err := readSafetensorsHeader(f, st.Size())
	if err != nil {
		return err
	}
	return checkFormat(md)
}
