package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// rgflow mcmc --bulk on a short-trained free-field run samples the free field through the flow: ⟨φ²⟩ and
// χ against the exact values (precision matrix), and the gradient count is reported; plain HMC reports its
// own count, at least one force per trajectory.
func TestMCMCBulk(t *testing.T) {
	if testing.Short() {
		t.Skip("trains and runs bulk HMC")
	}
	dir := filepath.Join(t.TempDir(), "run")
	runCmd(t, trainCmd, small(dir, "--m2", "1", "--steps", "20")...)
	mcmc := func(a []string, o, e *bytes.Buffer) error { return runMCMC(a, o, e) }
	var rep struct {
		Sampler     string
		Observables map[string][2]float64
		GradEvals   int64 `json:"gradient_evals"`
		Trajs       int   `json:"trajectories"`
	}
	out := runCmd(t, mcmc, "--bulk", dir, "--trajectories", "300", "--thermalize", "50", "--chains", "2", "--json")
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	phi2, chi, _, _ := freeExact(4, 1)
	for name, want := range map[string]float64{"phi2": phi2, "chi": chi} {
		o := rep.Observables[name]
		// 4σ of the blocked-jackknife error.
		if !(math.Abs(o[0]-want) <= 4*o[1]) {
			t.Errorf("bulk HMC %s = %.4f ± %.4f, exact %.4f", name, o[0], o[1], want)
		}
	}
	if rep.Sampler != "bulk-hmc" || rep.GradEvals < 2*350 {
		t.Errorf("sampler %q, %d gradient evaluations for 2×350 trajectories", rep.Sampler, rep.GradEvals)
	}
	out = runCmd(t, mcmc, "--action", "free", "--m2", "1", "--L", "4", "--trajectories", "100", "--thermalize", "10",
		"--chains", "1", "--json")
	rep.GradEvals = 0
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Sampler != "hmc" || rep.GradEvals < 111 {
		t.Errorf("local HMC: sampler %q, %d gradient evaluations for 110 trajectories", rep.Sampler, rep.GradEvals)
	}
	var errb bytes.Buffer
	if err := runMCMC([]string{"--bulk", dir, "--action", "phi4"}, &bytes.Buffer{}, &errb); err == nil {
		t.Error("--bulk with --action accepted")
	}

	// Holography on the same run: the JSON has bins for every level, a fit, and the boundary G(r=0) is ⟨φ²⟩.
	png := filepath.Join(t.TempDir(), "holo.png")
	out = runCmd(t, func(a []string, o, e *bytes.Buffer) error { return runHolography(a, o, e) }, dir,
		"--trajectories", "200", "--thermalize", "50", "--chains", "2", "--json", "--png", png)
	var h struct {
		Bulk     []struct{ Level int }
		Boundary []struct{ R, Corr, Err float64 }
		Fit      struct{ N int }
	}
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	levels := map[int]bool{}
	for _, b := range h.Bulk {
		levels[b.Level] = true
	}
	if len(levels) != 2 || h.Fit.N < 2 { // L=4, k=2: 2 levels
		t.Errorf("levels %v, fit over %d bins", levels, h.Fit.N)
	}
	if g := h.Boundary[0]; g.R != 0 || math.Abs(g.Corr-phi2) > 4*g.Err {
		t.Errorf("boundary G(0) = %.4f ± %.4f, exact ⟨φ²⟩ %.4f", g.Corr, g.Err, phi2)
	}
	if st, err := os.Stat(png); err != nil || st.Size() < 1000 {
		t.Errorf("holography PNG: %v", err)
	}
}

// rgflow mix: h = 0 takes every level from A and decodes A's own latents, so the pixels are A's (the
// encode/decode round trip moves values by float32 rounding, far below half a grey level); h = n takes
// every level from B. The reverse mixes swap the roles.
func TestMixAndReceptive(t *testing.T) {
	if testing.Short() {
		t.Skip("trains an image run")
	}
	dir := filepath.Join(t.TempDir(), "img")
	runCmd(t, trainCmd, smallImages(dir, "--steps", "4", "--size", "16")...)
	png := filepath.Join(t.TempDir(), "mix.png")
	out := runCmd(t, func(a []string, o, e *bytes.Buffer) error { return runMix(a, o, e) }, dir,
		"--split", "train", "--a", "0", "--b", "3", "--png", png, "--json")
	var raw struct {
		Levels int
		Cuts   []map[string]int
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Cuts) != raw.Levels+1 {
		t.Fatalf("%d cuts for %d levels", len(raw.Cuts), raw.Levels)
	}
	first, last := raw.Cuts[0], raw.Cuts[raw.Levels]
	n := first["pixels"]
	if first["equal_a"] != n || first["reverse_equal_b"] != n || last["equal_b"] != n || last["reverse_equal_a"] != n {
		t.Errorf("h=0: %v; h=top: %v; want the pure images back", first, last)
	}
	if st, err := os.Stat(png); err != nil || st.Size() < 100 {
		t.Errorf("mix PNG: %v", err)
	}

	// Receptive fields: the measured extent never exceeds the causal cone, and nothing outside the cone
	// responds (the gradient there is structurally zero).
	out = runCmd(t, func(a []string, o, e *bytes.Buffer) error { return runReceptive(a, o, e) }, dir,
		"--split", "train", "--json", "--tol", "1e-9")
	var rf struct {
		Levels []receptiveLevel
	}
	if err := json.Unmarshal([]byte(out), &rf); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rf.Levels) == 0 {
		t.Fatal("no levels")
	}
	for _, r := range rf.Levels {
		if r.MeasuredRows > r.ConeRows || r.MeasuredCols > r.ConeCols || r.MeasuredN > r.ConeN || r.OutsideCone != 0 {
			t.Errorf("level %d: measured %d×%d (%d px), cone %d×%d (%d px), outside %g", r.Level,
				r.MeasuredRows, r.MeasuredCols, r.MeasuredN, r.ConeRows, r.ConeCols, r.ConeN, r.OutsideCone)
		}
		if r.MeasuredN < 1 || !(r.MaxResponse > 0) {
			t.Errorf("level %d: no response", r.Level)
		}
	}
}

// The new commands answer -h and "help COMMAND" with their usage and flags on stdout, nothing on stderr.
func TestBulkCommandsHelp(t *testing.T) {
	for cmd, flags := range map[string][]string{
		"holography": {"trajectories", "png", "json", "connected", "min-sigma"},
		"mix":        {"a", "b", "png", "interpolate"},
		"receptive":  {"png", "json", "tol", "image"},
		"mcmc":       {"bulk"},
	} {
		for _, args := range [][]string{{cmd, "-h"}, {"help", cmd}, {cmd, "runs/x", "--help"}} {
			var out, errb bytes.Buffer
			if err := run(args, &out, &errb); err != nil {
				t.Errorf("%v: %v", args, err)
				continue
			}
			if errb.Len() > 0 {
				t.Errorf("%v wrote to stderr: %s", args, errb.String())
			}
			for _, f := range flags {
				if !bytes.Contains(out.Bytes(), []byte("  -"+f+" ")) && !bytes.Contains(out.Bytes(), []byte("  -"+f+"\n")) {
					t.Errorf("%v: no -%s in the help", args, f)
				}
			}
		}
	}
	// Bad input: clear errors, no panics.
	for _, args := range [][]string{
		{"holography"},
		{"holography", "/nonexistent/run"},
		{"mix", "/nonexistent/run", "--png", "x.png"},
		{"receptive", "/nonexistent/run"},
		{"mcmc", "--bulk", "/nonexistent/run"},
	} {
		if err := run(args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
