package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"rgflow/checkpoints"
	"rgflow/datasets/images"
	"rgflow/layers"
	"rgflow/losses"
	"rgflow/metrics"
	"rgflow/models"
	"rgflow/models/flowmc"
)

// imageRun is everything an image run needs, saved as config.json and in every checkpoint.
type imageRun struct {
	Kind  string        `json:"kind"`
	Data  imageData     `json:"data"`
	Model models.Config `json:"model"`
	Train trainSpec     `json:"train"`
}

// imageData says where the images come from and how they are prepared.
type imageData struct {
	Spec     string `json:"spec"`
	Size     int    `json:"size"`
	Channels int    `json:"channels"`
	Flip     bool   `json:"flip"`
	Limit    int    `json:"limit,omitempty"`
	EvalN    int    `json:"eval_n"`
	// RealH and RealW are the data's own image size inside the model's canvas (28×28 for Fashion-MNIST in
	// 32×32), recorded by training; sample and eval crop to it. 0 in runs made before they were recorded.
	RealH int `json:"real_h,omitempty"`
	RealW int `json:"real_w,omitempty"`
}

func defaultImageRun() imageRun {
	return imageRun{
		Kind:  "images",
		Data:  imageData{Spec: "synthetic", Size: 32, EvalN: 1000},
		Model: models.Config{Preset: "rgflow-small"},
		Train: trainSpec{Steps: 300, Batch: 32, LR: 1e-3, Schedule: "cosine", Warmup: -1, FinalLR: 1e-5, Clip: 100,
			Seed: 1, Dtype: "float32", LogEvery: 50, CheckpointEvery: 100, Keep: 3},
	}
}

const imagesUsage = `usage: rgflow train images --data SPEC [flags]
       rgflow train images --resume runs/NAME [flags that override the saved ones]

Trains an RG-Flow model on images by maximum likelihood (dequantisation, logit, bits/dim) and
reports bits/dim on held-out images: the code length of the whole image per real pixel value (28×28
images padded to 32×32 count 784 values, not 1024), and beside it the figure per padded-canvas value.
SPEC is fashion-mnist[:DIR] | mnist-idx:DIR | mnist-json:DIR | cifar10:DIR | folder:DIR |
celeba:DIR[:SIZE] (img_align_celeba/*.jpg and list_eval_partition.txt, e.g. from rgflow make-data faces) |
synthetic[:N] (the default: generated multiscale images, no data needed).

flags:
`

func (f *imageFlags) flagSet() *flag.FlagSet   { return f.fs }
func (f *imageFlags) sessionOf() *sessionFlags { return &f.session }

type imageFlags struct {
	fs      *flag.FlagSet
	session sessionFlags
	model   modelFlags
	run     *imageRun
}

func newImageFlags(run *imageRun, stderr io.Writer) *imageFlags {
	f := &imageFlags{fs: flag.NewFlagSet("train images", flag.ContinueOnError), run: run}
	fs := f.fs
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), imagesUsage); fs.PrintDefaults() }
	d := &run.Data
	fs.StringVar(&d.Spec, "data", d.Spec, "image data set (see above)")
	fs.IntVar(&d.Size, "size", d.Size, "model side in pixels, a power of two (28×28 images are padded to 32)")
	fs.IntVar(&d.Channels, "channels", d.Channels, "1 (grey) or 3 (RGB); 0 keeps the data's own")
	fs.BoolVar(&d.Flip, "flip", d.Flip, "random horizontal flips")
	fs.IntVar(&d.Limit, "limit", d.Limit, "use at most this many training images (0: all)")
	fs.IntVar(&d.EvalN, "eval-n", d.EvalN, "test images evaluated at the end (0: none)")
	f.session.register(fs)
	f.model.register(fs, run.Model.Preset)
	registerTrainFlags(fs, &run.Train)
	return f
}

func parseImageRun(args []string, stderr io.Writer) (*imageRun, *imageFlags, error) {
	run, f, err := parseTrainRun("train images", "images", args, stderr, defaultImageRun, newImageFlags, func(r *imageRun) *trainSpec { return &r.Train })
	if err != nil {
		return nil, nil, err
	}
	if f.session.resume != "" {
		f.session.note = run.Train.resolveHorizon(f.session.reschedule)
	}
	if run.Data.EvalN < 0 || run.Data.Limit < 0 {
		return nil, nil, fmt.Errorf("train images: --eval-n=%d --limit=%d, want ≥ 0", run.Data.EvalN, run.Data.Limit)
	}
	return run, f, run.Train.validate("train images")
}

