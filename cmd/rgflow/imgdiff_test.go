package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"rgflow/checkpoints"
)

// TestImgDiffTrainSampleEvalResume trains a tiny image score on synthetic images, checks that a run
// stopped and resumed ends with the same weights as one run straight through (its samples and its
// likelihoods are the same bit for bit; the data order is part of the saved state), on one worker and on
// two, and that sample and eval write what they promise.
func TestImgDiffTrainSampleEvalResume(t *testing.T) {
	dir := t.TempDir()
	for _, w := range []string{"1", "2"} {
		common := []string{"train", "diffusion", "images", "--data", "synthetic:40", "--size", "16", "--process", "heat",
			"--steps", "4", "--batch", "4", "--log-every", "1", "--checkpoint-every", "2", "--workers", w}
		a, b := filepath.Join(dir, "a"+w), filepath.Join(dir, "b"+w)
		runOK(t, append(common, "--out", a)...)
		runOK(t, append(common, "--out", b, "--stop-after", "3")...)
		runOK(t, "train", "diffusion", "images", "--resume", b, "--workers", w) // another count agrees only to rounding
		npz := func(run string) []byte {
			p := filepath.Join(dir, filepath.Base(run)+".npz")
			runOK(t, "sample", run, "--n", "3", "--sampler", "ode", "--nfe", "8", "--out", p)
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}
		if !bytes.Equal(npz(a), npz(b)) {
			t.Errorf("workers %s: the resumed run's samples differ from the straight run's", w)
		}
		ev := func(run string) imgDiffEvalReport {
			out := runOK(t, "eval", run, "--n", "2", "--nfe", "8", "--swd-n", "0", "--json")
			var r imgDiffEvalReport
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("eval --json: %v\n%s", err, out)
			}
			return r
		}
		ra, rb := ev(a), ev(b)
		if ra.BitsPerDim != rb.BitsPerDim || ra.Step != 4 || rb.Step != 4 {
			t.Errorf("workers %s: bits/dim %v (step %d) straight, %v (step %d) resumed", w, ra.BitsPerDim, ra.Step, rb.BitsPerDim, rb.Step)
		}
	}
	a := filepath.Join(dir, "a1")
	p := filepath.Join(dir, "s.npz")
	runOK(t, "sample", a, "--n", "5", "--nfe", "4", "--png", filepath.Join(dir, "g.png"), "--out", p)
	arrs, err := checkpoints.ReadNPZ(p)
	if err != nil || len(arrs) != 1 || arrs[0].Name != "pixels" {
		t.Fatalf("sample --out: %v %v", arrs, err)
	}
	if px, ok := arrs[0].Data.([]uint8); !ok || len(px) != 5*3*16*16 || !equalInts(arrs[0].Shape, []int{5, 3, 16, 16}) {
		t.Errorf("pixels: %T shape %v, want uint8 (5, 3, 16, 16)", arrs[0].Data, arrs[0].Shape)
	}
	if st, err := os.Stat(filepath.Join(dir, "g.png")); err != nil || st.Size() == 0 {
		t.Errorf("--png: %v", err)
	}
	out := runOK(t, "eval", a, "--n", "2", "--nfe", "4", "--swd-n", "8", "--sample-nfe", "2", "--roundtrip", "2,4", "--json")
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"bits_per_dim", "n", "nfe", "swd", "roundtrip"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("eval --json has no %q: %s", k, out)
		}
	}

	bad := map[string][]string{
		"--process":      {"train", "diffusion", "images", "--data", "synthetic:8", "--size", "16", "--process", "polchinski", "--out", filepath.Join(dir, "x1")},
		"--schedule":     {"train", "diffusion", "images", "--data", "synthetic:8", "--size", "16", "--schedule", "quadratic", "--out", filepath.Join(dir, "x2")},
		"--preset":       {"train", "diffusion", "images", "--data", "synthetic:8", "--size", "16", "--preset", "unet-huge", "--out", filepath.Join(dir, "x3")},
		"cannot change":  {"train", "diffusion", "images", "--resume", a, "--process", "vp"},
		"--sampler":      {"sample", a, "--sampler", "ddim"},
		"--nfe":          {"sample", a, "--sampler", "ode", "--nfe", "3"},
		"--split":        {"eval", a, "--split", "valid"},
		"--t-min":        {"train", "diffusion", "images", "--data", "synthetic:8", "--size", "16", "--t-min", "0", "--out", filepath.Join(dir, "x4")},
		"divisible by 4": {"train", "diffusion", "images", "--data", "synthetic:8", "--size", "2", "--out", filepath.Join(dir, "x5")},
	}
	for want, args := range bad {
		err := run(args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("rgflow %s: error %v, want one containing %q", strings.Join(args, " "), err, want)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
