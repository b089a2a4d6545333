package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"rgflow/checkpoints"
)

// runCapture runs a command and returns its stdout and stderr.
func runCapture(t *testing.T, f func([]string, *bytes.Buffer, *bytes.Buffer) error, args ...string) (string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if err := f(args, &out, &errb); err != nil {
		t.Fatalf("%v: %v\nstderr: %s", args, err, errb.String())
	}
	return out.String(), errb.String()
}

// handEMA copies a run's newest checkpoint into a new run directory with the moving averages loaded by hand
// in place of the weights (and no EMA), so that the raw weights of the copy are the original's EMA weights.
func handEMA(t *testing.T, dir string) string {
	t.Helper()
	c := lastCheckpoint(t, dir)
	if len(c.EMA) == 0 {
		t.Fatal("the run's checkpoint has no EMA weights")
	}
	byName := map[string]checkpoints.Array{}
	for _, a := range c.EMA {
		byName[a.Name] = a
	}
	changed := 0
	for i, w := range c.Weights {
		if e, ok := byName[w.Name]; ok {
			if !reflect.DeepEqual(e.Data, w.Data) {
				changed++
			}
			c.Weights[i] = e
		}
	}
	if changed == 0 {
		t.Fatal("the EMA weights equal the raw weights: the test could not tell them apart")
	}
	c.EMA = nil
	delete(c.Extra, "ema_decay")
	delete(c.Extra, "ema_updates")
	hand := filepath.Join(t.TempDir(), "hand")
	if _, err := checkpoints.Save(filepath.Join(hand, "checkpoints"), c); err != nil {
		t.Fatal(err)
	}
	return hand
}

func readNPZ(t *testing.T, path string) map[string]any {
	t.Helper()
	arr, err := checkpoints.ReadNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for _, a := range arr {
		out[a.Name] = a.Data
	}
	return out
}

// sample, eval and latents use the EMA weights when the checkpoint has them: their output differs from
// --ema=false and equals the output for a run whose weights are the EMA weights, loaded by hand.
func TestEMAWeightsInSampleEvalLatents(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	runCmd(t, trainCmd, small(dir, "--steps", "10", "--ema-decay", "0.9")...)
	hand := handEMA(t, dir)
	tmp := t.TempDir()

	sample := func(a []string, o, e *bytes.Buffer) error { return runSample(a, o, e) }
	eval := func(a []string, o, e *bytes.Buffer) error { return runEval(a, o, e) }
	latents := func(a []string, o, e *bytes.Buffer) error { return runLatents(a, o, e) }
	for _, c := range []struct {
		name string
		f    func([]string, *bytes.Buffer, *bytes.Buffer) error
		args []string
		npz  bool
	}{
		{"sample", sample, []string{"--n", "6"}, true},
		{"latents", latents, []string{"--n", "3"}, true},
		{"eval", eval, []string{"--n", "256", "--json"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			output := func(run, tag string, extra ...string) (any, string) {
				args := append([]string{run}, c.args...)
				path := filepath.Join(tmp, c.name+tag+".npz")
				if c.npz {
					args = append(args, "--out", path)
				}
				out, errs := runCapture(t, c.f, append(args, extra...)...)
				if c.npz {
					return readNPZ(t, path), errs
				}
				return out, errs
			}
			ema, msg := output(dir, "ema")
			if !strings.Contains(msg, "using the EMA weights of step 10 (decay 0.9, 10 updates") {
				t.Errorf("default: stderr %q does not say the EMA weights are used", msg)
			}
			raw, msg := output(dir, "raw", "--ema=false")
			if !strings.Contains(msg, "using the raw weights of step 10 (--ema=false") {
				t.Errorf("--ema=false: stderr %q does not say the raw weights are used", msg)
			}
			byHand, msg := output(hand, "hand")
			if !strings.Contains(msg, "the checkpoint has no EMA weights") {
				t.Errorf("hand-made run: stderr %q", msg)
			}
			if reflect.DeepEqual(ema, raw) {
				t.Error("the EMA output equals the --ema=false output")
			}
			if !reflect.DeepEqual(ema, byHand) {
				t.Error("the EMA output differs from the output with the EMA weights loaded by hand")
			}
		})
	}
}

// --ema-decay is validated, saved in the run's config and restored on resume; the checkpoint holds ema/…
// tensors.
func TestEMADecayFlag(t *testing.T) {
	tmp := t.TempDir()
	var out, errb bytes.Buffer
	if err := runTrain(small(filepath.Join(tmp, "bad"), "--steps", "2", "--ema-decay", "1"), &out, &errb); err == nil ||
		!strings.Contains(err.Error(), "--ema-decay") {
		t.Errorf("--ema-decay 1: error %v", err)
	}
	dir := filepath.Join(tmp, "run")
	runCmd(t, trainCmd, small(dir, "--steps", "20", "--ema-decay", "0.95", "--stop-after", "10")...)
	runCmd(t, trainCmd, "lattice", "--resume", dir)
	c := lastCheckpoint(t, dir)
	if c.Step != 20 || c.Extra["ema_updates"] != "20" || c.Extra["ema_decay"] != "0.95" || len(c.EMA) != len(c.Weights) {
		t.Errorf("resumed checkpoint: step %d, ema %q updates %q, %d averages for %d weights",
			c.Step, c.Extra["ema_decay"], c.Extra["ema_updates"], len(c.EMA), len(c.Weights))
	}
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"ema_decay": 0.95`) {
		t.Errorf("config.json lacks the EMA decay:\n%s", raw)
	}
}

// The image commands take --ema-decay and --ema too.
func TestEMAImages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	runCmd(t, trainCmd, smallImages(dir, "--steps", "4", "--ema-decay", "0.9")...)
	hand := handEMA(t, dir)
	sample := func(a []string, o, e *bytes.Buffer) error { return runSample(a, o, e) }
	tmp := t.TempDir()
	get := func(run, tag string, extra ...string) (map[string]any, string) {
		path := filepath.Join(tmp, tag+".npz")
		_, msg := runCapture(t, sample, append([]string{run, "--n", "3", "--out", path}, extra...)...)
		return readNPZ(t, path), msg
	}
	ema, msg := get(dir, "ema")
	if !strings.Contains(msg, "using the EMA weights") {
		t.Errorf("stderr %q", msg)
	}
	raw, _ := get(dir, "raw", "--ema=false")
	byHand, _ := get(hand, "hand")
	if reflect.DeepEqual(ema, raw) || !reflect.DeepEqual(ema, byHand) {
		t.Error("image sample: the EMA output must differ from --ema=false and equal the hand-loaded EMA weights")
	}
}