// load reads the run's data: the training and test splits.
func (d imageData) load(seed uint64, cmd string) (train, test *images.Dataset, err error) {
	spec, err := images.ParseSpec(d.Spec)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	train, test, err = spec.Load(images.LoadOptions{Size: d.Size, Channels: d.Channels, Seed: seed, Limit: d.Limit})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return train, test, nil
}

// split loads the run's data (with --data overriding the run's spec when given) and returns the named split,
// "train" or "test"; cmd prefixes the errors.
func (d imageData) split(override, name string, seed uint64, cmd string) (*images.Dataset, error) {
	if override != "" {
		d.Spec = override
	}
	if name != "train" && name != "test" {
		return nil, fmt.Errorf("%s: --split %q, want test or train", cmd, name)
	}
	train, test, err := d.load(seed, cmd)
	if err != nil {
		return nil, err
	}
	if name == "train" {
		return train, nil
	}
	if test == nil {
		return nil, fmt.Errorf("%s: %s has no test split", cmd, d.Spec)
	}
	return test, nil
}

func runTrainImages(args []string, stdout, stderr io.Writer) error {
	run, f, err := parseImageRun(args, stderr)
	if err != nil {
		return err
	}
	trainSet, testSet, err := run.Data.load(run.Train.Seed, "train images")
	if err != nil {
		return err
	}
	run.Data.RealH, run.Data.RealW = trainSet.RealShape()
	set := setFlags(f.fs)
	rebuild := f.session.resume == "" || set["preset"] || set["size"] || set["channels"] || set["data"]
	if err := f.model.apply(&run.Model, set, rebuild, trainSet.Side(), trainSet.Channels(), run.Train.Seed, "train images"); err != nil {
		return err
	}
	flow, store, err := run.imageModel("train images")
	if err != nil {
		return err
	}
	if run.Model.InputActNorm && f.session.resume == "" {
		if err := initInputActNorm(flow, store, trainSet, run.Train.Seed); err != nil {
			return err
		}
	}
	obj := &losses.NLL{Flow: flow, Data: trainSet, Flip: run.Data.Flip, DataSeed: run.Train.Seed}
	out := f.session.dir(fmt.Sprintf("images-%s", strings.SplitN(run.Data.Spec, ":", 2)[0]))
	f.session.checkRoundTrip(run.Model, flow, store, run.Train.Seed, stderr)
	what := fmt.Sprintf("%s (%s engine) on %d %s images %d×%d×%d (%s", run.Model.Preset, run.Model.EngineName(), trainSet.Len(), run.Data.Spec,
		trainSet.Channels(), trainSet.Side(), trainSet.Side(), flow.Hier.String())
	tr, done, err := runTraining("train images", run, run.Train, f.session, out, store, obj, what, stdout, stderr)
	if err != nil || !done {
		return err
	}
	defer tr.Close()
	if run.Data.EvalN == 0 || testSet == nil {
		return nil
	}
	if err := useEMA(tr, store, stdout); err != nil {
		return err
	}
	ev, n, err := evalImages(flow, store, testSet, run.Data.EvalN, f.session.workers, run.Train.Seed+1)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "test bits/dim on %d held-out images: %s\n", n, bitsLine(ev))
	printNext(stdout,
		[]string{"sample", out, "--n", "64", "--temperature", "0.8", "--png", "grid.png"},
		[]string{"eval", out, "--n", "10000"},
		[]string{"latents", out, "--n", "100", "--out", "latents.npz"})
	return nil
}

