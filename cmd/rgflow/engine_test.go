package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"rgflow/checkpoints"
)

// flatNumbers collects every number of a decoded JSON value under its path.
func flatNumbers(prefix string, v any, out map[string]float64) {
	switch x := v.(type) {
	case float64:
		out[prefix] = x
	case []any:
		for i, e := range x {
			flatNumbers(prefix+"/"+string(rune('0'+i)), e, out)
		}
	case map[string]any:
		for k, e := range x {
			flatNumbers(prefix+"/"+k, e, out)
		}
	}
}

// A run trained with one engine is saved with it, evaluates and samples with either (the same numbers:
// the weights are the same parameters), and resumes with the other.
func TestEngineSwitchThroughCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	out := runCmd(t, trainCmd, small(dir, "--steps", "10", "--engine", "graph")...)
	if !strings.Contains(out, "graph engine") {
		t.Errorf("train does not say which engine it uses:\n%s", out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Model struct {
			Engine string `json:"engine"`
		} `json:"model"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil || cfg.Model.Engine != "graph" {
		t.Fatalf("config.json model engine %q (%v), want graph", cfg.Model.Engine, err)
	}

	evalCmd := func(a []string, o, e *bytes.Buffer) error { return runEval(a, o, e) }
	evals := map[string]map[string]float64{}
	samples := map[string][]checkpoints.Array{}
	for _, engine := range []string{"graph", "fused"} {
		var rep any
		if err := json.Unmarshal([]byte(runCmd(t, evalCmd, dir, "--samples", "256", "--json", "--engine", engine)), &rep); err != nil {
			t.Fatal(err)
		}
		evals[engine] = map[string]float64{}
		flatNumbers("", rep, evals[engine])
		path := filepath.Join(t.TempDir(), engine+".npz")
		runCmd(t, func(a []string, o, e *bytes.Buffer) error { return runSample(a, o, e) }, dir, "--n", "9", "--out", path, "--engine", engine)
		if samples[engine], err = checkpoints.ReadNPZ(path); err != nil {
			t.Fatal(err)
		}
	}
	// Relative 1e-9: the engines agree to ~1e-15 on each log-density (models' engine tests); the
	// estimators here (means, log-mean-exp, Metropolis decisions on 256 draws) only average them, and a
	// flipped accept/reject decision would need two log-weights within 1e-15 of each other.
	if len(evals["graph"]) < 10 {
		t.Fatalf("eval report has only %d numbers", len(evals["graph"]))
	}
	for k, a := range evals["graph"] {
		if b, ok := evals["fused"][k]; !ok || math.Abs(a-b) > 1e-9*(1+math.Abs(a)) {
			t.Errorf("eval %s: graph engine %v, fused %v", k, a, b)
		}
	}
	for i, a := range samples["graph"] {
		av, ok1 := a.Data.([]float64)
		bv, ok2 := samples["fused"][i].Data.([]float64)
		if !ok1 || !ok2 || len(av) != len(bv) || len(av) == 0 {
			t.Fatalf("sample %s: data %T and %T", a.Name, a.Data, samples["fused"][i].Data)
		}
		for j := range av {
			if math.Abs(av[j]-bv[j]) > 1e-9*(1+math.Abs(av[j])) {
				t.Errorf("sample %s[%d]: graph engine %v, fused %v", a.Name, j, av[j], bv[j])
				break
			}
		}
	}

	// Resume with the other engine: it is saved and used from then on.
	out = runCmd(t, trainCmd, "lattice", "--resume", dir, "--steps", "15", "--engine", "fused")
	if !strings.Contains(out, "fused engine") {
		t.Errorf("resumed training does not use the fused engine:\n%s", out)
	}
	if c := lastCheckpoint(t, dir); c.Step != 15 {
		t.Errorf("resumed run stopped at step %d, want 15", c.Step)
	}
}

func TestEngineErrors(t *testing.T) {
	tmp := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{small(filepath.Join(tmp, "a"), "--steps", "2", "--engine", "turbo"), `engine "turbo"`},
		{small(filepath.Join(tmp, "b"), "--steps", "2", "--preset", "ode-cnn", "--engine", "fused"), "no fused kernel"},
	} {
		var out, errb bytes.Buffer
		if err := runTrain(tc.args, &out, &errb); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one mentioning %q", tc.args, err, tc.want)
		}
	}
	dir := filepath.Join(tmp, "run")
	runCmd(t, trainCmd, small(dir, "--steps", "2")...)
	var out, errb bytes.Buffer
	if err := runEval([]string{dir, "--engine", "turbo"}, &out, &errb); err == nil || !strings.Contains(err.Error(), `engine "turbo"`) {
		t.Errorf("eval --engine turbo: error %v, want one naming the engine", err)
	}
	if err := runBench([]string{"--preset", "ode-cnn", "--engine", "fused", "--steps", "1"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "no fused kernel") {
		t.Errorf("bench ode-cnn --engine fused: error %v, want no fused kernel", err)
	}
}
