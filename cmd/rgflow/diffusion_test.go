package main

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"rgflow/checkpoints"
	"rgflow/datasets/lattice"
	"rgflow/losses"
	"rgflow/models/diffusion"
)

// writeFreeSamples writes n exact free-field samples (L=4, m²=0.5) as phi (n, 1, 4, 4).
func writeFreeSamples(t *testing.T, path string, n int) {
	t.Helper()
	lat, err := diffusion.NewLattice(4)
	if err != nil {
		t.Fatal(err)
	}
	v, err := lat.FreeVariance(0.5)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float64, n*16)
	if err := (&diffusion.Gaussian{Lat: lat, Var: v}).Sample(rand.New(rand.NewPCG(1, 1)), x); err != nil {
		t.Fatal(err)
	}
	if err := checkpoints.WriteNPZ(path, []checkpoints.Array{{Name: "phi", Shape: []int{n, 1, 4, 4}, Data: x}}); err != nil {
		t.Fatal(err)
	}
}

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run(args, &out, &errb); err != nil {
		t.Fatalf("rgflow %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// TestDiffusionTrainSampleResume trains a tiny score, samples it with each sampler, and checks that a run
// stopped and resumed ends with the same weights (the same samples, bit for bit) as one run straight
// through.
func TestDiffusionTrainSampleResume(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "free.npz")
	writeFreeSamples(t, data, 40)
	common := []string{"train", "diffusion", "--data", data, "--action", "free", "--L", "4", "--m2", "0.5",
		"--steps", "6", "--batch", "8", "--width", "4", "--depth", "1", "--log-every", "1", "--checkpoint-every", "2"}
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	runOK(t, append(common, "--out", a)...)
	runOK(t, append(common, "--out", b, "--stop-after", "3")...)
	runOK(t, "train", "diffusion", "--resume", b)
	sample := func(run string, extra ...string) diffusionSampleReport {
		out := runOK(t, append([]string{"sample", run, "--n", "6", "--json"}, extra...)...)
		var rep diffusionSampleReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("sample --json: %v\n%s", err, out)
		}
		return rep
	}
	ra, rb := sample(a, "--nfe", "5"), sample(b, "--nfe", "5")
	if ra.NFE != 5 || ra.Step != 6 || rb.Step != 6 {
		t.Errorf("nfe %d, steps %d and %d; want 5, 6, 6", ra.NFE, ra.Step, rb.Step)
	}
	for _, k := range []string{"chi", "phi2", "abs_m"} {
		if _, ok := ra.Observables[k]; !ok {
			t.Errorf("observable %q missing: %v", k, ra.Observables)
		}
		if ra.Observables[k] != rb.Observables[k] {
			t.Errorf("%s: straight run %v, resumed run %v", k, ra.Observables[k], rb.Observables[k])
		}
	}
	if ra.MMean != rb.MMean {
		t.Errorf("m_mean: straight %v, resumed %v", ra.MMean, rb.MMean)
	}
	if r := sample(a, "--sampler", "pc", "--nfe", "6"); r.NFE != 6 {
		t.Errorf("pc: nfe %d, want 6", r.NFE)
	}
	if r := sample(a, "--sampler", "ode", "--nfe", "8"); r.NFE != 8 {
		t.Errorf("ode: nfe %d, want 8", r.NFE)
	}
	npz := filepath.Join(dir, "s.npz")
	runOK(t, "sample", a, "--n", "3", "--nfe", "2", "--out", npz)
	arrs, err := checkpoints.ReadNPZ(npz)
	if err != nil || len(arrs) != 1 || arrs[0].Name != "phi" || len(arrs[0].Data.([]float64)) != 3*16 {
		t.Errorf("sample --out: %v %v", arrs, err)
	}

	// The other score networks: a CNN with the global-mean input, and the effective action, whose report
	// carries its couplings and, for the free field, the exact projection (m²/2, 1/2 at t = 0).
	gm, eff := filepath.Join(dir, "gm"), filepath.Join(dir, "eff")
	runOK(t, append(common, "--out", gm, "--global-mean")...)
	if r := sample(gm, "--nfe", "3"); r.NFE != 3 || r.Couplings != nil {
		t.Errorf("global mean: nfe %d, couplings %v", r.NFE, r.Couplings)
	}
	runOK(t, append(common, "--out", eff, "--score", "effective")...)
	r := sample(eff, "--nfe", "3")
	if len(r.Couplings) != 6 || r.Couplings[0].T != 0 {
		t.Fatalf("effective: couplings %v", r.Couplings)
	}
	if c := r.Couplings[0].Free; math.Abs(float64(c[0])-0.25) > 1e-12 || math.Abs(float64(c[2])-0.5) > 1e-12 || math.Abs(float64(c[3])) > 1e-12 || c[4] != 0 {
		t.Errorf("exact free projection at t=0: %v, want [0.25 0 0.5 0 0] (a fit that is exact there, to rounding)", c)
	}
	// The zero-mode quartic is on by default (f₅ > 0, softplus of a learned value); a run without it has
	// the config of a run saved before the option existed (no zero_quartic key) and reports f₅ = 0.
	if f5 := float64(r.Couplings[0].F[4]); !(f5 > 0) {
		t.Errorf("default run: f₅ = %v, want > 0", f5)
	}
	old := filepath.Join(dir, "old")
	runOK(t, append(common, "--out", old, "--score", "effective", "--zero-quartic=false")...)
	if _, raw, err := runConfig(old, "sample"); err != nil || strings.Contains(string(raw), "zero_quartic") {
		t.Errorf("--zero-quartic=false config %s (%v): want no zero_quartic key, like an older run's", raw, err)
	}
	if r := sample(old, "--nfe", "3"); len(r.Couplings) != 6 || r.Couplings[2].F[4] != 0 || r.Couplings[2].F[1] == 0 {
		t.Errorf("without the zero quartic: couplings %v", r.Couplings)
	}
	// The effective action plus a CNN remainder samples and reports the couplings of its effective part.
	ec := filepath.Join(dir, "effcnn")
	runOK(t, append(common, "--out", ec, "--score", "effective+cnn")...)
	if r := sample(ec, "--nfe", "3"); r.NFE != 3 || len(r.Couplings) != 6 || !(r.Couplings[0].F[4] > 0) {
		t.Errorf("effective+cnn: nfe %d, couplings %v", r.NFE, r.Couplings)
	}
	// A residual over the exact Gaussian score (--gaussian-base, cnn and effective) sampled by the ancestral
	// sampler; the config records the base, and an effective residual starts at zero couplings (f₁ = f₃ = 0
	// at the first step's weights, up to one Adam step of the lr).
	gb, gbe := filepath.Join(dir, "gb"), filepath.Join(dir, "gbe")
	runOK(t, append(common, "--out", gb, "--gaussian-base", "--process", "polchinski")...)
	if _, raw, err := runConfig(gb, "sample"); err != nil || !strings.Contains(string(raw), `"gaussian_base": true`) {
		t.Errorf("--gaussian-base config %s (%v): want gaussian_base true", raw, err)
	}
	if r := sample(gb, "--sampler", "ancestral", "--nfe", "4"); r.NFE != 4 || r.Sampler != "ancestral" {
		t.Errorf("ancestral: nfe %d, sampler %q", r.NFE, r.Sampler)
	}
	var ev diffusionEval
	if out := runOK(t, "eval", gb, "--json", "--n", "8", "--kl-n", "4", "--steps", "10"); json.Unmarshal([]byte(out), &ev) != nil || !(ev.DSMLoss[0] > 0) || ev.KL == nil {
		t.Errorf("eval of a gaussian-base run: %s", out)
	}
	runOK(t, append(common, "--out", gbe, "--gaussian-base", "--score", "effective", "--steps", "1")...)
	if r := sample(gbe, "--nfe", "3"); len(r.Couplings) != 6 || math.Abs(float64(r.Couplings[0].F[2])) > 0.05 || math.Abs(float64(r.Couplings[0].F[0])) > 0.05 {
		t.Errorf("effective residual: couplings %v, want f₁, f₃ near 0 after one step of lr 2e-3", r.Couplings)
	}

	// Bad input: a clear error naming the flag.
	bad := map[string][]string{
		"gaussian-base":      {"train", "diffusion", "--resume", a, "--gaussian-base"},
		"--data is required": {"train", "diffusion", "--L", "4", "--out", filepath.Join(dir, "x1")},
		"phi has shape":      {"train", "diffusion", "--data", data, "--L", "8", "--m2", "0.5", "--out", filepath.Join(dir, "x2")},
		"--process":          {"train", "diffusion", "--data", data, "--L", "4", "--m2", "0.5", "--process", "heat", "--out", filepath.Join(dir, "x3")},
		"weighting":          {"train", "diffusion", "--data", data, "--L", "4", "--m2", "0.5", "--weighting", "x", "--out", filepath.Join(dir, "x4")},
		"--sampler":          {"sample", a, "--sampler", "ddim"},
		"--t-end":            {"sample", a, "--t-end", "-1"},
		"--nfe":              {"sample", a, "--sampler", "ode", "--nfe", "3"},
		"cannot change":      {"train", "diffusion", "--resume", a, "--width", "8"},
		"--score":            {"train", "diffusion", "--data", data, "--L", "4", "--m2", "0.5", "--score", "unet", "--out", filepath.Join(dir, "x5")},
		"--global-mean":      {"train", "diffusion", "--data", data, "--L", "4", "--m2", "0.5", "--score", "effective+cnn", "--global-mean", "--out", filepath.Join(dir, "x6")},
		"zero-quartic":       {"train", "diffusion", "--resume", a, "--zero-quartic=false"},
	}
	for want, args := range bad {
		err := run(args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("rgflow %s: error %v, want one containing %q", strings.Join(args, " "), err, want)
		}
	}
}