// initInputActNorm sets the input ActNorm so that up to 1024 training images (dequantised, logit) come out
// with zero mean and unit variance at every site (data-dependent initialisation).
func initInputActNorm(flow *models.Flow, store *layers.Store, data *images.Dataset, seed uint64) error {
	if err := bindFlow(flow, store); err != nil {
		return err
	}
	n := min(1024, data.Len())
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	dim := data.Dim()
	pix := make([]uint8, n*dim)
	if err := data.Batch(pix, idx, nil); err != nil {
		return err
	}
	y := make([]float64, n*dim)
	if err := (losses.Preprocess{}).Apply(rand.New(rand.NewPCG(seed, 0xac7)), pix, dim, y, make([]float64, n)); err != nil {
		return err
	}
	samples := make([][]float64, n)
	for i := range samples {
		samples[i] = y[i*dim : (i+1)*dim]
	}
	return layers.ActNorm{PerSite: true}.InitFromData(store, models.InputActNormName, samples)
}

// imageModel builds an image run's flow and (empty) store.
func (r *imageRun) imageModel(cmd string) (*models.Flow, *layers.Store, error) {
	flow, err := models.Build(r.Model)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	dt, err := parseDtype(r.Train.Dtype)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return flow, layers.NewStore(dt, r.Train.Seed), nil
}

// bitsLine is the bits/dim of an evaluation for people: per real pixel, and per canvas value when the
// images were padded.
func bitsLine(ev losses.Eval) string {
	s := fmt.Sprintf("%.4f ± %.4f", ev.BitsPerDim, ev.BitsPerDimErr)
	if ev.RealDim != ev.Dim {
		s += fmt.Sprintf(" over the %d real pixel values (%.4f ± %.4f over the %d-value padded canvas)",
			ev.RealDim, ev.BitsPerDimCanvas, ev.BitsPerDimCanvasErr, ev.Dim)
	}
	return s
}

// evalImages measures bits/dim on the first n images of data (all when n ≤ 0 or larger than the split).
func evalImages(flow *models.Flow, store *layers.Store, data *images.Dataset, n, workers int, seed uint64) (losses.Eval, int, error) {
	if n > 0 && n < data.Len() {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		sub, err := data.Subset(idx)
		if err != nil {
			return losses.Eval{}, 0, err
		}
		data = sub
	}
	ev, err := losses.EvalBitsPerDimWorkers(flow, store, data, 100, workers, losses.Preprocess{}, rand.New(rand.NewPCG(seed, 0xe7a1)))
	return ev, data.Len(), err
}

// loadImageRun rebuilds an image run's flow and weights from its directory.
// A non-empty wc.engine replaces the saved engine.
func loadImageRun(dir, cmd string, wc weightChoice) (*imageRun, *models.Flow, *layers.Store, int64, error) {
	var run imageRun
	if err := loadRunConfig(dir, "images", &run, cmd); err != nil {
		return nil, nil, nil, 0, err
	}
	if err := overrideEngine(&run.Model, wc.engine, cmd); err != nil {
		return nil, nil, nil, 0, err
	}
	flow, store, err := run.imageModel(cmd)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	step, err := loadWeights(flow, store, dir, cmd, wc)
	return &run, flow, store, step, err
}

// realShape is the data's own image size inside the model's L×L canvas. Runs that did not record it load
// their training data to learn it; if that fails too, the canvas is taken as the image (with a note).
func (r *imageRun) realShape(L int, cmd string, stderr io.Writer) (h, w int) {
	if r.Data.RealH > 0 && r.Data.RealW > 0 {
		return r.Data.RealH, r.Data.RealW
	}
	train, _, err := r.Data.load(r.Train.Seed, cmd)
	if err != nil {
		fmt.Fprintf(stderr, "%s: the run does not record its image size and its data cannot be read (%v): using the %d×%d canvas\n", cmd, err, L, L)
		return L, L
	}
	return train.RealShape()
}

// pixelsToUnit maps uint8 pixels to intensities in [0, 1].
func pixelsToUnit(pix []uint8) []float64 {
	out := make([]float64, len(pix))
	for i, v := range pix {
		out[i] = float64(v) / 255
	}
	return out
}

