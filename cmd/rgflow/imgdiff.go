package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/checkpoints"
	"rgflow/datasets/images"
	"rgflow/layers"
	"rgflow/losses"
	"rgflow/metrics"
	"rgflow/models/diffusion"
	"rgflow/train"
)

// imgDiffRun is a diffusion model on images: an ε-predicting U-Net trained by denoising score matching
// under an image process (vp, ve or the multiscale heat process), saved as config.json and in every
// checkpoint. The model acts on the images' real pixels (data padded to a power-of-two canvas by the
// loader, e.g. Fashion-MNIST 28 → 32, is cropped back), scaled to x = 2(p + u)/256 − 1 with uniform
// dequantisation noise u.
type imgDiffRun struct {
	Kind    string         `json:"kind"` // "imgdiff"
	Data    imageData      `json:"data"`
	Process imgProcessSpec `json:"process"`
	Preset  string         `json:"preset"`
	Net     layers.UNet    `json:"net"`
	// Shape is the model's (C, H, W): the data's real size.
	Shape [3]int `json:"shape"`
	// V0 is the training images' mean square per cosine mode coordinate (the network's input scale and
	// the start of the Gaussian prior at T).
	V0    []float64 `json:"v0"`
	TMin  float64   `json:"t_min"`
	Train trainSpec `json:"train"`
}

// imgProcessSpec selects the image process and its settings.
type imgProcessSpec struct {
	Name      string  `json:"name"`     // vp, ve, heat
	Schedule  string  `json:"schedule"` // linear, cosine (vp, heat)
	BetaMin   float64 `json:"beta_min"`
	BetaMax   float64 `json:"beta_max"`
	LogSNRMin float64 `json:"logsnr_min"`
	LogSNRMax float64 `json:"logsnr_max"`
	SigmaMin  float64 `json:"sigma_min"`
	SigmaMax  float64 `json:"sigma_max"`
	BlurSigma float64 `json:"blur_sigma"`
	BlurMin   float64 `json:"blur_min"`
}

func defaultImgDiffRun() imgDiffRun {
	return imgDiffRun{
		Kind: "imgdiff",
		Data: imageData{Spec: "synthetic", Size: 32, EvalN: 0},
		Process: imgProcessSpec{Name: "vp", Schedule: "cosine", BetaMin: 0.1, BetaMax: 20, LogSNRMin: -8, LogSNRMax: 12,
			SigmaMin: 0.002, SigmaMax: 50, BlurSigma: 20, BlurMin: 0.001},
		Preset: "unet-tiny",
		// t_min = 1e-3: noise std ≈ 0.01 (linear VP) to 0.003 (cosine), about one pixel level (2/256).
		TMin: 1e-3,
		Train: trainSpec{Steps: 1000, Batch: 32, LR: 2e-3, Schedule: "cosine", Warmup: -1, FinalLR: 1e-5, Clip: 1,
			Seed: 1, Dtype: "float32", LogEvery: 50, CheckpointEvery: 250, Keep: 3, EMADecay: 0.999},
	}
}

const imgDiffUsage = `usage: rgflow train diffusion images --data SPEC [flags]
       rgflow train diffusion images --resume runs/NAME [flags that override the saved ones]

Trains a score U-Net on images by denoising score matching (ε-prediction, exact transitions) under a
forward process: vp (variance preserving; --schedule linear β or cosine log-SNR), ve (variance
exploding) or heat (blurring diffusion: the VP schedule times a heat-equation decay of every cosine mode,
e^{−λ_k τ(t)}, high frequencies first). Images are modelled at their real size (a 28×28 data set padded
to 32 by the loader is cropped back), as x = 2(p + u)/256 − 1 with uniform dequantisation noise u.
SPEC is as for rgflow train images. Sample with rgflow sample RUN --sampler pc|ode|em; measure with
rgflow eval RUN (bits/dim by the probability-flow ODE, and SWD).

flags:
`

