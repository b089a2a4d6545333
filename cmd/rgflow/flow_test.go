package main

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlowCLI: rgflow flow on tiny free-field runs (L=4) prints the documented keys with one value per t,
// writes a PNG, reports the effective score's couplings beside the exact projection, and its exact forward
// ensemble (400 exact free samples through the exact transition) agrees with the exact Gaussian flow: m_R
// and Z within 4σ of their jackknife errors at every t (4σ: 2 × 5 comparisons at a fixed seed; the reverse
// ensemble of an untrained network is not compared).
func TestFlowCLI(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "free.npz")
	writeFreeSamples(t, data, 400)
	common := []string{"train", "diffusion", "--data", data, "--action", "free", "--L", "4", "--m2", "0.5",
		"--steps", "2", "--batch", "8", "--width", "4", "--depth", "1", "--log-every", "1"}
	cnn, eff := filepath.Join(dir, "cnn"), filepath.Join(dir, "eff")
	runOK(t, append(common, "--out", cnn)...)
	runOK(t, append(common, "--out", eff, "--score", "effective")...)
	png := filepath.Join(dir, "flow.png")
	out := runOK(t, "flow", cnn, "--json", "--png", png, "--n", "400", "--points", "5", "--nfe", "8")
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"t", "forward", "reverse", "gaussian", "nfe", "n", "process", "forward_start"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("key %q missing", k)
		}
	}
	var rep flowReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.T) != 5 || rep.T[0] != 0 || rep.T[4] != 4 || rep.NFE != 8 {
		t.Errorf("t %v, nfe %d; want 5 times from 0 to T=4 and 8 evaluations", rep.T, rep.NFE)
	}
	for name, s := range map[string]flowSeries{"forward": rep.Forward, "reverse": rep.Reverse} {
		if len(s.MR) != 5 || len(s.Z) != 5 || len(s.LambdaR) != 5 || len(s.MaxAbs) != 5 || len(s.Chi) != 5 {
			t.Errorf("%s: series of lengths %d %d %d %d %d, want 5", name, len(s.MR), len(s.Z), len(s.LambdaR), len(s.MaxAbs), len(s.Chi))
		}
	}
	for i := range rep.T {
		for _, c := range []struct {
			name  string
			got   [2]jsonNum
			exact jsonNum
		}{{"m_R", rep.Forward.MR[i], rep.Gaussian.MR[i]}, {"Z", rep.Forward.Z[i], rep.Gaussian.Z[i]}} {
			if d := math.Abs(float64(c.got[0] - c.exact)); !(d <= 4*float64(c.got[1])) {
				t.Errorf("t=%v forward %s %v, exact %v", rep.T[i], c.name, c.got, c.exact)
			}
		}
	}
	if math.Abs(float64(rep.Gaussian.MR[0])-math.Sqrt(0.5)) > 1e-12 || rep.Gaussian.Source != "the exact free field" {
		t.Errorf("exact m_R at t=0: %v (%s), want √0.5", rep.Gaussian.MR[0], rep.Gaussian.Source)
	}
	if b, err := os.ReadFile(png); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Errorf("--png: %v", err)
	}
	out = runOK(t, "flow", eff, "--json", "--png", png, "--n", "16", "--points", "3", "--sampler", "ode", "--nfe", "8")
	var er flowReport
	if err := json.Unmarshal([]byte(out), &er); err != nil {
		t.Fatal(err)
	}
	if len(er.Couplings) != 3 || math.Abs(float64(er.Couplings[0].Free[2])-0.5) > 1e-12 {
		t.Errorf("effective couplings %v, want 3 with the exact projection f₃ = 1/2 at t = 0", er.Couplings)
	}
	if txt := runOK(t, "flow", cnn, "--n", "8", "--points", "2", "--nfe", "2"); !strings.Contains(txt, "m_R forward") {
		t.Errorf("text output: %s", txt)
	}
	for want, args := range map[string][]string{
		"--points":      {"flow", cnn, "--points", "1"},
		"--nfe":         {"flow", cnn, "--nfe", "3", "--sampler", "ode", "--points", "3"},
		"--sampler":     {"flow", cnn, "--sampler", "ddpm"},
		"no diffusion":  {"flow", dir},
		"name the run":  {"flow"},
		"phi has shape": {"flow", cnn, "--data", filepath.Join(dir, "wrong.npz")},
	} {
		if want == "phi has shape" {
			writeShapedSamples(t, filepath.Join(dir, "wrong.npz"), []int{5, 2, 4, 4})
		}
		err := run(args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("rgflow %s: error %v, want one containing %q", strings.Join(args, " "), err, want)
		}
	}
}

// TestFlowRescaled: --gamma trains under the field-rescaled ("renormalized") process, and rgflow flow's exact
// Gaussian χ(T) is the free zero mode pushed through it, written out here: e^{2γT} (e^{−2μ²T}/m² +
// Ω (1 − e^{−2μ²T})/(2μ²)) with the defaults Ω = 1, μ² = 1, T = 4 (rounding, 1e-9 relative).
func TestFlowRescaled(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "free.npz")
	writeFreeSamples(t, data, 40)
	r := filepath.Join(dir, "r")
	runOK(t, "train", "diffusion", "--data", data, "--action", "free", "--L", "4", "--m2", "0.5", "--gamma", "0.3",
		"--steps", "2", "--batch", "4", "--width", "2", "--depth", "1", "--out", r)
	var rep flowReport
	if err := json.Unmarshal([]byte(runOK(t, "flow", r, "--json", "--n", "8", "--points", "2", "--nfe", "4")), &rep); err != nil {
		t.Fatal(err)
	}
	const g, T, m2 = 0.3, 4.0, 0.5
	want := math.Exp(2*g*T) * (math.Exp(-2*T)/m2 + (1-math.Exp(-2*T))/2)
	if rep.Process != "rescaled carosso" || math.Abs(float64(rep.Gaussian.Chi[1])/want-1) > 1e-9 {
		t.Errorf("process %q, exact χ(T) %v, want rescaled carosso and %v", rep.Process, rep.Gaussian.Chi[1], want)
	}
}
