package main

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestMPITrainMatchesSingleProcess builds the command with -tags mpi and trains the same 50-step reverse-KL
// run twice: as 2 MPI processes (mpirun -np 2, one worker each) and as one process. The two runs see the
// same global batch, sample for sample; only the order of the sums differs (MPI's all-reduce against
// the single process's one graph), a few ulps per step: the losses must agree to 1e-10 relative at every
// step (measured: 4e-16). Without Open MPI (mpirun, its pkg-config file, a C compiler) the test says so and
// skips.
func TestMPITrainMatchesSingleProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("MPI test skipped in -short mode (it builds the command with -tags mpi)")
	}
	mpirun, err := exec.LookPath("mpirun")
	if err != nil {
		t.Skip("MPI test skipped: no mpirun on PATH (Debian: apt-get install openmpi-bin libopenmpi-dev)")
	}
	if err := exec.Command("pkg-config", "--exists", "ompi").Run(); err != nil {
		t.Skip("MPI test skipped: pkg-config finds no Open MPI development files (Debian: apt-get install libopenmpi-dev pkg-config)")
	}
	if _, err := exec.LookPath("cc"); err != nil {
		t.Skip("MPI test skipped: no C compiler (cc) for the cgo MPI binding")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "rgflow-mpi")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-tags", "mpi", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags mpi: %v\n%s", err, out)
	}
	args := []string{"train", "lattice", "--L", "4", "--preset", "neuralrg-small", "--steps", "50", "--batch", "8",
		"--dtype", "float64", "--log-every", "1", "--eval-n", "0", "--workers", "1"}
	mpiDir, oneDir := filepath.Join(tmp, "mpi"), filepath.Join(tmp, "one")
	cmd := exec.Command(mpirun, append([]string{"--allow-run-as-root", "--oversubscribe", "-np", "2", bin},
		append(args, "--out", mpiDir)...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mpirun -np 2: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "data parallel: 2 process(es)") {
		t.Fatalf("mpirun -np 2 did not run as 2 processes of one job:\n%s", out)
	}
	if out, err := exec.Command(bin, append(args, "--out", oneDir)...).CombinedOutput(); err != nil {
		t.Fatalf("single process: %v\n%s", err, out)
	}
	a, b := metricLosses(t, mpiDir), metricLosses(t, oneDir)
	if len(a) != 50 || len(b) != 50 {
		t.Fatalf("%d and %d logged steps, want 50", len(a), len(b))
	}
	for i := range a {
		if d := math.Abs(a[i] - b[i]); d > 1e-10*math.Abs(b[i]) {
			t.Fatalf("step %d: loss %.17g on 2 MPI processes, %.17g on one", i+1, a[i], b[i])
		}
	}
}

// metricLosses reads the loss of every line of a run's metrics.jsonl that has one.
func metricLosses(t *testing.T, dir string) []float64 {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct {
			Loss *float64 `json:"loss"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Loss != nil {
			out = append(out, *rec.Loss)
		}
	}
	return out
}