func (f *imgDiffFlags) flagSet() *flag.FlagSet   { return f.fs }
func (f *imgDiffFlags) sessionOf() *sessionFlags { return &f.session }

type imgDiffFlags struct {
	fs      *flag.FlagSet
	session sessionFlags
}

func newImgDiffFlags(run *imgDiffRun, stderr io.Writer) *imgDiffFlags {
	f := &imgDiffFlags{fs: flag.NewFlagSet("train diffusion images", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), imgDiffUsage); fs.PrintDefaults() }
	d := &run.Data
	fs.StringVar(&d.Spec, "data", d.Spec, "image data set: fashion-mnist[:DIR] | mnist-idx:DIR | mnist-json:DIR | cifar10:DIR | folder:DIR | synthetic[:N]")
	fs.IntVar(&d.Size, "size", d.Size, "canvas side the loader pads or resamples to (a power of two); the model uses the real pixels")
	fs.IntVar(&d.Channels, "channels", d.Channels, "1 (grey) or 3 (RGB); 0 keeps the data's own")
	fs.IntVar(&d.Limit, "limit", d.Limit, "use at most this many training images (0: all)")
	f.session.register(fs)
	// The shared training flags, with the learning-rate schedule renamed: --schedule is the noise schedule.
	tmp := flag.NewFlagSet("", flag.ContinueOnError)
	registerTrainFlags(tmp, &run.Train)
	tmp.VisitAll(func(fl *flag.Flag) {
		name := fl.Name
		if name == "schedule" {
			name = "lr-schedule"
		}
		fs.Var(fl.Value, name, fl.Usage)
	})
	p := &run.Process
	fs.StringVar(&p.Name, "process", p.Name, "forward process: vp, ve or heat")
	fs.StringVar(&p.Schedule, "schedule", p.Schedule, "vp and heat: noise schedule, linear (β_min…β_max) or cosine (log-SNR from --logsnr-max to --logsnr-min)")
	fs.Float64Var(&p.BetaMin, "beta-min", p.BetaMin, "linear schedule: β_min")
	fs.Float64Var(&p.BetaMax, "beta-max", p.BetaMax, "linear schedule: β_max")
	fs.Float64Var(&p.LogSNRMin, "logsnr-min", p.LogSNRMin, "cosine schedule: log-SNR at t = 1")
	fs.Float64Var(&p.LogSNRMax, "logsnr-max", p.LogSNRMax, "cosine schedule: log-SNR at t = 0")
	fs.Float64Var(&p.SigmaMin, "sigma-min", p.SigmaMin, "ve: σ_min")
	fs.Float64Var(&p.SigmaMax, "sigma-max", p.SigmaMax, "ve: σ_max")
	fs.Float64Var(&p.BlurSigma, "blur-sigma", p.BlurSigma, "heat: blur strength σ_B (heat time τ(1) = σ_B²/2 in pixel² units)")
	fs.Float64Var(&p.BlurMin, "blur-min", p.BlurMin, "heat: floor d_min of every mode's decay")
	fs.StringVar(&run.Preset, "preset", run.Preset, "score network: unet-tiny, unet-small or ddpm-cifar10")
	fs.Float64Var(&run.TMin, "t-min", run.TMin, "smallest time: training times are uniform in [t-min, 1]; sampling ends and likelihoods start there")
	return f
}

