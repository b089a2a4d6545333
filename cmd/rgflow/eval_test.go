package main

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"

	"rgflow/checkpoints"
	"rgflow/datasets/images"
	"rgflow/datasets/lattice/latticetest"
	"rgflow/models"
)

// freeExact returns ⟨φ²⟩, χ = ⟨M²⟩/V, G(L/2) and ln Z of the free field from its dense precision matrix
// (latticetest.DenseFree), independently of package lattice's momentum sums.
func freeExact(L int, m2 float64) (phi2, chi, gHalf, logZ float64) {
	f, err := latticetest.DenseFree(L, m2)
	if err != nil {
		panic(err) // the tests pass valid sizes and masses
	}
	return f.Phi2, f.Chi, f.GHalf, f.LogZ
}

// hostFreeS is S = Σ_x [ ½ Σ_μ (φ_{x+μ} − φ_x)² + ½ m² φ_x² ], written out here.
func hostFreeS(L int, m2 float64, phi []float64) float64 {
	var s float64
	for i := range L {
		for j := range L {
			v := phi[i*L+j]
			dr, dd := phi[i*L+(j+1)%L]-v, phi[((i+1)%L)*L+j]-v
			s += 0.5*(dr*dr+dd*dd) + 0.5*m2*v*v
		}
	}
	return s
}

func npzArrays(t *testing.T, path string) map[string][]float64 {
	t.Helper()
	arr, err := checkpoints.ReadNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float64{}
	for _, a := range arr {
		if d, ok := a.Data.([]float64); ok {
			out[a.Name] = d
		}
	}
	return out
}

// rgflow sample's log q, S and log w, recomputed: S by the host formula, log q through the flow's forward
// (inference) graph, a different path from the generation graph that sampled — for a Z₂-symmetrised run
// log ½[q(x) + q(−x)] summed directly from q(x) and q(−x), for a plain run log q(x). Tolerance
// 1e-9·(1+|v|): float64 round trip F(F⁻¹(z)) (~1e-13 relative).
func checkSampleDensities(t *testing.T, dir string, n int, m2 float64) (logq, action []float64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.npz")
	runCmd(t, func(a []string, o, e *bytes.Buffer) error { return runSample(a, o, e) }, dir, "--n", strconv.Itoa(n), "--out", path)
	s := npzArrays(t, path)
	run, _, flow, store, _, err := loadLatticeRun(dir, "test", weightChoice{ema: true})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := models.NewEncoder(flow, store, n)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	x := s["x"]
	_, lq, err := enc.Encode(x)
	if err != nil {
		t.Fatal(err)
	}
	neg := make([]float64, len(x))
	for i, v := range x {
		neg[i] = -v
	}
	_, lqNeg, err := enc.Encode(neg)
	if err != nil {
		t.Fatal(err)
	}
	L := flow.L
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*(1+math.Abs(b)) }
	for i := range n {
		want := lq[i]
		if run.Train.Symmetrize {
			want = math.Log(0.5 * (math.Exp(lq[i]) + math.Exp(lqNeg[i])))
		}
		S := hostFreeS(L, m2, x[i*L*L:(i+1)*L*L])
		if !near(s["logq"][i], want) || !near(s["action"][i], S) || !near(s["logw"][i], -S-want) {
			t.Fatalf("symmetrize=%v sample %d: logq %.12g action %.12g logw %.12g; independent %.12g %.12g %.12g",
				run.Train.Symmetrize, i, s["logq"][i], s["action"][i], s["logw"][i], want, S, -S-want)
		}
	}
	return s["logq"], s["action"]
}