// TestDiffusionChainsResume trains on HMC chains (φ⁴, L=4) straight through and stopped and resumed: the
// chains' fields, random streams and step sizes travel in the checkpoint, so both runs end with the same
// weights and the same samples, bit for bit. Importance sampling of t is switched on as well.
func TestDiffusionChainsResume(t *testing.T) {
	dir := t.TempDir()
	common := []string{"train", "diffusion", "--chains", "3", "--chain-thermalize", "20", "--action", "phi4", "--L", "4",
		"--m2", "-1", "--lambda", "0.5", "--t-sampling", "importance", "--weighting", "likelihood",
		"--steps", "6", "--batch", "8", "--width", "4", "--depth", "1", "--log-every", "1", "--checkpoint-every", "2"}
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	runOK(t, append(common, "--out", a)...)
	runOK(t, append(common, "--out", b, "--stop-after", "3")...)
	runOK(t, "train", "diffusion", "--resume", b)
	var ra, rb diffusionSampleReport
	for _, c := range []struct {
		run string
		rep *diffusionSampleReport
	}{{a, &ra}, {b, &rb}} {
		out := runOK(t, "sample", c.run, "--n", "6", "--nfe", "4", "--json")
		if err := json.Unmarshal([]byte(out), c.rep); err != nil {
			t.Fatal(err)
		}
	}
	if ra.Step != 6 || rb.Step != 6 || ra.Observables["chi"] != rb.Observables["chi"] || ra.MMean != rb.MMean {
		t.Errorf("straight run (step %d) %v %v, resumed (step %d) %v %v", ra.Step, ra.Observables["chi"], ra.MMean, rb.Step, rb.Observables["chi"], rb.MMean)
	}
	bad := map[string][]string{
		"both given":     append(append([]string{}, common...), "--data", "x.npz", "--out", filepath.Join(dir, "x1")),
		"--workers":      append(append([]string{}, common...), "--workers", "2", "--out", filepath.Join(dir, "x2")),
		"--t-sampling":   append(append([]string{}, common...), "--t-sampling", "log", "--out", filepath.Join(dir, "x3")),
		"cannot change":  {"train", "diffusion", "--resume", a, "--chains", "4"},
		"--chains=-1":    {"train", "diffusion", "--chains", "-1", "--L", "4", "--out", filepath.Join(dir, "x4")},
		"--chain-every=": append(append([]string{}, common...), "--chain-every", "0", "--out", filepath.Join(dir, "x5")),
	}
	for want, args := range bad {
		err := run(args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("rgflow %s: error %v, want one containing %q", strings.Join(args, " "), err, want)
		}
	}
}

