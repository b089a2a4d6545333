package main

import (
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"rgflow/checkpoints"
	"rgflow/datasets/lattice"
	"rgflow/models/diffusion"
)

// TestEvaluateDiffusionExactScore runs the evaluation with the exact free-field score as the "trained"
// model (L=8, m²=0.5, Carosso and Polchinski): the probability-flow NLL equals the exact −log p per site
// (the same samples; tolerance 1e-3 per site, the likelihood's own test bound), KL(q‖p) is 0 within its
// stated error (3×, the error being statistical and integration error in quadrature) and below 1e-3 per
// site, and the DSM loss agrees with its analytic expectation Σ_j λ_j (1/q_j − 1/v_j(t)) averaged over t
// (midpoint rule, 2000 points) within 4 standard errors.
func TestEvaluateDiffusionExactScore(t *testing.T) {
	const L, m2 = 8, 0.5
	lat, _ := diffusion.NewLattice(L)
	v0, _ := lat.FreeVariance(m2)
	act, _ := lattice.NewFree(L, m2)
	car, _ := diffusion.NewCarosso(lat, 1, 0.5, 2)
	pol, _ := diffusion.NewPolchinski(lat, diffusion.MassRegulator{Mu2: 0.1}, m2, 1)
	for _, sde := range []diffusion.SDE{car, pol} {
		free, err := diffusion.NewFreeScore(sde, v0)
		if err != nil {
			t.Fatal(err)
		}
		prior, _ := diffusion.Prior(sde, v0)
		net, _ := diffusion.NewCNNScore(sde, 1, 4, 1, false, v0) // unbuilt: the DSM's process and scale only
		const n = 400
		held := make([]float64, n*lat.V)
		(&diffusion.Gaussian{Lat: lat, Var: v0}).Sample(rand.New(rand.NewPCG(4, 5)), held)
		rep, err := evaluateDiffusion(diffusionEvalInput{Act: act, Net: net, Score: free, Prior: prior, Weighting: "variance",
			TMin: 0.02, HeldOut: held, FreeM2: m2, KLN: 64, Seed: 3, Opt: diffusion.LikelihoodOptions{Steps: 100}})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Divergence != "exact (mode-diagonal)" {
			t.Errorf("divergence %q", rep.Divergence)
		}
		if d := math.Abs(float64(rep.NLL[0] - rep.ExactNLL[0])); d > 1e-3 {
			t.Errorf("%s: NLL %v, exact %v", sde.Name(), rep.NLL, *rep.ExactNLL)
		}
		kl, klErr := float64(rep.KL[0]), float64(rep.KL[1])
		if math.Abs(kl) > 3*klErr+1e-12 || math.Abs(kl)/float64(lat.V) > 1e-3 {
			t.Errorf("%s: KL %g ± %g (stat %g, ODE %g)", sde.Name(), kl, klErr, float64(*rep.KLStatErr), float64(*rep.KLODEErr))
		}
		// The analytic DSM expectation.
		V := lat.V
		m, q := make([]float64, V), make([]float64, V)
		const K = 2000
		want := 0.0
		for i := range K {
			tt := 0.02 + (sde.T()-0.02)*(float64(i)+0.5)/K
			sde.Transition(0, tt, m, q)
			for j := range V {
				want += q[j] * (1/q[j] - 1/(m[j]*m[j]*v0[j]+q[j]))
			}
		}
		want /= K
		if d := math.Abs(float64(rep.DSMLoss[0]) - want); d > 4*float64(rep.DSMLoss[1]) {
			t.Errorf("%s: DSM loss %v, analytic %.5g", sde.Name(), rep.DSMLoss, want)
		}
		t.Logf("%s: NLL %v exact %v, KL %v (stat %g, ODE %g, nfe %d), DSM %v (analytic %.5g)", sde.Name(), rep.NLL, *rep.ExactNLL,
			*rep.KL, float64(*rep.KLStatErr), float64(*rep.KLODEErr), rep.KLNFE, rep.DSMLoss, want)
	}
}

// TestEvalDiffusionCLI: rgflow eval on diffusion runs prints the documented JSON keys, names the divergence
// it used (Hutchinson for the CNN and the effective action plus a CNN remainder, exact for the effective
// action), gives KL only for a free field, and
// rejects bad input.
func TestEvalDiffusionCLI(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "free.npz")
	writeFreeSamples(t, data, 40)
	common := []string{"train", "diffusion", "--data", data, "--action", "free", "--L", "4", "--m2", "0.5",
		"--steps", "3", "--batch", "8", "--width", "4", "--depth", "1", "--log-every", "1"}
	cnn, eff, ec := filepath.Join(dir, "cnn"), filepath.Join(dir, "eff"), filepath.Join(dir, "effcnn")
	runOK(t, append(common, "--out", cnn)...)
	runOK(t, append(common, "--out", eff, "--score", "effective")...)
	runOK(t, append(common, "--out", ec, "--score", "effective+cnn")...) // the CNN remainder has no exact divergence
	for r, div := range map[string]string{cnn: "hutchinson (1 probes)", eff: "exact (trace)", ec: "hutchinson (1 probes)"} {
		out := runOK(t, "eval", r, "--json", "--n", "8", "--kl-n", "4", "--steps", "10")
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, k := range []string{"dsm_loss", "nll_per_site", "nfe", "divergence", "exact_nll_per_site", "kl", "kl_per_site", "kl_stat_err", "kl_ode_err", "exact_logZ", "held_out"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: key %q missing: %s", r, k, out)
			}
		}
		if m["divergence"] != div {
			t.Errorf("%s: divergence %v, want %s", r, m["divergence"], div)
		}
	}
	if out := runOK(t, "eval", cnn, "--n", "8", "--kl-n", "4", "--steps", "10"); !strings.Contains(out, "KL(q‖p)") {
		t.Errorf("text report: %s", out)
	}
	phi := filepath.Join(dir, "phi")
	runOK(t, "train", "diffusion", "--chains", "2", "--chain-thermalize", "10", "--action", "phi4", "--L", "4", "--m2", "-1",
		"--lambda", "0.5", "--steps", "2", "--batch", "4", "--width", "4", "--depth", "1", "--out", phi)
	out := runOK(t, "eval", phi, "--json", "--n", "8", "--steps", "10")
	var rep diffusionEval
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.KL != nil || !strings.HasPrefix(rep.HeldOut, "HMC") || rep.NFE == 0 {
		t.Errorf("phi4 run: %s", out)
	}
	for want, args := range map[string][]string{
		"--n=1":         {"eval", cnn, "--n", "1"},
		"--rtol":        {"eval", cnn, "--rtol", "0"},
		"unexpected":    {"eval", cnn, "extra"},
		"phi has shape": {"eval", phi, "--data", filepath.Join(dir, "wrongshape.npz")},
	} {
		if want == "phi has shape" {
			writeShapedSamples(t, args[len(args)-1], []int{3, 1, 5, 5})
		}
		err := run(args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("rgflow %s: error %v, want one containing %q", strings.Join(args, " "), err, want)
		}
	}
}

// writeShapedSamples writes a phi array of the given shape (zeros).
func writeShapedSamples(t *testing.T, path string, shape []int) {
	t.Helper()
	n := 1
	for _, d := range shape {
		n *= d
	}
	if err := checkpoints.WriteNPZ(path, []checkpoints.Array{{Name: "phi", Shape: shape, Data: make([]float64, n)}}); err != nil {
		t.Fatal(err)
	}
}
