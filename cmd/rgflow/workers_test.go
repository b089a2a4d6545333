package main

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"
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