// TestDiffusionBadInput: odd L, a negative Ω, times outside the process's range and sample files of the
// wrong shape get clear errors naming the flag, from every command that takes them.
func TestDiffusionBadInput(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "free.npz")
	writeFreeSamples(t, data, 20)
	wrong := filepath.Join(dir, "wrong.npz")
	writeShapedSamples(t, wrong, []int{4, 1, 4}) // three axes
	wrongC := filepath.Join(dir, "wrongc.npz")
	writeShapedSamples(t, wrongC, []int{4, 2, 4, 4}) // two channels for a one-channel action
	base := []string{"train", "diffusion", "--action", "free", "--m2", "0.5", "--steps", "1", "--batch", "2", "--width", "2", "--depth", "1"}
	a := filepath.Join(dir, "a")
	runOK(t, append(base, "--data", data, "--L", "4", "--out", a)...)
	for want, args := range map[string][]string{
		"L=5":                     append(base, "--data", data, "--L", "5", "--out", filepath.Join(dir, "x1")),
		"Omega=-1":                append(base, "--data", data, "--L", "4", "--omega", "-1", "--out", filepath.Join(dir, "x2")),
		"t_min=5":                 append(base, "--data", data, "--L", "4", "--t-min", "5", "--out", filepath.Join(dir, "x3")),
		"--t-min=-0.1":            append(base, "--data", data, "--L", "4", "--t-min", "-0.1", "--out", filepath.Join(dir, "x4")),
		"phi has shape [4 1 4]":   append(base, "--data", wrong, "--L", "4", "--out", filepath.Join(dir, "x5")),
		"phi has shape [4 2 4 4]": append(base, "--data", wrongC, "--L", "4", "--out", filepath.Join(dir, "x6")),
		"--t-end=10":              {"sample", a, "--t-end", "10"},
		"mu2=-2":                  append(base, "--data", data, "--L", "4", "--mu2", "-2", "--out", filepath.Join(dir, "x7")),
		"L=7":                     {"train", "diffusion", "--chains", "2", "--action", "phi4", "--L", "7", "--out", filepath.Join(dir, "x8")},
		"eval: --data":            {"eval", a, "--data", wrong},
	} {
		err := run(args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("rgflow %s: error %v, want one containing %q", strings.Join(args, " "), err, want)
		}
	}
}