// imageSWD is the multi-scale sliced Wasserstein distance (package metrics, default settings, seeded by
// seed) between n samples of the flow at temperature 1 and the first n images of data, both cropped to the
// data's own size.
func imageSWD(flow *models.Flow, store *layers.Store, data *images.Dataset, n, workers int, seed uint64) (metrics.SWDResult, error) {
	n = min(n, data.Len())
	c, L := flow.Channels, flow.L
	if data.Side() != L || data.Channels() != c {
		return metrics.SWDResult{}, fmt.Errorf("swd: data are %d×%d×%d, the model %d×%d×%d", data.Channels(), data.Side(), data.Side(), c, L, L)
	}
	h, w := data.RealShape()
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	real := make([]uint8, n*data.Dim())
	if err := data.Batch(real, idx, nil); err != nil {
		return metrics.SWDResult{}, err
	}
	d, err := flowmc.Sample(flow, store, n, flowmc.Options{Workers: workers}, rand.New(rand.NewPCG(seed, 0x5dd)))
	if err != nil {
		return metrics.SWDResult{}, fmt.Errorf("swd: sampling: %w", err)
	}
	gen := make([]uint8, len(d.X))
	losses.Preprocess{}.Pixels(gen, d.X)
	if real, err = images.CropPad(real, n, c, L, h, w); err != nil {
		return metrics.SWDResult{}, err
	}
	if gen, err = images.CropPad(gen, n, c, L, h, w); err != nil {
		return metrics.SWDResult{}, err
	}
	o := metrics.DefaultSWDOptions()
	o.Seed = seed
	res, err := metrics.SWD(pixelsToUnit(gen), n, pixelsToUnit(real), n, c, h, w, o)
	if err != nil {
		return metrics.SWDResult{}, fmt.Errorf("swd: %w", err)
	}
	return res, nil
}

// imageEvalReport is the output of rgflow eval on an image run: bits_per_dim is the code length of the
// canvas per real pixel value, bits_per_dim_canvas per canvas value (see package losses); they differ only
// for padded images.
type imageEvalReport struct {
	Step             int64      `json:"step"`
	Split            string     `json:"split"`
	BitsPerDim       [2]jsonNum `json:"bits_per_dim"`
	BitsPerDimCanvas [2]jsonNum `json:"bits_per_dim_canvas"`
	N                int        `json:"n"`
	// SWD is the multi-scale sliced Wasserstein distance ×10³ between N samples (T = 1) and the N
	// images, with its standard error over repeats; by level (finest first) in SWDPerLevel at the sides in
	// SWDResolutions. Absent with --swd=false.
	SWD            *[2]jsonNum `json:"swd,omitempty"`
	SWDPerLevel    []jsonNum   `json:"swd_per_level,omitempty"`
	SWDResolutions []int       `json:"swd_resolutions,omitempty"`
}

// evalImageFlags are the flags of rgflow eval on an image run.
type evalImageFlags struct {
	fs          *flag.FlagSet
	data, split string
	n           int
	seed        uint64
	asJSON, swd bool
	wc          weightChoice
	workers     int
}

