package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"rgflow/checkpoints"
	"rgflow/models"
	"rgflow/train"
)

func TestTrainEvalODEPresets(t *testing.T) {
	// Each ode- preset trains a few steps at L=4 with --ode-steps; the config saves the ODE settings, and
	// eval --json reports the round-trip error (finite, small for an almost untrained flow, ≥ 0).
	for _, preset := range []string{"ode-gerdes", "ode-cnn", "ode-rg"} {
		t.Run(preset, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			runCmd(t, trainCmd, "lattice", "--L", "4", "--preset", preset, "--ode-steps", "2", "--ode-kinetic", "0.1", "--ode-jacobian", "0.05",
				"--steps", "3", "--batch", "8", "--eval-n", "0", "--symmetrize=false", "--log-every", "1", "--out", dir)
			raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				Model struct {
					Preset string `json:"preset"`
					ODE    *struct {
						Steps    int     `json:"steps"`
						Kinetic  float64 `json:"kinetic"`
						Jacobian float64 `json:"jacobian"`
					} `json:"ode"`
				} `json:"model"`
			}
			if err := json.Unmarshal(raw, &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.Model.Preset != preset || cfg.Model.ODE == nil || cfg.Model.ODE.Steps != 2 || cfg.Model.ODE.Kinetic != 0.1 || cfg.Model.ODE.Jacobian != 0.05 {
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
		{[]string{"--preset", "neuralrg", "--ode-jacobian", "1"}, "--ode-jacobian applies to the ode- presets"},
		{[]string{"--preset", "ode-gerdes", "--ode-jacobian", "-1"}, "Jacobian regulariser weight"},
		{[]string{"--preset", "ode-gerdes", "--engine", "fused", "--ode-jacobian", "1"}, "fused integrator cannot"},
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

func TestODEJacobianRegulariserWorkers(t *testing.T) {
	// The Jacobian regulariser's probes are drawn from each sample's own random stream, so the losses of
	// a run do not depend on how the batch is split over workers (equal to float64 rounding of the
	// batch means, 1e-9 relative), and once the fields are no longer zero they differ from the run
	// without the regulariser.
	losses := func(workers string, jac string) []float64 {
		dir := filepath.Join(t.TempDir(), "run")
		runCmd(t, trainCmd, "lattice", "--L", "4", "--preset", "ode-rg", "--ode-steps", "2", "--ode-jacobian", jac,
			"--steps", "3", "--batch", "8", "--eval-n", "0", "--symmetrize=false", "--log-every", "1", "--workers", workers, "--out", dir)
		out := metricLosses(t, dir)
		if len(out) != 3 {
			t.Fatalf("%d losses in %s/metrics.jsonl, want 3", len(out), dir)
		}
		return out
	}
	one, two, off := losses("1", "0.5"), losses("2", "0.5"), losses("1", "0")
	for i := range one {
		if math.Abs(one[i]-two[i]) > 1e-9*(1+math.Abs(one[i])) {
			t.Errorf("step %d: loss %.15g with 1 worker, %.15g with 2", i+1, one[i], two[i])
		}
	}
	// the fields start at zero (so does the regulariser): compare after two updates
	if one[2] == off[2] {
		t.Errorf("third loss %.15g with and without the Jacobian regulariser", one[2])
	}
}

func TestODEIsingSymmetrize(t *testing.T) {
	// The ode-gerdes field is odd and the prior even, so q(−x) = q(x) and the Z₂-symmetrised density
	// q_s = ½[q(x) + q(−x)] is q itself: on the relaxed Ising action (Z₂-symmetric) the losses of a run
	// with --symmetrize equal those without, up to the integrator: q(−x) is computed by integrating back
	// from −x, which differs from the forward integration by the RK4 error (and the differing losses feed
	// slightly different gradients to the next step). That difference must be small and fall as the
	// steps are refined (RK4: as h⁴, 256× from 8 to 32 steps; measured 325× at the third step, whose
	// fields two updates at a large learning rate have pushed well away from zero); an asymmetric field or
	// action would leave an O(1) difference that does not fall.
	losses := func(steps, sym string) []float64 {
		dir := filepath.Join(t.TempDir(), "run")
		runCmd(t, trainCmd, "lattice", "--action", "ising", "--L", "4", "--preset", "ode-gerdes", "--ode-steps", steps, "--lr", "0.05",
			"--steps", "3", "--batch", "8", "--eval-n", "0", "--symmetrize="+sym, "--log-every", "1", "--out", dir)
		out := metricLosses(t, dir)
		if len(out) != 3 {
			t.Fatalf("%d losses in %s/metrics.jsonl, want 3", len(out), dir)
		}
		return out
	}
	diff := map[string]float64{}
	for _, steps := range []string{"8", "32"} {
		plain, sym := losses(steps, "false"), losses(steps, "true")
		for i := range plain {
			t.Logf("%s RK4 steps, step %d: loss %.15g plain, %.15g symmetrised", steps, i+1, plain[i], sym[i])
		}
		// the fields start at zero, where both integrations are exact: equal to rounding
		if math.Abs(plain[0]-sym[0]) > 1e-12*math.Abs(plain[0]) {
			t.Errorf("%s RK4 steps: first loss %.15g plain, %.15g symmetrised", steps, plain[0], sym[0])
		}
		if plain[2] == plain[0] {
			t.Errorf("%s RK4 steps: loss %.15g did not change in 3 steps", steps, plain[0])
		}
		diff[steps] = math.Abs(plain[2] - sym[2])
	}
	// 32 steps: measured 1.6e-7 nats on a loss of −22; 8 steps: 5.2e-5.
	if diff["32"] > 1e-6 || diff["32"] > diff["8"]/16 {
		t.Errorf("third loss: plain and symmetrised differ by %.3g with 8 RK4 steps and %.3g with 32, want a difference below 1e-6 that falls at least 16×", diff["8"], diff["32"])
	}
}

func TestODERoundTripCheckAtCheckpoints(t *testing.T) {
	// Training an ODE flow prints its round trip at every checkpoint; the number printed at the last one is
	// the round trip of the checkpointed weights, recomputed here from the files with the same prior draws.
	dir := filepath.Join(t.TempDir(), "run")
	var out, errb bytes.Buffer
	if err := runTrain([]string{"lattice", "--L", "4", "--preset", "ode-gerdes", "--ode-steps", "2", "--steps", "4", "--batch", "8",
		"--lr", "0.05", "--checkpoint-every", "2", "--eval-n", "0", "--symmetrize=false", "--out", dir}, &out, &errb); err != nil {
		t.Fatalf("train: %v\n%s", err, errb.String())
	}
	logged := map[int64]string{}
	for _, line := range strings.Split(errb.String(), "\n") {
		var step int64
		var v string
		if _, err := fmt.Sscanf(line, "step %d: ODE round trip max|F(F⁻¹(z))−z| = %s", &step, &v); err == nil {
			logged[step] = v
		}
	}
	if _, ok := logged[2]; !ok || len(logged) != 2 {
		t.Fatalf("round trips logged at steps %v, want 2 and 4; stderr:\n%s", logged, errb.String())
	}
	run, _, flow, store, step, err := loadLatticeRun(dir, "test", weightChoice{log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := models.RoundTrip(flow, store, odeRoundTripN, roundTripRNG(run.Train.Seed, step))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := logged[step], fmt.Sprintf("%.3g", rt); step != 4 || got != want {
		t.Errorf("step %d: logged round trip %s, recomputed from the checkpoint %s", step, got, want)
	}
	if !(rt > 0) {
		t.Fatalf("round trip %g: a 2-step RK4 map of a trained field is not exactly invertible", rt)
	}
	// The warning appears exactly when the round trip exceeds the threshold.
	for _, warn := range []float64{rt / 2, 2 * rt} {
		var log bytes.Buffer
		c := &roundTripCheck{flow: flow, store: store, steps: 2, seed: run.Train.Seed, warn: warn, log: &log}
		if err := c.check(train.Record{Step: step}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(log.String(), "warning:"); got != (rt > warn) {
			t.Errorf("threshold %g, round trip %g: warning printed %v\n%s", warn, rt, got, log.String())
		}
	}
}
