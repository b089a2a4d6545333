package main

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/models"
)

// The command line's --workers: 1 and 3 workers train the same run at the same --batch (the batch is the
// same, sample for sample; only the order of the sums differs, so the losses agree to 1e-10 relative, the
// bound of the trainer's own tests), a run stopped on 3 workers continues on 1 and ends where the 1-worker
// run ends (to the same bound), and eval prints the same numbers, to the bit, on different worker counts
// (lattice: the flow draws, images: the dequantisation noise do not depend on the number of workers).
func TestWorkersFlag(t *testing.T) {
	tmp := t.TempDir()
	one, three, moved := filepath.Join(tmp, "one"), filepath.Join(tmp, "three"), filepath.Join(tmp, "moved")
	runCmd(t, trainCmd, small(one, "--steps", "20", "--dtype", "float64", "--workers", "1")...)
	runCmd(t, trainCmd, small(three, "--steps", "20", "--dtype", "float64", "--workers", "3")...)
	runCmd(t, trainCmd, small(moved, "--steps", "20", "--dtype", "float64", "--workers", "3", "--stop-after", "10")...)
	runCmd(t, trainCmd, "lattice", "--resume", moved, "--workers", "1")
	a := loggedLosses(t, one)
	if len(a) != 4 {
		t.Fatalf("%d logged steps, want 4", len(a))
	}
	for _, dir := range []string{three, moved} {
		b := loggedLosses(t, dir)
		for step, la := range a {
			if lb, ok := b[step]; !ok || math.Abs(la-lb) > 1e-10*math.Abs(la) {
				t.Errorf("%s: step %v: loss %v, the 1-worker run's %v", filepath.Base(dir), step, lb, la)
			}
		}
	}
	eval := func(a []string, o, e *bytes.Buffer) error { return runEval(a, o, e) }
	e1 := runCmd(t, eval, one, "--n", "256", "--json", "--workers", "1")
	e2 := runCmd(t, eval, one, "--n", "256", "--json", "--workers", "2")
	if e1 != e2 {
		t.Errorf("eval differs on 1 and 2 workers:\n%s\n%s", e1, e2)
	}
	img := filepath.Join(tmp, "img")
	runCmd(t, trainCmd, smallImages(img, "--steps", "2", "--workers", "2")...)
	sample := func(a []string, o, e *bytes.Buffer) error { return runSample(a, o, e) }
	s1, s3 := filepath.Join(tmp, "s1.npz"), filepath.Join(tmp, "s3.npz")
	runCmd(t, sample, img, "--n", "5", "--out", s1, "--workers", "1")
	runCmd(t, sample, img, "--n", "5", "--out", s3, "--workers", "3")
	if a, b := readFile(t, s1), readFile(t, s3); !bytes.Equal(a, b) {
		t.Error("image samples differ on 1 and 3 workers")
	}
	i1 := runCmd(t, eval, img, "--n", "30", "--json", "--workers", "1")
	i2 := runCmd(t, eval, img, "--n", "30", "--json", "--workers", "3")
	if i1 != i2 {
		t.Errorf("image eval differs on 1 and 3 workers:\n%s\n%s", i1, i2)
	}
	var out, errb bytes.Buffer
	err := runTrain(small(filepath.Join(tmp, "bad"), "--steps", "2", "--workers", "0"), &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "--workers=0") {
		t.Errorf("--workers 0: %v", err)
	}
}

// encodeImages: the latents of 11 images in batches of 4 are the same, bit for bit, on 1 and 3 workers, and
// agree with one Encoder over all 11 images at once to 1e-12 (the same per-image computation; only the
// batch size of the products differs, which may change their rounding).
func TestEncodeImagesWorkers(t *testing.T) {
	cfg, err := models.Preset("rgflow-tiny", 8, 3)
	if err != nil {
		t.Fatal(err)
	}
	flow, err := models.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store := layers.NewStore(tensor.Float64, 1)
	if err := bindFlow(flow, store); err != nil {
		t.Fatal(err)
	}
	store.Perturb(rand.New(rand.NewPCG(3, 4)), 0.05)
	const count, dim = 11, 3 * 8 * 8
	y := make([]float64, count*dim)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range y {
		y[i] = rng.NormFloat64()
	}
	z1, err := encodeImages(flow, store, y, count, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	z3, err := encodeImages(flow, store, y, count, 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(z1, z3) {
		t.Error("latents differ on 1 and 3 workers")
	}
	enc, err := models.NewEncoder(flow, store, count)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	want, _, err := enc.Encode(y)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Abs(z1[i]-want[i]) > 1e-12*math.Max(1, math.Abs(want[i])) {
			t.Fatalf("latent %d: %v in batches of 4, %v in one batch", i, z1[i], want[i])
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