func newEvalImageFlags(stderr io.Writer) *evalImageFlags {
	f := &evalImageFlags{fs: flag.NewFlagSet("eval", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(stderr)
	fs.StringVar(&f.data, "data", "", "image data set (default: the run's)")
	fs.StringVar(&f.split, "split", "test", "test or train")
	fs.IntVar(&f.n, "n", 1000, "images to evaluate (0: the whole split)")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the dequantisation noise")
	fs.BoolVar(&f.asJSON, "json", false, "print one JSON object")
	fs.BoolVar(&f.swd, "swd", true, "also the sliced Wasserstein distance between n samples (T=1) and the n images (7×7 patches, pyramid to 16×16, 512 directions in 4 repeats; seeded by --seed)")
	f.wc.register(fs, stderr)
	registerWorkers(fs, &f.workers, "goroutines encoding batches of 100 images (the result does not depend on it)")
	return f
}

func runEvalImages(dir string, args []string, stdout, stderr io.Writer) error {
	f := newEvalImageFlags(stderr)
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("eval: unexpected argument %q (the run directory comes first, then flags)", f.fs.Arg(0))
	}
	if f.n < 0 {
		return fmt.Errorf("eval: --n=%d, want ≥ 0 (0: the whole split)", f.n)
	}
	if err := checkWorkers("eval", f.workers); err != nil {
		return err
	}
	data, split, n, seed, asJSON := &f.data, &f.split, &f.n, &f.seed, &f.asJSON
	run, flow, store, step, err := loadImageRun(dir, "eval", f.wc)
	if err != nil {
		return err
	}
	set, err := run.Data.split(*data, *split, run.Train.Seed, "eval")
	if err != nil {
		return err
	}
	ev, count, err := evalImages(flow, store, set, *n, f.workers, *seed)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	rep := imageEvalReport{Step: step, Split: *split, N: count,
		BitsPerDim:       [2]jsonNum{jsonNum(ev.BitsPerDim), jsonNum(ev.BitsPerDimErr)},
		BitsPerDimCanvas: [2]jsonNum{jsonNum(ev.BitsPerDimCanvas), jsonNum(ev.BitsPerDimCanvasErr)}}
	var swdLine string
	if f.swd {
		sw, err := imageSWD(flow, store, set, count, f.workers, *seed)
		if err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		rep.SWD = &[2]jsonNum{jsonNum(sw.Value), jsonNum(sw.Err)}
		for _, v := range sw.PerLevel {
			rep.SWDPerLevel = append(rep.SWDPerLevel, jsonNum(v))
		}
		rep.SWDResolutions = sw.Resolutions
		swdLine = fmt.Sprintf("; SWD×10³ %.2f ± %.2f (levels %v: %.2f)", sw.Value, sw.Err, sw.Resolutions, sw.PerLevel)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	fmt.Fprintf(stdout, "step %d, %s split, %d images: bits/dim %s%s\n", step, *split, count, bitsLine(ev), swdLine)
	return nil
}

// parseTemperatures reads "0.2,0.8,0.8,0.8" (one per RG level).
func parseTemperatures(s string, levels int) ([]float64, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) != levels {
		return nil, fmt.Errorf("--level-temperatures has %d values, the model has %d RG levels", len(parts), levels)
	}
	out := make([]float64, len(parts))
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || !(v > 0) {
			return nil, fmt.Errorf("--level-temperatures: %q is not a positive number", p)
		}
		out[i] = v
	}
	return out, nil
}

// sampleImageFlags are the flags of rgflow sample on an image run.
type sampleImageFlags struct {
	fs                   *flag.FlagSet
	n, zoom              int
	temp                 float64
	levelT, pngPath, out string
	seed                 uint64
	wc                   weightChoice
	workers              int
}

