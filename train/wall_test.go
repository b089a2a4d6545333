package train

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gorgonia.org/tensor"
)

// fakeClock advances only when told to: a test's OnStep hook moves it by one second per step.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// readWall returns the wall_s of every line of a metrics.jsonl, by step.
func readWall(t *testing.T, path string) map[int64]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[int64]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m struct {
			Step int64   `json:"step"`
			Wall float64 `json:"wall_s"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		out[m.Step] = m.Wall
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// wall_s is the run's training time: with a clock that advances exactly one second per step it must read
// k−1 s at step k (the record of step k is stamped before its hook advances the clock), whatever the
// checkpoints written in between, and a resumed session continues from the time saved in the checkpoint
// (which is the time of the last step's record). Checkpoints every 2 steps: a wall time that re-added the
// session's elapsed time at each checkpoint grows quadratically and fails by seconds at step 4. The values
// are sums of whole seconds, exact in float64: the tolerance 1e-9 s only absorbs the text round trip.
func TestWallTimeFollowsTheClock(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	tick := Hook{Name: "tick", Fn: func(Record) error { clk.t = clk.t.Add(time.Second); return nil }}
	cfg := toyConfig(10, dir)
	cfg.CheckpointEvery = 2
	cfg.Hooks.OnStep = []Hook{tick}
	_, tr := newToy(t, tensor.Float64, 1, cfg, 0)
	tr.now = clk.now
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Second session, after an hour away: the pause is not training time.
	clk.t = clk.t.Add(time.Hour)
	cfg = toyConfig(16, dir)
	cfg.CheckpointEvery = 2
	cfg.Hooks.OnStep = []Hook{tick}
	_, tr2 := newToy(t, tensor.Float64, 1, cfg, 0)
	tr2.now = clk.now
	if err := tr2.Resume(dir); err != nil {
		t.Fatal(err)
	}
	if err := tr2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	wall := readWall(t, filepath.Join(dir, metricsFile))
	if len(wall) != 16 {
		t.Fatalf("metrics.jsonl has %d steps, want 16", len(wall))
	}
	for k := int64(1); k <= 16; k++ {
		want := float64(k - 1)
		if k > 10 {
			want = 9 + float64(k-11) // the checkpoint of step 10 saved 9 s
		}
		if math.Abs(wall[k]-want) > 1e-9 {
			t.Errorf("step %d: wall_s = %g, want %g", k, wall[k], want)
		}
	}
}

// With the real clock, the wall time reported at the last step cannot exceed the time Run took, measured
// outside it (a strict bound: Run's own clock starts later and stops earlier); checkpoints every step make
// any double counting large.
func TestWallTimeWithinRealTime(t *testing.T) {
	dir := t.TempDir()
	cfg := toyConfig(12, dir)
	cfg.CheckpointEvery = 1
	_, tr := newToy(t, tensor.Float32, 1, cfg, 0)
	start := time.Now()
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start).Seconds()
	wall := readWall(t, filepath.Join(dir, metricsFile))
	prev := 0.0
	for k := int64(1); k <= 12; k++ {
		if wall[k] < prev {
			t.Errorf("step %d: wall_s %g went back from %g", k, wall[k], prev)
		}
		prev = wall[k]
	}
	if prev > elapsed {
		t.Errorf("wall_s at the last step is %g s, but Run took %g s of real time", prev, elapsed)
	}
}