func parseImgDiffRun(args []string, stderr io.Writer) (*imgDiffRun, *imgDiffFlags, error) {
	const cmd = "train diffusion images"
	run, f, err := parseTrainRun(cmd, "imgdiff", args, stderr, defaultImgDiffRun, newImgDiffFlags, func(r *imgDiffRun) *trainSpec { return &r.Train })
	if err != nil {
		return nil, nil, err
	}
	if f.session.resume != "" {
		set := setFlags(f.fs)
		for _, n := range []string{"data", "size", "channels", "limit", "process", "schedule", "beta-min", "beta-max", "logsnr-min",
			"logsnr-max", "sigma-min", "sigma-max", "blur-sigma", "blur-min", "preset", "t-min", "seed", "dtype"} {
			if set[n] {
				return nil, nil, fmt.Errorf("%s: --%s cannot change when resuming (it changes the model, its process or its data)", cmd, n)
			}
		}
		f.session.note = run.Train.resolveHorizon(f.session.reschedule)
	}
	if err := run.Train.validate(cmd); err != nil {
		return nil, nil, err
	}
	if run.Data.Limit < 0 {
		return nil, nil, fmt.Errorf("%s: --limit=%d, want ≥ 0", cmd, run.Data.Limit)
	}
	if _, err := layers.UNetPreset(run.Preset, 1); err != nil {
		return nil, nil, fmt.Errorf("%s: --preset: %w", cmd, err)
	}
	return run, f, nil
}

// process builds the run's forward process on its image shape.
func (r *imgDiffRun) process(cmd string) (*diffusion.ImageProcess, error) {
	b, err := diffusion.NewImageBasis(r.Shape[0], r.Shape[1], r.Shape[2])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	s := r.Process
	if s.Name != "vp" && s.Name != "ve" && s.Name != "heat" {
		return nil, fmt.Errorf("%s: --process %q, want vp, ve or heat", cmd, s.Name)
	}
	p, err := diffusion.DefaultImageProcess(b, s.Name, s.Schedule)
	if err != nil {
		return nil, fmt.Errorf("%s: --process %s --schedule %s: %w", cmd, s.Name, s.Schedule, err)
	}
	p.BetaMin, p.BetaMax, p.LogSNRMin, p.LogSNRMax = s.BetaMin, s.BetaMax, s.LogSNRMin, s.LogSNRMax
	p.SigmaMin, p.SigmaMax, p.BlurSigma, p.BlurMin = s.SigmaMin, s.SigmaMax, s.BlurSigma, s.BlurMin
	if err := p.Check(); err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	if !(r.TMin > 0 && r.TMin < 1) {
		return nil, fmt.Errorf("%s: --t-min=%v, want 0 < t-min < 1", cmd, r.TMin)
	}
	return p, nil
}