// TestChainSpectrum checks the reference spectrum of a chain-trained run against the exact free-field
// variance 1/(p̂² + m²) per mode coordinate. With 32768 fields (τ_int of a few trajectories for this free
// field) the statistical error per coordinate is at most √(2·2τ/32768) ≈ 1.6 % for τ = 2 (the zero mode and
// the other single-coordinate orbits; larger orbits average more), so 8 % is ≥ 5σ; the earlier spectrum from
// 256 fields (error ≈ 9–18 % per coordinate) exceeds it on some of the 64 coordinates.
func TestChainSpectrum(t *testing.T) {
	const L, m2 = 8, 0.5
	act, err := lattice.NewFree(L, m2)
	if err != nil {
		t.Fatal(err)
	}
	chains, err := losses.NewHMCChains(act, losses.HMCChainsConfig{Chains: 4, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	lat, err := diffusion.NewLattice(L)
	if err != nil {
		t.Fatal(err)
	}
	v, err := chainSpectrum(lat, chains, 1)
	if err != nil {
		t.Fatal(err)
	}
	exact, err := lat.FreeVariance(m2)
	if err != nil {
		t.Fatal(err)
	}
	for j := range v {
		if r := v[j]/exact[j] - 1; math.Abs(r) > 0.08 {
			kx, ky, part := lat.Momentum(j)
			t.Errorf("mode (%d,%d) %s: chain spectrum %.4f, exact %.4f (%+.1f %%)", kx, ky, part, v[j], exact[j], 100*r)
		}
	}
}
