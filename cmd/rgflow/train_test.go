package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"rgflow/checkpoints"
)

// small is a fast lattice run: free field at L=4 with a small model.
func small(out string, extra ...string) []string {
	return append([]string{"lattice", "--action", "free", "--m2", "0.5", "--L", "4", "--preset", "neuralrg-small",
		"--batch", "16", "--lr", "3e-3", "--log-every", "5", "--checkpoint-every", "10", "--eval-n", "0",
		"--out", out}, extra...)
}

func runCmd(t *testing.T, f func([]string, *bytes.Buffer, *bytes.Buffer) error, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if err := f(args, &out, &errb); err != nil {
		t.Fatalf("%v: %v\nstderr: %s", args, err, errb.String())
	}
	return out.String()
}

func trainCmd(args []string, out, errb *bytes.Buffer) error { return runTrain(args, out, errb) }

func lastCheckpoint(t *testing.T, dir string) *checkpoints.Checkpoint {
	t.Helper()
	_, c, _, err := checkpoints.Latest(filepath.Join(dir, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func loggedLosses(t *testing.T, dir string) map[float64]float64 {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[float64]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("metrics.jsonl: %v", err)
		}
		out[m["step"].(float64)] = m["loss"].(float64)
	}
	return out
}

// Training 2N steps equals N steps, resume, N more: identical weights, optimiser state and losses, bit for
// bit, with the real reverse-KL objective, β annealing and the cosine schedule through the command line.
func TestTrainLatticeResumeIsExact(t *testing.T) {
	tmp := t.TempDir()
	straight, split := filepath.Join(tmp, "straight"), filepath.Join(tmp, "split")
	// β annealing over the first 15 steps makes the objective's own state part of what must resume.
	runCmd(t, trainCmd, small(straight, "--steps", "20", "--beta-start", "0.5", "--beta-steps", "15")...)
	runCmd(t, trainCmd, small(split, "--steps", "20", "--beta-start", "0.5", "--beta-steps", "15", "--stop-after", "10")...)
	if c := lastCheckpoint(t, split); c.Step != 10 {
		t.Fatalf("first half stopped at step %d, want 10", c.Step)
	}
	runCmd(t, trainCmd, "lattice", "--resume", split)
	a, b := lastCheckpoint(t, straight), lastCheckpoint(t, split)
	if a.Step != 20 || b.Step != 20 {
		t.Fatalf("steps %d and %d, want 20", a.Step, b.Step)
	}
	if !reflect.DeepEqual(a.Weights, b.Weights) {
		t.Error("weights differ between the straight and the resumed run")
	}
	if !reflect.DeepEqual(a.Optim, b.Optim) {
		t.Error("optimiser state differs between the straight and the resumed run")
	}
	la, lb := loggedLosses(t, straight), loggedLosses(t, split)
	if len(la) != 4 || !reflect.DeepEqual(la, lb) {
		t.Errorf("logged losses differ:\nstraight %v\nresumed  %v", la, lb)
	}
}

// eval, sample and latents read a run directory and write what they promise.
func TestEvalSampleLatents(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	runCmd(t, trainCmd, small(dir, "--steps", "10")...)

	out := runCmd(t, func(a []string, o, e *bytes.Buffer) error { return runEval(a, o, e) }, dir, "--samples", "512", "--json")
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, out)
	}
	for _, k := range []string{"step", "loss", "logZ", "exact_logZ", "gap", "ess", "acceptance", "observables"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("eval --json lacks %q", k)
		}
	}
	obs := rep["observables"].(map[string]any)
	for _, k := range []string{"abs_m", "chi", "chi_c", "phi2", "G_half", "U4", "xi2", "mR2", "Z", "gR"} {
		if _, ok := obs[k]; !ok {
			t.Errorf("eval observables lack %q", k)
		}
	}
	if rep["step"].(float64) != 10 {
		t.Errorf("eval step %v, want 10", rep["step"])
	}

	samples := filepath.Join(t.TempDir(), "s.npz")
	runCmd(t, func(a []string, o, e *bytes.Buffer) error { return runSample(a, o, e) }, dir, "--n", "7", "--out", samples)
	arr, err := checkpoints.ReadNPZ(samples)
	if err != nil {
		t.Fatal(err)
	}
	shapes := map[string][]int{}
	for _, a := range arr {
		shapes[a.Name] = a.Shape
	}
	want := map[string][]int{"x": {7, 1, 4, 4}, "logq": {7}, "action": {7}, "logw": {7}}
	if !reflect.DeepEqual(shapes, want) {
		t.Errorf("sample arrays %v, want %v", shapes, want)
	}

	lat := filepath.Join(t.TempDir(), "l.npz")
	runCmd(t, func(a []string, o, e *bytes.Buffer) error { return runLatents(a, o, e) }, dir, "--n", "3", "--out", lat)
	arr, err = checkpoints.ReadNPZ(lat)
	if err != nil {
		t.Fatal(err)
	}
	shapes = map[string][]int{}
	for _, a := range arr {
		shapes[a.Name] = a.Shape
	}
	want = map[string][]int{"z": {3, 1, 4, 4}, "x": {3, 1, 4, 4}, "level0": {3, 1, 12}, "level1": {3, 1, 4}, "levels": {4, 4}}
	if !reflect.DeepEqual(shapes, want) {
		t.Errorf("latents arrays %v, want %v", shapes, want)
	}
}

func TestTrainLatticeErrors(t *testing.T) {
	tmp := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{small(filepath.Join(tmp, "a"), "--L", "12", "--steps", "2"), "MERA) flows need L a power of two"},
		{small(filepath.Join(tmp, "b"), "--steps", "0"), "--steps"},
		{small(filepath.Join(tmp, "c"), "--dtype", "float16", "--steps", "2"), "float16"},
		{small(filepath.Join(tmp, "d"), "--preset", "nope", "--steps", "2"), "unknown preset"},
		{[]string{"lattice", "--resume", filepath.Join(tmp, "missing")}, "checkpoint"},
		{[]string{"pictures"}, "unknown subject"},
	} {
		var out, errb bytes.Buffer
		err := runTrain(tc.args, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one mentioning %q", tc.args, err, tc.want)
		}
	}
	// A fresh run into a directory that already holds a run must not overwrite it.
	dir := filepath.Join(tmp, "run")
	runCmd(t, trainCmd, small(dir, "--steps", "10")...)
	var out, errb bytes.Buffer
	if err := runTrain(small(dir, "--steps", "10"), &out, &errb); err == nil || !strings.Contains(err.Error(), "resume") {
		t.Errorf("training again into %s: error %v, want a hint to --resume", dir, err)
	}
}