// The numbers of rgflow eval on a free-field run (L = 4, m² = 1, trained 400 steps to ESS ≈ 0.9) against
// independent computations: exact ln Z from the precision matrix to 1e-9; ESS in (0, 1]; the gap
// F_q + ln Z ≥ −3σ (it is KL(q‖p) ≥ 0); the importance-sampled ln Z within 4σ of the exact one; F_q within
// 4σ (combined) of the mean of log q + S over rgflow sample's independent draws; flow-MCMC ⟨φ²⟩, χ and
// G(L/2) within 4σ of the exact values. (U4 and g_R are left out on purpose: a trained flow's magnetisation
// tails are lighter than the target's, and on 4096 proposals flow MCMC and reweighting under-sample them by
// more than their jackknife errors, e.g. U4 = 0.07 ± 0.02 against 0; package flowmc tests them with a
// proposal whose weights are bounded.)
func TestEvalLatticeNumbers(t *testing.T) {
	if testing.Short() {
		t.Skip("trains 400 steps")
	}
	const m2, L = 1.0, 4
	dir := filepath.Join(t.TempDir(), "run")
	runCmd(t, trainCmd, "lattice", "--action", "free", "--m2", "1", "--L", "4", "--preset", "neuralrg-small",
		"--batch", "64", "--lr", "1e-2", "--steps", "400", "--log-every", "100", "--checkpoint-every", "400",
		"--eval-samples", "0", "--out", dir)
	logq, action := checkSampleDensities(t, dir, 2000, m2)

	out := runCmd(t, func(a []string, o, e *bytes.Buffer) error { return runEval(a, o, e) }, dir, "--samples", "4096", "--json")
	var rep struct {
		Loss, LogZ, Gap [2]float64
		ExactLogZ       float64 `json:"exact_logZ"`
		ESS             float64
		Acceptance      float64
		Observables     map[string][2]float64
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, out)
	}
	phi2, chi, gHalf, logZ := freeExact(L, m2)
	if math.Abs(rep.ExactLogZ-logZ) > 1e-9 {
		t.Errorf("exact_logZ %.12g, precision matrix %.12g", rep.ExactLogZ, logZ)
	}
	if !(rep.ESS > 0 && rep.ESS <= 1) || !(rep.Acceptance > 0 && rep.Acceptance <= 1) {
		t.Errorf("ESS %g, acceptance %g: want both in (0, 1]", rep.ESS, rep.Acceptance)
	}
	if math.Abs(rep.Gap[0]-(rep.Loss[0]+logZ)) > 1e-9 || rep.Gap[0] < -3*rep.Gap[1] {
		t.Errorf("gap %g ± %g (F_q %g, ln Z %g): want F_q + ln Z ≥ −3σ", rep.Gap[0], rep.Gap[1], rep.Loss[0], logZ)
	}
	within := func(name string, got, err, want float64) {
		t.Helper()
		if !(math.Abs(got-want) <= 4*err) {
			t.Errorf("%s = %.6g ± %.3g, independent %.6g (%.1fσ, allowed 4σ)", name, got, err, want, math.Abs(got-want)/err)
		}
	}
	within("IS ln Z", rep.LogZ[0], rep.LogZ[1], logZ)
	var sf, sf2 float64
	for i := range logq {
		f := logq[i] + action[i]
		sf += f
		sf2 += f * f
	}
	n := float64(len(logq))
	mf := sf / n
	sef := math.Sqrt((sf2/n - mf*mf) / (n - 1))
	within("F_q against rgflow sample's draws", rep.Loss[0], math.Hypot(rep.Loss[1], sef), mf)
	for name, want := range map[string]float64{"phi2": phi2, "chi": chi, "G_half": gHalf} {
		o := rep.Observables[name]
		within("flow-MCMC "+name, o[0], o[1], want)
	}
	t.Logf("ESS %.3f, acceptance %.3f, gap %.4f ± %.4f, IS ln Z %.5f ± %.5f (exact %.5f)",
		rep.ESS, rep.Acceptance, rep.Gap[0], rep.Gap[1], rep.LogZ[0], rep.LogZ[1], logZ)

	// A run trained without symmetrisation samples q itself.
	plain := filepath.Join(t.TempDir(), "plain")
	runCmd(t, trainCmd, small(plain, "--m2", "1", "--steps", "10", "--symmetrize=false")...)
	checkSampleDensities(t, plain, 300, m2)
}

