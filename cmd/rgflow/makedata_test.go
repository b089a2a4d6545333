package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"rgflow/checkpoints"
	"rgflow/losses"
	"rgflow/metrics"
	"rgflow/models/flowmc"
)

func makeDataCmd(args []string, out, errb *bytes.Buffer) error { return runMakeData(args, out, errb) }
func evalCmd(args []string, out, errb *bytes.Buffer) error     { return runEval(args, out, errb) }
func sampleCmd(args []string, out, errb *bytes.Buffer) error   { return runSample(args, out, errb) }

// The faces written by make-data read back through celeba:DIR into a flow run at 32×32 RGB, whose eval
// reports bits/dim and SWD and whose samples' pixels are 32×32.
func TestMakeDataFacesTrainEvalSample(t *testing.T) {
	tmp := t.TempDir()
	data, grid := filepath.Join(tmp, "faces"), filepath.Join(tmp, "faces.png")
	out := runCmd(t, makeDataCmd, "faces", "--n", "30", "--out", data, "--seed", "2", "--png", grid)
	if !strings.Contains(out, "24 train, 3 valid, 3 test") {
		t.Errorf("make-data output: %s", out)
	}
	f, err := os.Open(grid)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// 24 training faces at 32×32, zoom 2: a 5×5 grid of 65-pixel cells plus the outer gap.
	if b := img.Bounds(); b.Dx() != 5*65+1 || b.Dy() != 5*65+1 {
		t.Errorf("grid is %v", b)
	}

	run := filepath.Join(tmp, "run")
	runCmd(t, trainCmd, "images", "--data", "celeba:"+data, "--preset", "rgflow-tiny", "--batch", "4", "--steps", "2",
		"--log-every", "1", "--checkpoint-every", "2", "--eval-n", "0", "--out", run)
	out = runCmd(t, evalCmd, run, "--n", "3", "--json")
	var rep struct {
		BitsPerDim     [2]float64 `json:"bits_per_dim"`
		SWD            [2]float64 `json:"swd"`
		SWDResolutions []int      `json:"swd_resolutions"`
		N              int        `json:"n"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, out)
	}
	if rep.N != 3 || !(rep.BitsPerDim[0] > 0) || !(rep.SWD[0] > 0) || !(rep.SWD[1] >= 0) || !reflect.DeepEqual(rep.SWDResolutions, []int{32, 16}) {
		t.Errorf("eval on faces: %s", out)
	}
	npz := filepath.Join(tmp, "s.npz")
	runCmd(t, sampleCmd, run, "--n", "2", "--out", npz)
	arr, err := checkpoints.ReadNPZ(npz)
	if err != nil {
		t.Fatal(err)
	}
	if arr[1].Name != "pixels" || !reflect.DeepEqual(arr[1].Shape, []int{2, 3, 32, 32}) {
		t.Errorf("samples.npz %s %v, want pixels (2, 3, 32, 32)", arr[1].Name, arr[1].Shape)
	}

	var o, e bytes.Buffer
	for _, args := range [][]string{{}, {"cats"}, {"faces", "--n", "3"}, {"faces", "--n", "0", "--out", data}, {"faces", "--out", data, "extra"}} {
		if err := runMakeData(args, &o, &e); err == nil {
			t.Errorf("make-data %v: no error", args)
		}
	}
}

// The npz of an image flow run holds pixels on the data's own size: 28×28 Fashion-MNIST trained in a 32×32
// canvas comes back as (n, 1, 28, 28), the centre of the canvas pixels of x; also for a run whose config
// predates the recorded size (the size is then learnt from the data). eval's SWD is the distance between
// samples drawn with the evaluation's seed and the test images, both cut to 28×28 by hand here.
func TestImagePixelsUnpaddedAndSWD(t *testing.T) {
	const fm = "../../datasets/images/testdata/fashion-mnist-64"
	tmp := t.TempDir()
	run := filepath.Join(tmp, "run")
	runCmd(t, trainCmd, "images", "--data", "fashion-mnist:"+fm, "--preset", "rgflow-tiny", "--batch", "8",
		"--steps", "2", "--log-every", "1", "--checkpoint-every", "2", "--eval-n", "0", "--out", run)

	check := func(what string) {
		npz := filepath.Join(tmp, what+".npz")
		runCmd(t, sampleCmd, run, "--n", "3", "--out", npz)
		arr, err := checkpoints.ReadNPZ(npz)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]checkpoints.Array{}
		for _, a := range arr {
			got[a.Name] = a
		}
		x, pix := got["x"], got["pixels"]
		if !reflect.DeepEqual(x.Shape, []int{3, 1, 32, 32}) || !reflect.DeepEqual(pix.Shape, []int{3, 1, 28, 28}) {
			t.Fatalf("%s: x %v, pixels %v; want (3, 1, 32, 32) and (3, 1, 28, 28)", what, x.Shape, pix.Shape)
		}
		canvas := make([]uint8, 3*1024)
		losses.Preprocess{}.Pixels(canvas, x.Data.([]float64))
		p := pix.Data.([]uint8)
		for n := 0; n < 3; n++ {
			for i := 0; i < 28; i++ {
				for j := 0; j < 28; j++ {
					if p[n*784+i*28+j] != canvas[n*1024+(i+2)*32+j+2] {
						t.Fatalf("%s: sample %d pixel (%d, %d) is %d, the canvas has %d", what, n, i, j, p[n*784+i*28+j], canvas[n*1024+(i+2)*32+j+2])
					}
				}
			}
		}
	}
	check("recorded")

	cfgPath := filepath.Join(run, "config.json")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	d := cfg["data"].(map[string]any)
	if d["real_h"] != 28.0 || d["real_w"] != 28.0 {
		t.Fatalf("config.json data: %v, want real_h = real_w = 28", d)
	}
	delete(d, "real_h")
	delete(d, "real_w")
	raw, _ = json.Marshal(cfg)
	if err := os.WriteFile(cfgPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	check("old-config")

	out := runCmd(t, evalCmd, run, "--split", "train", "--n", "6", "--seed", "5", "--json")
	var rep struct {
		SWD            [2]float64 `json:"swd"`
		SWDPerLevel    []float64  `json:"swd_per_level"`
		SWDResolutions []int      `json:"swd_resolutions"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, out)
	}
	runCfg, flow, store, _, err := loadImageRun(run, "test", weightChoice{ema: true})
	if err != nil {
		t.Fatal(err)
	}
	train, _, err := runCfg.Data.load(runCfg.Train.Seed, "test")
	if err != nil {
		t.Fatal(err)
	}
	smp, err := flowmc.Sample(flow, store, 6, flowmc.Options{Workers: 1}, rand.New(rand.NewPCG(5, 0x5dd)))
	if err != nil {
		t.Fatal(err)
	}
	gen := make([]uint8, len(smp.X))
	losses.Preprocess{}.Pixels(gen, smp.X)
	a, b := make([]float64, 6*784), make([]float64, 6*784)
	for n := 0; n < 6; n++ {
		img := train.Images().Image(n)
		for k := 0; k < 784; k++ {
			a[n*784+k] = float64(gen[n*1024+(2+k/28)*32+2+k%28]) / 255
			b[n*784+k] = float64(img[(2+k/28)*32+2+k%28]) / 255
		}
	}
	o := metrics.DefaultSWDOptions()
	o.Seed = 5
	want, err := metrics.SWD(a, 6, b, 6, 1, 28, 28, o)
	if err != nil {
		t.Fatal(err)
	}
	// The same computation on the same numbers: equal up to JSON's shortest float formatting, which is exact.
	if rep.SWD[0] != want.Value || rep.SWD[1] != want.Err || !reflect.DeepEqual(rep.SWDResolutions, []int{28}) ||
		len(rep.SWDPerLevel) != 1 || math.IsNaN(rep.SWDPerLevel[0]) {
		t.Errorf("eval swd %v (levels %v at %v), direct %v ± %v", rep.SWD, rep.SWDPerLevel, rep.SWDResolutions, want.Value, want.Err)
	}
}
