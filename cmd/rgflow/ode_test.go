package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"rgflow/checkpoints"
)

func TestTrainEvalODEPresets(t *testing.T) {
	// Each ode- preset trains a few steps at L=4 with --ode-steps; the config saves the ODE settings, and
	// eval --json reports the round-trip error (finite, small for an almost untrained flow, ≥ 0).
	for _, preset := range []string{"ode-gerdes", "ode-cnn", "ode-rg"} {
		t.Run(preset, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			runCmd(t, trainCmd, "lattice", "--L", "4", "--preset", preset, "--ode-steps", "2", "--ode-kinetic", "0.1",
				"--steps", "3", "--batch", "8", "--eval-n", "0", "--symmetrize=false", "--log-every", "1", "--out", dir)
			raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				Model struct {
					Preset string `json:"preset"`
					ODE    *struct {
						Steps   int     `json:"steps"`
						Kinetic float64 `json:"kinetic"`
					} `json:"ode"`
				} `json:"model"`
			}
			if err := json.Unmarshal(raw, &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.Model.Preset != preset || cfg.Model.ODE == nil || cfg.Model.ODE.Steps != 2 || cfg.Model.ODE.Kinetic != 0.1 {
				t.Fatalf("config.json model: %s", raw)
			}
			var out, errb bytes.Buffer
			if err := runEval([]string{dir, "--n", "16", "--json"}, &out, &errb); err != nil {
				t.Fatalf("eval: %v\n%s", err, errb.String())
			}
			var rep map[string]any
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("eval --json: %v\n%s", err, out.String())
			}
			rt, ok := rep["roundtrip_max_abs"].(float64)
			if !ok || !(rt >= 0) || rt > 1e-2 {
				t.Errorf("roundtrip_max_abs = %v, want a small non-negative number", rep["roundtrip_max_abs"])
			}
			// --ode-steps integrates the same weights more finely: the round trip shrinks (RK4: as h⁴).
			out.Reset()
			if err := runEval([]string{dir, "--n", "16", "--json", "--ode-steps", "8"}, &out, &errb); err != nil {
				t.Fatalf("eval --ode-steps 8: %v\n%s", err, errb.String())
			}
			var fine map[string]any
			if err := json.Unmarshal(out.Bytes(), &fine); err != nil {
				t.Fatal(err)
			}
			if rf := fine["roundtrip_max_abs"].(float64); rt > 0 && !(rf < rt) {
				t.Errorf("round trip %g with 8 steps, %g with the run's 2", rf, rt)
			}
			// Latents by RG level, as for the MERA flows (L=4: 12 level-0 and 4 level-1 sites).
			lat := filepath.Join(t.TempDir(), "l.npz")
			runCmd(t, func(a []string, o, e *bytes.Buffer) error { return runLatents(a, o, e) }, dir, "--n", "3", "--out", lat)
			arr, err := checkpoints.ReadNPZ(lat)
			if err != nil {
				t.Fatal(err)
			}
			shapes := map[string][]int{}
			for _, a := range arr {
				shapes[a.Name] = a.Shape
			}
			want := map[string][]int{"z": {3, 1, 4, 4}, "x": {3, 1, 4, 4}, "level0": {3, 1, 12}, "level1": {3, 1, 4}, "levels": {4, 4}}
			if !reflect.DeepEqual(shapes, want) {
				t.Errorf("latents arrays %v, want %v", shapes, want)
			}
		})
	}
}

func TestODEFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--preset", "neuralrg", "--ode-steps", "4"}, "--ode-steps applies to the ode- presets"},
		{[]string{"--preset", "neuralrg", "--ode-kinetic", "1"}, "--ode-kinetic applies to the ode- presets"},
		{[]string{"--preset", "ode-gerdes", "--ode-steps", "0"}, "ODE steps"},
		{[]string{"--preset", "ode-gerdes", "--ode-kinetic", "-1"}, "kinetic-energy weight"},
		{[]string{"--preset", "ode-gerdes", "--L", "6"}, "power of two"},
		{[]string{"--preset", "ode-gerdes", "--L", "7"}, "L=7, want an even L"},
		{[]string{"--preset", "ode-cnn", "--engine", "fused"}, "no fused kernel"},
	} {
		args := append([]string{"lattice", "--steps", "1", "--out", filepath.Join(t.TempDir(), "x")}, tc.args...)
		var out, errb bytes.Buffer
		err := runTrain(args, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}