// rgflow eval on an image run of 28×28 Fashion-MNIST images padded to 32×32 equals a host computation of
// the same quantities: the first 9 training images padded by hand, dequantised with the evaluation's noise
// (u from rand.NewPCG(seed, 0xe7a1), one per canvas value in pixel order), y = logit(0.05 + 0.9 x̃) and
// Σ ln|dy/dx̃| written out here, ln q(y) from the run's flow, and
// bits_per_dim = mean over images of (−ln q − Σ ln|dy/dx̃| + 1024 ln 256)/ln 2 / 784 (the canvas's code
// length per real pixel), bits_per_dim_canvas the same over 1024, each with the standard error over images.
// Tolerance 1e-9: the same float32 log-densities, summed in float64 along different routes.
func TestEvalImagesNumbers(t *testing.T) {
	const fm = "../../datasets/images/testdata/fashion-mnist-64"
	dir := filepath.Join(t.TempDir(), "run")
	runCmd(t, trainCmd, "images", "--data", "fashion-mnist:"+fm, "--preset", "rgflow-tiny", "--input-actnorm", "--batch", "8",
		"--steps", "4", "--log-every", "2", "--checkpoint-every", "4", "--eval-n", "0", "--out", dir)
	out := runCmd(t, func(a []string, o, e *bytes.Buffer) error { return runEval(a, o, e) }, dir,
		"--split", "train", "--n", "9", "--seed", "3", "--json")
	var rep struct {
		BitsPerDim       [2]float64 `json:"bits_per_dim"`
		BitsPerDimCanvas [2]float64 `json:"bits_per_dim_canvas"`
		N                int        `json:"n"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, out)
	}

	run, flow, store, _, err := loadImageRun(dir, "test", weightChoice{ema: true})
	if err != nil {
		t.Fatal(err)
	}
	// The training split is a seeded shuffle of the file: find each of its first 9 images in the raw 28×28
	// file by its central pixels, so that the padding below is ours.
	train, _, err := run.Data.load(run.Train.Seed, "test")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := images.ReadIDXImages(filepath.Join(fm, "train-images-idx3-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	const n, D = 9, 1024
	im := &images.Images{Pix: make([]uint8, n*784)}
	for b := range n {
		canvas := train.Images().Image(b)
		found := false
		for r := 0; r < raw.N && !found; r++ {
			src := raw.Image(r)
			same := true
			for k := 0; k < 784 && same; k++ {
				same = canvas[(2+k/28)*32+2+k%28] == src[k]
			}
			if same {
				copy(im.Pix[b*784:], src)
				found = true
			}
		}
		if !found {
			t.Fatalf("training image %d is not in the file", b)
		}
	}
	// The evaluation's noise: its first (and here only) chunk of up to 100 images draws from the PCG seeded
	// (s, 0), s the first Uint64 of the PCG seeded (--seed, 0xe7a1) (losses.EvalBitsPerDimWorkers).
	rng := rand.New(rand.NewPCG(rand.New(rand.NewPCG(3, 0xe7a1)).Uint64(), 0))
	y := make([]float64, n*D)
	ld := make([]float64, n)
	for b := range n {
		for i := range 32 {
			for j := range 32 {
				x := 0.0
				if i >= 2 && i < 30 && j >= 2 && j < 30 {
					x = float64(im.Pix[b*784+(i-2)*28+j-2])
				}
				p := 0.05 + 0.9*(x+rng.Float64())/256
				y[b*D+i*32+j] = math.Log(p / (1 - p))
				ld[b] += math.Log(0.9 / (p * (1 - p)))
			}
		}
	}
	enc, err := models.NewEncoder(flow, store, n)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	_, lq, err := enc.Encode(y)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		got  [2]float64
		dims float64
	}{{"bits_per_dim", rep.BitsPerDim, 784}, {"bits_per_dim_canvas", rep.BitsPerDimCanvas, 1024}} {
		var s, s2 float64
		for b := range n {
			v := (-lq[b] - ld[b] + D*math.Log(256)) / math.Ln2 / c.dims
			s += v
			s2 += v * v
		}
		mean := s / n
		se := math.Sqrt((s2/n - mean*mean) / (n - 1))
		if math.Abs(c.got[0]-mean) > 1e-9 || math.Abs(c.got[1]-se) > 1e-9 {
			t.Errorf("%s = %.12g ± %.6g, host %.12g ± %.6g", c.name, c.got[0], c.got[1], mean, se)
		}
	}
	if rep.N != n {
		t.Errorf("n = %d, want %d", rep.N, n)
	}
}
