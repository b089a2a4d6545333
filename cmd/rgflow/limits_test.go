package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// A wall or CPU time limit that is already spent after the first step stops the session there with a
// checkpoint and a resume hint; resuming runs the rest of --steps. A 1 ns limit makes the stop step certain
// (the hook runs after every step), so the test does not depend on the machine's speed.
func TestTrainTimeLimitsStopWithCheckpoint(t *testing.T) {
	for _, flag := range []string{"--time-limit", "--cpu-limit"} {
		t.Run(flag, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			out := runCmd(t, trainCmd, small(dir, "--steps", "12", flag, "1ns")...)
			if c := lastCheckpoint(t, dir); c.Step != 1 {
				t.Fatalf("%s 1ns stopped at step %d, want 1 (the first step's hook sees the limit spent)", flag, c.Step)
			}
			if !strings.Contains(out, "stopped after 1 steps at step 1 of 12 at "+flag+" 1ns") || !strings.Contains(out, "--resume") {
				t.Errorf("stop message lacks the limit or the resume hint:\n%s", out)
			}
			runCmd(t, trainCmd, "lattice", "--resume", dir)
			if c := lastCheckpoint(t, dir); c.Step != 12 {
				t.Fatalf("resumed run ended at step %d, want 12", c.Step)
			}
		})
	}
}

func TestTrainTimeLimitsRejectNegative(t *testing.T) {
	var out, errb bytes.Buffer
	err := runTrain(small(filepath.Join(t.TempDir(), "run"), "--steps", "5", "--cpu-limit", "-1m"), &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "--cpu-limit") || !strings.Contains(err.Error(), "≥ 0") {
		t.Fatalf("negative --cpu-limit: got %v, want an error naming the flag", err)
	}
}