// model builds the process and the score network (Shape, Net and V0 set).
func (r *imgDiffRun) model(cmd string) (*diffusion.ImageScore, error) {
	p, err := r.process(cmd)
	if err != nil {
		return nil, err
	}
	s, err := diffusion.NewImageScore(p, r.Net, r.V0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return s, nil
}

func (r *imgDiffRun) dtype() tensor.Dtype {
	if r.Train.Dtype == "float32" {
		return tensor.Float32
	}
	return tensor.Float64
}

// realPixels crops a data set's images back to their real size (the loader centres smaller images in a
// power-of-two canvas of zeros; images.CropPad undoes that): the pixels (N, C, h, w) and h, w.
func realPixels(d *images.Dataset) ([]uint8, int, int, error) {
	h, w := d.RealShape()
	im := d.Images()
	pix, err := images.CropPad(im.Pix, d.Len(), d.Channels(), d.Side(), h, w)
	return pix, h, w, err
}

// modeSecondMoment is the mean square per cosine mode coordinate of up to 2048 images (pixel centres,
// x = 2(p + ½)/256 − 1).
func modeSecondMoment(b *diffusion.ImageBasis, pix []uint8) []float64 {
	D := b.Size()
	n := min(len(pix)/D, 2048)
	v, x := make([]float64, D), make([]float64, D)
	for i := range n {
		for k, p := range pix[i*D : (i+1)*D] {
			x[k] = 2*(float64(p)+0.5)/256 - 1
		}
		b.ToModes(x, x)
		for j, u := range x {
			v[j] += u * u
		}
	}
	for j := range v {
		// A floor keeps every reference variance positive (a constant border pixel has none).
		v[j] = math.Max(v[j]/float64(n), 1e-6)
	}
	return v
}

func runTrainImgDiff(args []string, stdout, stderr io.Writer) error {
	const cmd = "train diffusion images"
	run, f, err := parseImgDiffRun(args, stderr)
	if err != nil {
		return err
	}
	trainSet, _, err := run.Data.load(run.Train.Seed, cmd)
	if err != nil {
		return err
	}
	pix, h, w, err := realPixels(trainSet)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	C := trainSet.Channels()
	if f.session.resume == "" {
		run.Shape = [3]int{C, h, w}
		b, err := diffusion.NewImageBasis(C, h, w)
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		run.V0 = modeSecondMoment(b, pix)
		if run.Net, err = layers.UNetPreset(run.Preset, C); err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
	} else if run.Shape != [3]int{C, h, w} {
		return fmt.Errorf("%s: the data are %d×%d×%d images, the run's model is %v", cmd, C, h, w, run.Shape)
	}
	score, err := run.model(cmd)
	if err != nil {
		return err
	}
	store := layers.NewStore(run.dtype(), run.Train.Seed)
	obj := &losses.ImageDSM{Score: score, Pixels: pix, TMin: run.TMin, DataSeed: run.Train.Seed ^ 0x1d5}
	if _, err := obj.Build(layers.NewScope(G.NewGraph(), store), 1); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	out := f.session.dir(fmt.Sprintf("imgdiff-%s-%s", strings.SplitN(run.Data.Spec, ":", 2)[0], run.Process.Name))
	what := fmt.Sprintf("a %s by DSM under %s on %d %s images %d×%d×%d (ε-prediction U-Net",
		run.Preset, score.Proc.Name(), obj.Samples(), run.Data.Spec, C, h, w)
	tr, done, err := runTraining(cmd, run, run.Train, f.session, out, store, obj, what, stdout, stderr)
	if err != nil || !done {
		return err
	}
	defer tr.Close()
	printNext(stdout,
		[]string{"sample", out, "--n", "64", "--sampler", "pc", "--nfe", "200", "--png", "grid.png", "--out", "samples.npz"},
		[]string{"eval", out, "--split", "test", "--n", "256", "--json"})
	return nil
}

// isImgDiffRun reports whether dir holds an image diffusion run.
func isImgDiffRun(dir string) bool {
	if strings.HasPrefix(dir, "-") {
		return false
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoints")); err != nil {
		return false
	}
	kind, _, err := runConfig(dir, "sample")
	return err == nil && kind == "imgdiff"
}

// loadImgDiff rebuilds a run's score network and loads its weights (EMA when wc asks and it exists).
func loadImgDiff(dir, cmd string, wc weightChoice) (*imgDiffRun, *diffusion.ImageScore, *layers.Store, int64, error) {
	var run imgDiffRun
	if err := loadRunConfig(dir, "imgdiff", &run, cmd); err != nil {
		return nil, nil, nil, 0, err
	}
	score, err := run.model(cmd)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	store := layers.NewStore(run.dtype(), run.Train.Seed)
	bs := layers.NewScope(G.NewGraph(), store)
	if _, err := score.Build(bs, bs.Input("x", 1, run.Shape[0], run.Shape[1], run.Shape[2]), bs.Input("t", 1)); err != nil {
		return nil, nil, nil, 0, fmt.Errorf("%s: %w", cmd, err)
	}
	l, err := train.LoadRunWeights(store, dir, wc.ema)
	if err != nil {
		return nil, nil, nil, 0, fmt.Errorf("%s: %w", cmd, err)
	}
	if wc.log != nil {
		which := "raw"
		if l.EMA {
			which = "EMA"
		}
		fmt.Fprintf(wc.log, "%s: using the %s weights of step %d\n", cmd, which, l.Step)
	}
	return &run, score, store, l.Step, nil
}

// imgDiffSampleFlags are the flags of rgflow sample on an image diffusion run.
type imgDiffSampleFlags struct {
	fs       *flag.FlagSet
	n, nfe   int
	batch    int
	sampler  string
	png, out string
	seed     uint64
	snr      float64
	asJSON   bool
	wc       weightChoice
}

func newImgDiffSampleFlags(stderr io.Writer) *imgDiffSampleFlags {
	f := &imgDiffSampleFlags{fs: flag.NewFlagSet("sample", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(stderr)
	fs.IntVar(&f.n, "n", 64, "number of images")
	fs.IntVar(&f.nfe, "nfe", 200, "score evaluations per image (em: steps; pc: 2 per step; ode: RK4, 4 per step)")
	fs.IntVar(&f.batch, "batch", 64, "images per forward graph of the U-Net")
	fs.StringVar(&f.sampler, "sampler", "pc", "pc (reverse-SDE predictor–corrector), em (Euler–Maruyama) or ode (probability flow, RK4)")
	fs.StringVar(&f.png, "png", "", "write the images as a PNG grid")
	fs.StringVar(&f.out, "out", "", "write pixels (N, C, H, W) uint8 to this .npz file")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed")
	fs.Float64Var(&f.snr, "snr", 0.16, "pc: the corrector's signal-to-noise ratio")
	fs.BoolVar(&f.asJSON, "json", false, "print a JSON report")
	f.wc.register(fs, stderr)
	return f
}

// generateImages draws n images from the run's model (prior at T, then the sampler down to t_min) and
// returns their pixels (n·C·H·W, uint8: x mapped back by p = ⌊128(x + 1)⌋ clamped to [0, 255]) and the
// score evaluations.
func generateImages(score *diffusion.ImageScore, store *layers.Store, run *imgDiffRun, n, batch, nfe int, sampler string, snr float64, seed uint64) ([]uint8, int, error) {
	ns, err := diffusion.NewImageNetScore(score, store, min(batch, n))
	if err != nil {
		return nil, 0, err
	}
	defer ns.Close()
	sh, err := diffusion.NewShifted(score.Proc, run.TMin)
	if err != nil {
		return nil, 0, err
	}
	prior, err := diffusion.Prior(score.Proc, run.V0)
	if err != nil {
		return nil, 0, err
	}
	D := score.Proc.Image().Size()
	x := make([]float64, n*D)
	rng := rand.New(rand.NewPCG(seed, 0x1d1ff))
	if err := prior.Sample(rng, x); err != nil {
		return nil, 0, err
	}
	sc := diffusion.ShiftedScore{Base: ns, T0: run.TMin}
	var used int
	switch sampler {
	case "em":
		used, err = diffusion.EulerMaruyama(sh, sc, x, nfe, 0, rng)
	case "pc":
		used, err = diffusion.PredictorCorrector(sh, sc, x, nfe/2, 0, snr, 1, rng)
	case "ode":
		used, err = diffusion.ProbabilityFlowRK4(sh, sc, x, sh.T(), 0, nfe/4)
	default:
		return nil, 0, fmt.Errorf("--sampler %q, want pc, em or ode", sampler)
	}
	if err != nil {
		return nil, used, err
	}
	pix := make([]uint8, len(x))
	for i, v := range x {
		pix[i] = uint8(math.Max(0, math.Min(255, math.Floor(128*(v+1)))))
	}
	return pix, used, nil
}

// imgDiffSampleReport is the --json output of rgflow sample on an image diffusion run.
type imgDiffSampleReport struct {
	Run     string  `json:"run"`
	Step    int64   `json:"step"`
	Sampler string  `json:"sampler"`
	N       int     `json:"n"`
	NFE     int     `json:"nfe"`
	Seconds float64 `json:"seconds"`
}

func runSampleImgDiff(dir string, args []string, stdout, stderr io.Writer) error {
	const cmd = "sample"
	f := newImgDiffSampleFlags(stderr)
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q after the run directory (flags only)", cmd, f.fs.Arg(0))
	}
	switch {
	case f.n < 1:
		return fmt.Errorf("%s: --n=%d, want ≥ 1", cmd, f.n)
	case f.batch < 1:
		return fmt.Errorf("%s: --batch=%d, want ≥ 1", cmd, f.batch)
	case f.sampler != "em" && f.sampler != "pc" && f.sampler != "ode":
		return fmt.Errorf("%s: --sampler %q, want pc, em or ode", cmd, f.sampler)
	case f.nfe < 1 || f.sampler == "pc" && f.nfe < 2 || f.sampler == "ode" && f.nfe < 4:
		return fmt.Errorf("%s: --nfe=%d is too small for --sampler %s (em ≥ 1, pc ≥ 2, ode ≥ 4)", cmd, f.nfe, f.sampler)
	}
	run, score, store, step, err := loadImgDiff(dir, cmd, f.wc)
	if err != nil {
		return err
	}
	start := time.Now()
	pix, nfe, err := generateImages(score, store, run, f.n, f.batch, f.nfe, f.sampler, f.snr, f.seed)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	secs := time.Since(start).Seconds()
	C, H, W := run.Shape[0], run.Shape[1], run.Shape[2]
	if f.png != "" {
		if H != W {
			return fmt.Errorf("%s: --png: grids need square images, these are %d×%d", cmd, H, W)
		}
		if err := writeGrid(f.png, pix, f.n, C, H, max(1, 128/H)); err != nil {
			return fmt.Errorf("%s: --png: %w", cmd, err)
		}
	}
	if f.out != "" {
		if err := checkpoints.WriteNPZ(f.out, []checkpoints.Array{{Name: "pixels", Shape: []int{f.n, C, H, W}, Data: pix}}); err != nil {
			return fmt.Errorf("%s: --out: %w", cmd, err)
		}
	}
	if f.asJSON {
		return json.NewEncoder(stdout).Encode(imgDiffSampleReport{Run: dir, Step: step, Sampler: f.sampler, N: f.n, NFE: nfe, Seconds: secs})
	}
	fmt.Fprintf(stdout, "%d images %d×%d×%d from %s (step %d) by %s, %d score evaluations, %.1fs\n", f.n, C, H, W, dir, step, f.sampler, nfe, secs)
	if f.png != "" {
		fmt.Fprintf(stdout, "wrote %s\n", f.png)
	}
	if f.out != "" {
		fmt.Fprintf(stdout, "wrote pixels %v to %s\n", []int{f.n, C, H, W}, f.out)
	}
	return nil
}

// evalImgDiffFlags are the flags of rgflow eval on an image diffusion run.
type evalImgDiffFlags struct {
	fs          *flag.FlagSet
	split, data string
	n, nfe      int
	batch       int
	swdN        int
	sampler     string
	sampleNFE   int
	seed        uint64
	asJSON      bool
	wc          weightChoice
	roundTrip   string
}

func newEvalImgDiffFlags(stderr io.Writer) *evalImgDiffFlags {
	f := &evalImgDiffFlags{fs: flag.NewFlagSet("eval", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(stderr)
	fs.StringVar(&f.split, "split", "test", "test or train")
	fs.StringVar(&f.data, "data", "", "evaluate on this data set instead of the run's (same image size)")
	fs.IntVar(&f.n, "n", 256, "images for bits/dim (the first n of the split)")
	fs.IntVar(&f.nfe, "nfe", 0, "likelihood: RK4 steps·4 of the probability-flow ODE (0: adaptive RK45, rtol = atol = 1e-5)")
	fs.IntVar(&f.batch, "batch", 64, "images per forward graph of the U-Net")
	fs.IntVar(&f.swdN, "swd-n", 256, "generated and test images for SWD (0: skip SWD)")
	fs.StringVar(&f.sampler, "sampler", "pc", "sampler of the SWD images: pc, em or ode")
	fs.IntVar(&f.sampleNFE, "sample-nfe", 200, "score evaluations per generated image for SWD")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed (dequantisation, Hutchinson probes, samples, SWD)")
	fs.BoolVar(&f.asJSON, "json", false, "print a JSON report")
	fs.StringVar(&f.roundTrip, "roundtrip", "", "also encode and decode the first 8 images with the probability-flow ODE at these RK4 step counts (e.g. 10,20,40) and report the error")
	f.wc.register(fs, stderr)
	return f
}

// roundTripReport is the probability-flow round trip (t_min → T → t_min, RK4 with Steps steps each way)
// of dequantised test images: the RMS and largest error in pixel units (x·128).
type roundTripReport struct {
	Steps int     `json:"steps"`
	RMS   jsonNum `json:"rms_pixels"`
	Max   jsonNum `json:"max_pixels"`
}

// imgDiffEvalReport is the --json output of rgflow eval on an image diffusion run.
type imgDiffEvalReport struct {
	Run        string            `json:"run"`
	Step       int64             `json:"step"`
	BitsPerDim [2]jsonNum        `json:"bits_per_dim"`
	N          int               `json:"n"`
	NFE        int               `json:"nfe"`
	SWD        [2]jsonNum        `json:"swd"`
	SWDN       int               `json:"swd_n"`
	SWDLevels  []jsonNum         `json:"swd_levels,omitempty"`
	RoundTrip  []roundTripReport `json:"roundtrip,omitempty"`
	Seconds    float64           `json:"seconds"`
}

func runEvalImgDiff(dir string, args []string, stdout, stderr io.Writer) error {
	const cmd = "eval"
	f := newEvalImgDiffFlags(stderr)
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q after the run directory (flags only)", cmd, f.fs.Arg(0))
	}
	if f.n < 1 || f.batch < 1 || f.nfe < 0 || f.swdN < 0 || f.nfe > 0 && f.nfe < 4 {
		return fmt.Errorf("%s: --n=%d --batch=%d --nfe=%d --swd-n=%d, want n, batch ≥ 1, nfe 0 or ≥ 4, swd-n ≥ 0", cmd, f.n, f.batch, f.nfe, f.swdN)
	}
	run, score, store, step, err := loadImgDiff(dir, cmd, f.wc)
	if err != nil {
		return err
	}
	set, err := run.Data.split(f.data, f.split, run.Train.Seed, cmd)
	if err != nil {
		return err
	}
	pix, h, w, err := realPixels(set)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	if [3]int{set.Channels(), h, w} != run.Shape {
		return fmt.Errorf("%s: the %s split holds %d×%d×%d images, the model %v", cmd, f.split, set.Channels(), h, w, run.Shape)
	}
	D := score.Proc.Image().Size()
	n := min(f.n, len(pix)/D)
	start := time.Now()
	rng := rand.New(rand.NewPCG(f.seed, 0xe7a1))
	y := make([]float64, n*D)
	for i := range y {
		y[i] = float64(pix[i]) + rng.Float64() // uniform dequantisation
	}
	ns, err := diffusion.NewImageNetScore(score, store, min(f.batch, n))
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	defer ns.Close()
	prior, err := diffusion.Prior(score.Proc, run.V0)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	opt := diffusion.LikelihoodOptions{Steps: f.nfe / 4, RTol: 1e-5, ATol: 1e-5}
	if run.dtype() == tensor.Float32 {
		opt.FDStep = 1e-2 // float32 scores: a wider difference keeps rounding (≈1e-7/h) below the curvature error
	}
	var bpd []float64
	nfe := 0
	for b := 0; b < n; b += f.batch {
		e := min(n, b+f.batch)
		res, err := diffusion.ImageBitsPerDim(score.Proc, run.TMin, ns, prior, y[b*D:e*D], opt, rng)
		if err != nil {
			return fmt.Errorf("%s: bits/dim: %w", cmd, err)
		}
		bpd = append(bpd, res.BitsPerDim...)
		nfe += res.NFE
	}
	rep := imgDiffEvalReport{Run: dir, Step: step, N: n, NFE: nfe / ((n + f.batch - 1) / f.batch)}
	m, se := losses.MeanStdErr(bpd)
	rep.BitsPerDim = [2]jsonNum{jsonNum(m), jsonNum(se)}
	if f.swdN > 0 {
		k := min(f.swdN, len(pix)/D)
		gen, _, err := generateImages(score, store, run, k, f.batch, f.sampleNFE, f.sampler, 0.16, f.seed)
		if err != nil {
			return fmt.Errorf("%s: samples for SWD: %w", cmd, err)
		}
		r, err := swdPixels(gen, k, pix[:k*D], k, run.Shape, f.seed)
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		rep.SWD, rep.SWDN = [2]jsonNum{jsonNum(r.Value), jsonNum(r.Err)}, k
		for _, v := range r.PerLevel {
			rep.SWDLevels = append(rep.SWDLevels, jsonNum(v))
		}
	}
	if f.roundTrip != "" {
		steps, err := parseInts(f.roundTrip)
		if err != nil {
			return fmt.Errorf("%s: --roundtrip: %w", cmd, err)
		}
		k := min(8, n)
		x0 := make([]float64, k*D)
		for i := range x0 {
			x0[i] = 2*y[i]/256 - 1
		}
		sh, err := diffusion.NewShifted(score.Proc, run.TMin)
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		sc := diffusion.ShiftedScore{Base: ns, T0: run.TMin}
		for _, st := range steps {
			x := append([]float64(nil), x0...)
			if _, err := diffusion.ProbabilityFlowRK4(sh, sc, x, 0, sh.T(), st); err != nil {
				return fmt.Errorf("%s: round trip: %w", cmd, err)
			}
			if _, err := diffusion.ProbabilityFlowRK4(sh, sc, x, sh.T(), 0, st); err != nil {
				return fmt.Errorf("%s: round trip: %w", cmd, err)
			}
			var s2, mx float64
			for i := range x {
				e := 128 * math.Abs(x[i]-x0[i])
				s2 += e * e
				mx = math.Max(mx, e)
			}
			rep.RoundTrip = append(rep.RoundTrip, roundTripReport{Steps: st, RMS: jsonNum(math.Sqrt(s2 / float64(len(x)))), Max: jsonNum(mx)})
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	if f.asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	fmt.Fprintf(stdout, "%s (step %d), %s split: %.4f ± %.4f bits/dim on %d images (%d score evaluations per batch)\n",
		dir, step, f.split, m, se, n, rep.NFE)
	for _, r := range rep.RoundTrip {
		fmt.Fprintf(stdout, "  PF-ODE round trip, RK4 %d steps each way: RMS %.3g, max %.3g pixel levels\n", r.Steps, float64(r.RMS), float64(r.Max))
	}
	if f.swdN > 0 {
		fmt.Fprintf(stdout, "  SWD ×10³ %.2f ± %.2f (%d generated vs %d %s images; per level %v)\n", float64(rep.SWD[0]), float64(rep.SWD[1]), rep.SWDN, rep.SWDN, f.split, rep.SWDLevels)
	}
	return nil
}

// swdPixels is metrics.SWD on two uint8 image sets (intensities p/255) with the default settings.
func swdPixels(a []uint8, na int, b []uint8, nb int, shape [3]int, seed uint64) (metrics.SWDResult, error) {
	fa, fb := make([]float64, len(a)), make([]float64, len(b))
	for i, v := range a {
		fa[i] = float64(v) / 255
	}
	for i, v := range b {
		fb[i] = float64(v) / 255
	}
	o := metrics.DefaultSWDOptions()
	o.Seed = seed
	return metrics.SWD(fa, na, fb, nb, shape[0], shape[1], shape[2], o)
}

// parseInts reads "10,20,40" (positive integers).
func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		var v int
		if _, err := fmt.Sscanf(strings.TrimSpace(p), "%d", &v); err != nil || v < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", p)
		}
		out = append(out, v)
	}
	return out, nil
}
