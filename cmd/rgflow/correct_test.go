package main

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/losses"
	"rgflow/models"
	"rgflow/models/bulk"
)

// randomImageFlow builds preset at L×L, C channels, float64, with every parameter perturbed by N(0, 0.1²)
// so that no layer is the identity.
func randomImageFlow(t *testing.T, preset string, L, C int) (*models.Flow, *layers.Store) {
	t.Helper()
	cfg, err := models.Preset(preset, L, C)
	if err != nil {
		t.Fatal(err)
	}
	flow, err := models.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store := layers.NewStore(tensor.Float64, 3)
	s := layers.NewScope(G.NewGraph(), store)
	if _, _, err := flow.LogProb(s, s.Input("x", flow.Shape(1)...)); err != nil {
		t.Fatal(err)
	}
	store.Perturb(rand.New(rand.NewPCG(3, 4)), 0.1)
	return flow, store
}

// A cone repair on a random-weight flow: the touched latents are exactly those with a non-zero Jacobian
// entry on a corrupted value (computed through the graph, not from the block structure); redrawing every
// other latent leaves the repaired region bit-identical; the reported MSEs equal a host recomputation from the returned arrays, and the clean
// intensities are the bin centres (p + ½)/256.
func TestCorrectCone(t *testing.T) {
	const L, C, n = 16, 1, 2
	flow, store := randomImageFlow(t, "rgflow-tiny", L, C)
	rng := rand.New(rand.NewPCG(9, 9))
	pix := make([]uint8, n*C*L*L)
	for i := range pix {
		pix[i] = uint8(rng.IntN(256))
	}
	cor, err := parseCorruption("box:5,6,3,2", L)
	if err != nil {
		t.Fatal(err)
	}
	res, err := correctImages(flow, store, pix, n, correctOptions{corrupt: cor, steps: 30, lr: 0.05, sigma: 0.5, seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Report
	dim := C * L * L
	if r.LatentsTotal != dim || r.N != n {
		t.Fatalf("latents_total %d, n %d", r.LatentsTotal, r.N)
	}

	// The start: encoding of the corrupted image, decoded again.
	bad := append([]uint8(nil), pix[:dim]...)
	region := []int{6*L + 5, 6*L + 6, 6*L + 7, 7*L + 5, 7*L + 6, 7*L + 7}
	for _, s := range region {
		bad[s] = 0
	}
	pre := losses.Preprocess{Fixed: true, U: 0.5}
	yo := make([]float64, dim)
	if err := pre.Apply(nil, bad, dim, yo, make([]float64, 1)); err != nil {
		t.Fatal(err)
	}
	enc, err := models.NewEncoder(flow, store, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	sm, err := models.NewSampler(flow, store, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	z0, _, err := enc.Encode(yo)
	if err != nil {
		t.Fatal(err)
	}
	y0, _, err := sm.Decode(z0)
	if err != nil {
		t.Fatal(err)
	}

	// Latents that reach a corrupted value, from the Jacobian at the start.
	J, err := bulk.Jacobian(flow, store, z0, 256)
	if err != nil {
		t.Fatal(err)
	}
	reach := 0
	for k := range dim {
		for _, s := range region {
			if J[s][k] != 0 {
				reach++
				break
			}
		}
	}
	if res.Touched[0] != reach || reach == 0 || reach == dim {
		t.Errorf("latents touched %d, latents with a non-zero response on the region %d (of %d)", res.Touched[0], reach, dim)
	}

	// The freed latents are exactly those: the same set.
	inCone := make([]bool, dim)
	for _, k := range res.Cones[0] {
		inCone[k] = true
	}
	for k := range dim {
		r := false
		for _, s := range region {
			r = r || J[s][k] != 0
		}
		if r != inCone[k] {
			t.Errorf("latent %d: in the cone %v, reaches the region %v", k, inCone[k], r)
		}
	}

	// Latents outside the cone cannot change the region: redrawing all of them leaves the corrupted values
	// of the repaired decoding bit-identical. (The values outside the cone's influence would be the dual
	// check, but in a full hierarchy the cone holds top-level latents, whose influence is the whole image.)
	z := slices.Clone(res.Latents[0])
	for k := range z {
		if !inCone[k] {
			z[k] = rng.NormFloat64()
		}
	}
	y1, _, err := sm.Decode(z)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range region {
		if got, want := pre.Dequantised(y1[s]), res.Corrected[0][s]; got != want {
			t.Errorf("region value %d: %v with the other latents redrawn, %v repaired", s, got, want)
		}
	}
	changed := 0
	for p := range dim {
		if res.Corrected[0][p] != pre.Dequantised(y0[p]) {
			changed++
		}
	}
	if changed == 0 {
		t.Error("the repair changed nothing")
	}

	// Host recomputation of the report from the arrays.
	var bs, as, os []float64
	for i := range n {
		for p := range dim {
			if want := (float64(pix[i*dim+p]) + 0.5) / 256; math.Abs(res.Clean[i][p]-want) > 1e-12 { // logit round trip
				t.Fatalf("clean intensity %d of image %d: %v, want %v", p, i, res.Clean[i][p], want)
			}
		}
		in := map[int]bool{}
		for _, s := range region {
			in[s] = true
		}
		var b, a, o float64
		for p := range dim {
			dc, dr := res.Corrupted[i][p]-res.Clean[i][p], res.Corrected[i][p]-res.Clean[i][p]
			if in[p] {
				b += dc * dc / float64(len(region))
				a += dr * dr / float64(len(region))
			} else {
				o += dr * dr / float64(dim-len(region))
			}
		}
		bs, as, os = append(bs, b), append(as, a), append(os, o)
	}
	check := func(name string, got [2]jsonNum, v []float64) {
		m := (v[0] + v[1]) / 2
		e := math.Abs(v[0]-v[1]) / 2                                                                                  // standard error of the mean of two values
		if math.Abs(float64(got[0])-m) > 1e-12*math.Max(1, m) || math.Abs(float64(got[1])-e) > 1e-12*math.Max(1, e) { // summation order only
			t.Errorf("%s = %v, host %v ± %v", name, got, m, e)
		}
	}
	check("mse_corrupted", r.MSECorrupted, bs)
	check("mse_corrected", r.MSECorrected, as)
	check("mse_outside", r.MSEOutside, os)
	if float64(r.LatentsTouched) != float64(res.Touched[0]+res.Touched[1])/2 {
		t.Errorf("latents_touched %v, per image %v", r.LatentsTouched, res.Touched)
	}

	// --method all frees every latent.
	all, err := correctImages(flow, store, pix[:dim], 1, correctOptions{corrupt: cor, all: true, steps: 5, lr: 0.05, sigma: 0.5, seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if all.Touched[0] != dim {
		t.Errorf("method all touched %d of %d latents", all.Touched[0], dim)
	}
}

// The number of latents in the causal cone of a fixed 4×4 region grows like log N (rgflow-small, 4×4
// blocks): each doubling of the side adds one level, and once the region's cone at that level no longer
// wraps around the periodic image, a fixed number of latents.
func TestCorrectConeGrowth(t *testing.T) {
	var sizes []int
	for _, L := range []int{16, 32, 64, 128, 256} {
		cfg, err := models.Preset("rgflow-small", L, 1)
		if err != nil {
			t.Fatal(err)
		}
		flow, err := models.Build(cfg)
		if err != nil {
			t.Fatal(err)
		}
		seq, err := layers.BlockSequence(flow.Bijector)
		if err != nil {
			t.Fatal(err)
		}
		var region []int
		for i := 6; i < 10; i++ {
			for j := 6; j < 10; j++ {
				region = append(region, i*L+j)
			}
		}
		cone, err := flow.Hier.Cone(region, seq)
		if err != nil {
			t.Fatal(err)
		}
		n, per := 0, []int{}
		for _, lv := range cone {
			n += len(lv)
			per = append(per, len(lv))
		}
		t.Logf("L=%d: %d of %d latents in the cone of a 4×4 region (per level %v)", L, n, L*L, per)
		sizes = append(sizes, n)
	}
	// From L = 64 on every level below the top two is saturated: each doubling adds one level's fixed count.
	d := sizes[3] - sizes[2]
	if d <= 0 || sizes[4]-sizes[3] != d || sizes[2]-sizes[1] > d || sizes[1]-sizes[0] > d {
		t.Errorf("cone sizes %v for L = 16 … 256: want a constant increment per doubling from L = 64 (log N growth)", sizes)
	}
}

// Bad --corrupt specs and flags give errors naming the problem.
func TestCorrectBadInput(t *testing.T) {
	for _, spec := range []string{"", "box", "box:1,2,3", "box:a,1,1,1", "box:30,0,4,4", "box:0,0,0,4", "box:0,0,16,16",
		"stripe:15,2", "pixels:0", "pixels:1.5", "pixels:x", "blur:3"} {
		if _, err := parseCorruption(spec, 16); err == nil {
			t.Errorf("--corrupt %q: no error", spec)
		}
	}
	c, err := parseCorruption("stripe:3,2", 16)
	if err != nil || len(c.sites) != 32 || c.sites[0] != 48 {
		t.Errorf("stripe:3,2 → %v, %v; want rows 3 and 4", c.sites, err)
	}
	for _, args := range [][]string{
		{"correct"},
		{"correct", "/nonexistent/run", "--corrupt", "box:1,1,2,2"},
		{"correct", "/nonexistent/run"},
		{"correct", "/nonexistent/run", "--corrupt", "box:1,1,2,2", "--method", "some"},
		{"correct", "/nonexistent/run", "--corrupt", "box:1,1,2,2", "--sigma", "0"},
		{"correct", "/nonexistent/run", "--corrupt", "box:1,1,2,2", "--sample", "gibbs"},
		{"correct", "/nonexistent/run", "--corrupt", "box:1,1,2,2", "--samples-png", "x.png"},
		{"correct", "/nonexistent/run", "--corrupt", "box:1,1,2,2", "--sample", "hmc", "--eps", "0"},
		{"correct", "/nonexistent/run", "--corrupt", "box:1,1,2,2", "--method", "all", "--cone-levels", "2"},
		{"correct", "/nonexistent/run", "--corrupt", "box:1,1,2,2", "--window", "-2"},
	} {
		if err := run(args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// The command on a short image run: JSON keys, the PNG, and mse_corrupted against the data set's pixels
// directly (a black box: the mean of ((p + ½)/256 − ½/256)² over the box).
func TestCorrectCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("trains an image run")
	}
	dir := filepath.Join(t.TempDir(), "img")
	runCmd(t, trainCmd, smallImages(dir, "--steps", "2", "--size", "16")...)
	png := filepath.Join(t.TempDir(), "ba.png")
	out := runCmd(t, func(a []string, o, e *bytes.Buffer) error { return runCorrect(a, o, e) }, dir,
		"--split", "train", "--n", "2", "--corrupt", "box:4,4,4,4", "--steps", "3", "--png", png, "--json")
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, k := range []string{"mse_corrupted", "mse_corrected", "mse_outside", "latents_touched", "latents_total", "seconds"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("no %s in %s", k, out)
		}
	}
	run, _, _, _, err := loadImageRun(dir, "test", weightChoice{})
	if err != nil {
		t.Fatal(err)
	}
	set, err := run.Data.split("", "train", run.Train.Seed, "test")
	if err != nil {
		t.Fatal(err)
	}
	pix, err := loadImages(set, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	L := 16
	C := set.Dim() / (L * L)
	var per []float64
	for i := range 2 {
		s, cnt := 0.0, 0
		for ch := range C {
			for r := 4; r < 8; r++ {
				for c := 4; c < 8; c++ {
					d := (float64(pix[i*set.Dim()+ch*L*L+r*L+c]) + 0.5 - 0.5) / 256
					s += d * d
					cnt++
				}
			}
		}
		per = append(per, s/float64(cnt))
	}
	got := rep["mse_corrupted"].([]any)
	if m := (per[0] + per[1]) / 2; math.Abs(got[0].(float64)-m) > 1e-12 { // logit round trip
		t.Errorf("mse_corrupted %v, host %v", got, m)
	}
	if st, err := os.Stat(png); err != nil || st.Size() < 100 {
		t.Errorf("PNG: %v", err)
	}
	// Sampled repairs with the data term on a window: the sampling keys, fewer blocks per decode, the PNG.
	spng := filepath.Join(t.TempDir(), "samples.png")
	out = runCmd(t, func(a []string, o, e *bytes.Buffer) error { return runCorrect(a, o, e) }, dir,
		"--split", "train", "--n", "1", "--corrupt", "box:4,4,2,2", "--steps", "2", "--window", "1",
		"--sample", "langevin", "--samples", "3", "--burn", "1", "--samples-png", spng, "--json")
	rep = nil
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, k := range []string{"sampler", "acceptance", "spread_corrupted", "spread_outside", "mse_posterior_mean", "gradient_evals"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("no %s in %s", k, out)
		}
	}
	if ge := rep["gradient_evals"].(float64); ge != 5 { // one at the start, one per trajectory of one leapfrog step
		t.Errorf("gradient_evals %v, want 1 + (1 + 3)·1 = 5", ge)
	}
	if r, tot := rep["blocks_run"].(float64), rep["blocks_total"].(float64); !(r < tot) {
		t.Errorf("windowed repair runs %v of %v blocks per decode, want fewer", r, tot)
	}
	if st, err := os.Stat(spng); err != nil || st.Size() < 100 {
		t.Errorf("samples PNG: %v", err)
	}
}

// The window of a site is its (2m+1)² neighbourhood, clipped at the canvas edge.
func TestWindowAround(t *testing.T) {
	if w := windowAround([]int{5*16 + 5}, 16, 1); len(w) != 9 || w[0] != 4*16+4 || w[8] != 6*16+6 {
		t.Errorf("window of (5, 5), m=1: %v", w)
	}
	if w := windowAround([]int{0}, 16, 2); len(w) != 9 { // rows and columns 0 … 2
		t.Errorf("window of (0, 0), m=2: %d sites, want 9", len(w))
	}
	if w := windowAround([]int{3, 4}, 16, 0); len(w) != 2 {
		t.Errorf("m=0 window: %v", w)
	}
	if windowAround([]int{3}, 16, -1) != nil {
		t.Error("m=−1 gives a window")
	}
}

// Repairing a batch of images together gives the repairs made one at a time: the losses add, the gradients
// of different images' latents are separate, and Adam scales every latent on its own (up to its ε = 1e-8
// against gradients of order 1–100: 1e-6 on the intensities); the windowed restricted decode runs fewer
// blocks than the full one.
func TestCorrectBatch(t *testing.T) {
	const L, C, n = 16, 1, 3
	flow, store := randomImageFlow(t, "rgflow-tiny", L, C)
	rng := rand.New(rand.NewPCG(4, 4))
	pix := make([]uint8, n*C*L*L)
	for i := range pix {
		pix[i] = uint8(rng.IntN(256))
	}
	cor, err := parseCorruption("box:5,6,3,2", L)
	if err != nil {
		t.Fatal(err)
	}
	o := correctOptions{corrupt: cor, steps: 15, lr: 0.05, sigma: 0.5, seed: 1, window: 2}
	one, err := correctImages(flow, store, pix, n, o)
	if err != nil {
		t.Fatal(err)
	}
	o.batch = 2
	two, err := correctImages(flow, store, pix, n, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		for k, v := range one.Corrected[i] {
			if math.Abs(two.Corrected[i][k]-v) > 1e-6 {
				t.Fatalf("image %d value %d: batch repair %.9f, single %.9f", i, k, two.Corrected[i][k], v)
			}
		}
	}
	if r := one.Report; !(r.BlocksRun < float64(r.BlocksTotal)) {
		t.Errorf("windowed repair runs %v of %d blocks", r.BlocksRun, r.BlocksTotal)
	}
	pixCor, err := parseCorruption("pixels:0.1", L)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := correctImages(flow, store, pix, n, correctOptions{corrupt: pixCor, steps: 1, lr: 0.05, sigma: 0.5, seed: 1, batch: 2}); err == nil {
		t.Error("a batch of pixel corruptions (different sites): no error")
	}
}
