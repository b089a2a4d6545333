package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"rgflow/checkpoints"
)

func smallImages(out string, extra ...string) []string {
	return append([]string{"images", "--data", "synthetic:96", "--preset", "rgflow-tiny", "--batch", "8",
		"--log-every", "2", "--checkpoint-every", "4", "--eval-n", "0", "--out", out}, extra...)
}

// Image training resumes bit for bit (weights, optimiser, and the data order, which the NLL objective keeps
// in the checkpoint).
func TestTrainImagesResumeIsExact(t *testing.T) {
	tmp := t.TempDir()
	straight, split := filepath.Join(tmp, "straight"), filepath.Join(tmp, "split")
	runCmd(t, trainCmd, smallImages(straight, "--steps", "8")...)
	runCmd(t, trainCmd, smallImages(split, "--steps", "8", "--stop-after", "4")...)
	runCmd(t, trainCmd, "images", "--resume", split)
	a, b := lastCheckpoint(t, straight), lastCheckpoint(t, split)
	if a.Step != 8 || b.Step != 8 {
		t.Fatalf("steps %d and %d, want 8", a.Step, b.Step)
	}
	if !reflect.DeepEqual(a.Weights, b.Weights) || !reflect.DeepEqual(a.Optim, b.Optim) {
		t.Error("weights or optimiser state differ between the straight and the resumed run")
	}
	if a.Extra["objective/data_position"] != b.Extra["objective/data_position"] || a.Extra["objective/data_position"] == "" {
		t.Errorf("data positions %q and %q", a.Extra["objective/data_position"], b.Extra["objective/data_position"])
	}
}

func TestImagesEvalSampleLatents(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	runCmd(t, trainCmd, smallImages(dir, "--steps", "4")...)

	out := runCmd(t, func(a []string, o, e *bytes.Buffer) error { return runEval(a, o, e) }, dir, "--n", "9", "--json")
	var rep struct {
		BitsPerDim [2]float64 `json:"bits_per_dim"`
		N          int        `json:"n"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, out)
	}
	// 9.55 bits/dim is the identity at initialisation (every coupling the identity, Laplace prior; see
	// losses.NLL); 4 steps move it but not below 3.
	if rep.N != 9 || !(rep.BitsPerDim[0] > 3 && rep.BitsPerDim[0] < 20) || !(rep.BitsPerDim[1] > 0) {
		t.Errorf("eval: %+v", rep)
	}

	grid := filepath.Join(t.TempDir(), "g.png")
	samples := filepath.Join(t.TempDir(), "s.npz")
	runCmd(t, func(a []string, o, e *bytes.Buffer) error { return runSample(a, o, e) }, dir, "--n", "5",
		"--level-temperatures", "0.2,0.8,0.8,0.8", "--png", grid, "--out", samples)
	f, err := os.Open(grid)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// 5 samples → a 3×2 grid of 32×32 images with 1-pixel gaps.
	if b := img.Bounds(); b.Dx() != 3*33+1 || b.Dy() != 2*33+1 {
		t.Errorf("grid is %v", b)
	}
	arr, err := checkpoints.ReadNPZ(samples)
	if err != nil {
		t.Fatal(err)
	}
	if len(arr) != 3 || arr[0].Name != "x" || !reflect.DeepEqual(arr[0].Shape, []int{5, 3, 32, 32}) {
		t.Errorf("samples.npz: %v %v", arr[0].Name, arr[0].Shape)
	}

	lat := filepath.Join(t.TempDir(), "l.npz")
	runCmd(t, func(a []string, o, e *bytes.Buffer) error { return runLatents(a, o, e) }, dir, "--n", "4", "--out", lat)
	arr, err = checkpoints.ReadNPZ(lat)
	if err != nil {
		t.Fatal(err)
	}
	shapes := map[string][]int{}
	for _, a := range arr {
		shapes[a.Name] = a.Shape
	}
	want := map[string][]int{"z": {4, 3, 32, 32}, "x": {4, 3, 32, 32}, "level0": {4, 3, 768}, "level1": {4, 3, 192},
		"level2": {4, 3, 48}, "level3": {4, 3, 16}, "levels": {32, 32}}
	if !reflect.DeepEqual(shapes, want) {
		t.Errorf("latents arrays %v, want %v", shapes, want)
	}
}