func newSampleImageFlags(stderr io.Writer) *sampleImageFlags {
	f := &sampleImageFlags{fs: flag.NewFlagSet("sample", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(stderr)
	fs.IntVar(&f.n, "n", 64, "number of samples")
	fs.Float64Var(&f.temp, "temperature", 1, "prior temperature T (every level)")
	fs.StringVar(&f.levelT, "level-temperatures", "", "temperature per RG level, finest first, e.g. 0.2,0.8,0.8,0.8")
	fs.StringVar(&f.pngPath, "png", "", "write the samples as a PNG grid")
	fs.IntVar(&f.zoom, "zoom", 1, "enlarge every pixel of the PNG grid to zoom×zoom")
	fs.StringVar(&f.out, "out", "", "write x (logit space), pixels and logq as .npz")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed")
	f.wc.register(fs, stderr)
	registerWorkers(fs, &f.workers, "goroutines drawing batches of up to 256 images (the samples do not depend on it)")
	return f
}

func runSampleImages(dir string, args []string, stdout, stderr io.Writer) error {
	f := newSampleImageFlags(stderr)
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("sample: unexpected argument %q (the run directory comes first, then flags)", f.fs.Arg(0))
	}
	n, temp, levelT, pngPath, zoom, out, seed := &f.n, &f.temp, &f.levelT, &f.pngPath, &f.zoom, &f.out, &f.seed
	if *n < 1 || !(*temp > 0) || *zoom < 1 || *zoom > 16 {
		return fmt.Errorf("sample: --n=%d --temperature=%v --zoom=%d, want n ≥ 1, T > 0, 1 ≤ zoom ≤ 16", *n, *temp, *zoom)
	}
	if *pngPath == "" && *out == "" {
		return errors.New("sample: say where to write: --png grid.png and/or --out samples.npz")
	}
	if err := checkWorkers("sample", f.workers); err != nil {
		return err
	}
	run, flow, store, step, err := loadImageRun(dir, "sample", f.wc)
	if err != nil {
		return err
	}
	lt, err := parseTemperatures(*levelT, flow.Hier.Levels())
	if err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	temps := models.Temperatures{T: *temp, LevelT: lt, Hier: flow.Hier}
	if run.Model.Prior == "laplace" {
		flow.Prior = models.Laplace{Temperatures: temps}
	} else {
		flow.Prior = models.Gaussian{Temperatures: temps}
	}
	d, err := flowmc.Sample(flow, store, *n, flowmc.Options{Workers: f.workers}, rand.New(rand.NewPCG(*seed, 0x5a3e)))
	if err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	y, logq := d.X, d.LogQ
	pix := make([]uint8, len(y))
	losses.Preprocess{}.Pixels(pix, y)
	c, L := flow.Channels, flow.L
	if *pngPath != "" {
		if err := writeGrid(*pngPath, pix, *n, c, L, *zoom); err != nil {
			return fmt.Errorf("sample: %w", err)
		}
	}
	if *out != "" {
		// pixels: the images at the data's own size (the canvas's padding cut off); x stays on the canvas.
		h, w := run.realShape(L, "sample", stderr)
		real, err := images.CropPad(pix, *n, c, L, h, w)
		if err != nil {
			return fmt.Errorf("sample: %w", err)
		}
		if err := checkpoints.WriteNPZ(*out, []checkpoints.Array{
			{Name: "x", Shape: []int{*n, c, L, L}, Data: y},
			{Name: "pixels", Shape: []int{*n, c, h, w}, Data: real},
			{Name: "logq", Shape: []int{*n}, Data: logq},
		}); err != nil {
			return fmt.Errorf("sample: %w", err)
		}
	}
	fmt.Fprintf(stdout, "sampled %d images from %s (step %d) at T=%g %v → %s %s\n", *n, dir, step, *temp, lt, *pngPath, *out)
	return nil
}

// writeGrid writes n images (C×L×L uint8, C = 1 or 3) as a near-square grid with 1-pixel gaps, every pixel
// enlarged to zoom×zoom, atomically.
func writeGrid(path string, pix []uint8, n, c, L, zoom int) error {
	cols := 1
	for cols*cols < n {
		cols++
	}
	return writeGridCols(path, pix, n, cols, c, L, zoom)
}

// writeGridCols is writeGrid with a given number of columns.
func writeGridCols(path string, pix []uint8, n, cols, c, L, zoom int) error {
	rows := (n + cols - 1) / cols
	cell := L*zoom + 1
	img := image.NewRGBA(image.Rect(0, 0, cols*cell+1, rows*cell+1))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	for k := 0; k < n; k++ {
		ox, oy := 1+(k%cols)*cell, 1+(k/cols)*cell
		base := k * c * L * L
		for i := 0; i < L; i++ {
			for j := 0; j < L; j++ {
				var col color.RGBA
				if c == 1 {
					v := pix[base+i*L+j]
					col = color.RGBA{v, v, v, 255}
				} else {
					col = color.RGBA{pix[base+i*L+j], pix[base+L*L+i*L+j], pix[base+2*L*L+i*L+j], 255}
				}
				for a := 0; a < zoom; a++ {
					for b := 0; b < zoom; b++ {
						img.SetRGBA(ox+j*zoom+b, oy+i*zoom+a, col)
					}
				}
			}
		}
	}
	return checkpoints.WriteFileAtomic(path, func(w io.Writer) error { return png.Encode(w, img) })
}

// latentsImageFlags are the flags of rgflow latents on an image run.
type latentsImageFlags struct {
	fs               *flag.FlagSet
	data, split, out string
	n, workers       int
	wc               weightChoice
}

func newLatentsImageFlags(stderr io.Writer) *latentsImageFlags {
	f := &latentsImageFlags{fs: flag.NewFlagSet("latents", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(stderr)
	fs.StringVar(&f.data, "data", "", "image data set (default: the run's)")
	fs.StringVar(&f.split, "split", "test", "test or train")
	fs.IntVar(&f.n, "n", 100, "images to encode (the first n of the split)")
	fs.StringVar(&f.out, "out", "latents.npz", "output .npz file")
	f.wc.register(fs, stderr)
	registerWorkers(fs, &f.workers, "goroutines encoding batches of up to 256 images")
	return f
}

func runLatentsImages(dir string, args []string, stdout, stderr io.Writer) error {
	f := newLatentsImageFlags(stderr)
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("latents: unexpected argument %q (the run directory comes first, then flags)", f.fs.Arg(0))
	}
	data, split, n, out := &f.data, &f.split, &f.n, &f.out
	run, flow, store, step, err := loadImageRun(dir, "latents", f.wc)
	if err != nil {
		return err
	}
	set, err := run.Data.split(*data, *split, run.Train.Seed, "latents")
	if err != nil {
		return err
	}
	count := min(*n, set.Len())
	if count < 1 {
		return fmt.Errorf("latents: --n=%d, want ≥ 1", *n)
	}
	if err := checkWorkers("latents", f.workers); err != nil {
		return err
	}
	idx := make([]int, count)
	for i := range idx {
		idx[i] = i
	}
	dim := set.Dim()
	pix := make([]uint8, count*dim)
	if err := set.Batch(pix, idx, nil); err != nil {
		return err
	}
	// Dequantise at the bin centres (u = 0.5) so that the latents of an image are reproducible.
	y := make([]float64, len(pix))
	if err := (losses.Preprocess{Fixed: true, U: 0.5}).Apply(nil, pix, dim, y, make([]float64, count)); err != nil {
		return err
	}
	z, err := encodeImages(flow, store, y, count, 256, f.workers)
	if err != nil {
		return fmt.Errorf("latents: %w", err)
	}
	c, L := flow.Channels, flow.L
	levels, err := flow.Hier.SplitLevels(z, count, c)
	if err != nil {
		return err
	}
	counts := flow.Hier.LevelCounts()
	arrays := []checkpoints.Array{
		{Name: "z", Shape: []int{count, c, L, L}, Data: z},
		{Name: "x", Shape: []int{count, c, L, L}, Data: pix},
	}
	for l, v := range levels {
		arrays = append(arrays, checkpoints.Array{Name: fmt.Sprintf("level%d", l), Shape: []int{count, c, counts[l]}, Data: v})
	}
	arrays = append(arrays, levelMapArray(flow.Hier))
	if err := checkpoints.WriteNPZ(*out, arrays); err != nil {
		return fmt.Errorf("latents: %w", err)
	}
	fmt.Fprintf(stdout, "wrote latents of %d %s images of %s (step %d) to %s: %d levels with %v latents per channel, z, x, levels\n",
		count, *split, dir, step, *out, len(levels), counts)
	return nil
}

// levelMapArray is the RG level of every site as an (L, L) int64 array.
func levelMapArray(h layers.Hierarchy) checkpoints.Array {
	lm := h.LevelMap()
	lv := make([]int64, len(lm))
	for i, v := range lm {
		lv[i] = int64(v)
	}
	return checkpoints.Array{Name: "levels", Shape: []int{h.L, h.L}, Data: lv}
}

// encodeImages returns the latents z = F(y) of count preprocessed images y, encoded in batches of up to
// maxBatch (the last one padded with copies of image 0) on workers goroutines, each with its own Encoder;
// every image's latents land in their own place, so the result does not depend on workers.
func encodeImages(flow *models.Flow, store *layers.Store, y []float64, count, maxBatch, workers int) ([]float64, error) {
	batch := min(count, maxBatch)
	dim := len(y) / count
	chunks := (count + batch - 1) / batch
	nw := max(1, min(workers, chunks))
	encs := make([]*models.Encoder, nw)
	for w := range encs { // built one after the other; forward graphs then only read the weights
		enc, err := models.NewEncoder(flow, store, batch)
		if err != nil {
			return nil, err
		}
		defer enc.Close()
		encs[w] = enc
	}
	z := make([]float64, len(y))
	errs := make([]error, nw)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w, enc := range encs {
		wg.Go(func() {
			in := make([]float64, batch*dim)
			for k := int(next.Add(1) - 1); k < chunks; k = int(next.Add(1) - 1) {
				start := k * batch
				valid := min(batch, count-start)
				copy(in, y[start*dim:(start+valid)*dim])
				for i := valid; i < batch; i++ {
					copy(in[i*dim:(i+1)*dim], y[:dim])
				}
				out, _, err := enc.Encode(in)
				if err != nil {
					errs[w] = fmt.Errorf("images %d…%d: %w", start, start+valid-1, err)
					return
				}
				copy(z[start*dim:], out[:valid*dim])
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return z, nil
}
