package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"rgflow/datasets/images"
	"rgflow/layers"
	"rgflow/losses"
	"rgflow/models"
	"rgflow/models/bulk"
	"rgflow/train"
)

const correctUsage = `usage: rgflow correct RUNDIR --corrupt SPEC [--method cone|all] [--window m] [--sample hmc|langevin] [--png before-after.png] [--json] [flags]

Error correction in the bulk of an image run. Each of --n images of the split (from --first) is corrupted,
encoded (the start is the encoding of the corrupted image), and its latents are optimised with the flow's
weights frozen (Adam, --steps steps at --lr, through the training loop) to minimise

  loss(z) = Σ_{known values} (F⁻¹(z) − y_obs)² / (2σ²) − ln p(z)

where y is the flow's input (the logit of the dequantised intensity, at the bin centres) and the sum runs
over every value outside the corrupted sites. σ (--sigma, in logit units) weights the data term against the
prior: small σ pins the known values, large σ lets −ln p(z) pull them too. --method cone frees only the
latents of the corrupted region's causal cone (the only ones that can change it; they also reach pixels
around it, which the data term holds); --method all frees every latent (the baseline).

--window m restricts the data term to the known pixels within m pixels (Chebyshev) of a corrupted one.
The cone's decode runs only the blocks its free latents reach, over a cached decode of the start; as every
cone holds top-level latents (which reach every pixel) that is the whole decode, unless the data term has
a window (then only the blocks that reach the window run) or --cone-levels h frees only the cone's latents
below level h. --full-decode decodes the whole image every step (the reference; same result to rounding).

--batch B repairs B images at a time in one graph (their losses add; Adam treats every latent on its own,
so the repairs stay independent): the same numbers, but the flow's per-operation overhead, which dominates a
batch of one, is shared.

--sample hmc|langevin then draws the free latents from their posterior exp(−loss(z)) (the loss above:
Gaussian observation noise σ on the known values, weight 1/(2σ²), and the prior) by HMC with a Metropolis
test, started at the repaired latents (--burn trajectories adapt the step size, then --samples are kept;
langevin is one leapfrog step per trajectory), in float64. Reported: acceptance, step size, gradient
evaluations, the per-pixel standard deviation of the sampled images over the corrupted pixels and the
others, and the MSE of the posterior mean and of single samples over the corrupted pixels;
--samples-png shows clean | corrupted | repaired | 5 samples | per-pixel std.

--corrupt: box:x,y,w,h (columns x…x+w−1, rows y…y+h−1 set to black), stripe:y,h (rows y…y+h−1 set to
black), or pixels:p (each pixel independently with probability p replaced by uniform noise, from --seed).
Coordinates are on the flow's canvas (padded images: the padded canvas).

Reported (mean and standard error over the images, MSE of intensities in [0, 1] against the clean image):
mse_corrupted over the corrupted sites before repair, mse_corrected over the same sites after, and
mse_outside over every other value after repair (what the repair disturbed); latents_touched of
latents_total latents per image (cone: Σ over images / n); seconds for all repairs. The PNG shows clean,
corrupted and corrected images side by side (at most 12 images).

flags:
`

type correctFlags struct {
	data, split, corrupt, method, png string
	sample, samplesPNG                string
	samples, burn, leapfrog           int
	eps                               float64
	n, first, steps, zoom, levels     int
	window, batch                     int
	lr, sigma                         float64
	seed                              uint64
	asJSON, fullDecode                bool
	wc                                weightChoice
}

func newCorrectFlags(stderr io.Writer) (*flag.FlagSet, *correctFlags) {
	f := &correctFlags{}
	fs := flag.NewFlagSet("correct", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.data, "data", "", "image data set (default: the run's)")
	fs.StringVar(&f.split, "split", "test", "test or train")
	fs.IntVar(&f.n, "n", 10, "images to repair")
	fs.IntVar(&f.first, "first", 0, "index of the first image")
	fs.StringVar(&f.corrupt, "corrupt", "", "corruption: box:x,y,w,h | stripe:y,h | pixels:p")
	fs.StringVar(&f.method, "method", "cone", "cone (only the region's causal cone is free) or all (every latent)")
	fs.IntVar(&f.steps, "steps", 200, "optimiser steps per image")
	fs.IntVar(&f.levels, "cone-levels", 0, "with --method cone: free only the cone's latents at RG levels below this (0: the whole cone)")
	fs.IntVar(&f.batch, "batch", 1, "repair this many images together in one graph (box or stripe corruptions: the same sites in every image)")
	fs.IntVar(&f.window, "window", -1, "hold only the known pixels within this many pixels of the corrupted ones (the data term's window; −1: every known pixel)")
	fs.BoolVar(&f.fullDecode, "full-decode", false, "with --method cone: decode the whole image every step instead of only the blocks the free latents reach (the reference)")
	fs.Float64Var(&f.lr, "lr", 0.05, "Adam learning rate")
	fs.Float64Var(&f.sigma, "sigma", 0.5, "noise scale σ of the known values, in logit units (data-term weight 1/(2σ²))")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the pixel noise (pixels:p)")
	fs.StringVar(&f.png, "png", "", "write clean | corrupted | corrected images to this PNG file")
	fs.IntVar(&f.zoom, "zoom", 4, "pixel enlargement in the PNG")
	fs.StringVar(&f.sample, "sample", "", "after the repair, sample the free latents from their posterior: hmc or langevin (HMC with one leapfrog step)")
	fs.IntVar(&f.samples, "samples", 100, "with --sample: samples kept per image (one per trajectory)")
	fs.IntVar(&f.burn, "burn", 50, "with --sample: trajectories discarded first (the step size adapts during them)")
	fs.IntVar(&f.leapfrog, "leapfrog", 5, "with --sample hmc: leapfrog steps per trajectory")
	fs.Float64Var(&f.eps, "eps", 0.02, "with --sample: initial leapfrog step size")
	fs.StringVar(&f.samplesPNG, "samples-png", "", "with --sample: write clean | corrupted | repaired | 5 samples | per-pixel std for up to 4 images")
	fs.BoolVar(&f.asJSON, "json", false, "print one JSON object")
	f.wc.register(fs, stderr)
	return fs, f
}

// corruption is a parsed --corrupt: the sites it hits on an L×L canvas (row-major) and, per image, the new
// values of the hit sites.
type corruption struct {
	kind   string
	sites  []int   // box and stripe: fixed sites; pixels: nil (drawn per image)
	p      float64 // pixels: probability
	canvas int
}

func parseCorruption(spec string, L int) (corruption, error) {
	kind, arg, ok := strings.Cut(spec, ":")
	if !ok {
		return corruption{}, fmt.Errorf("correct: --corrupt %q: want box:x,y,w,h, stripe:y,h or pixels:p", spec)
	}
	ints := func(want int) ([]int, error) {
		parts := strings.Split(arg, ",")
		if len(parts) != want {
			return nil, fmt.Errorf("correct: --corrupt %q: %s takes %d integers, got %d", spec, kind, want, len(parts))
		}
		out := make([]int, want)
		for i, p := range parts {
			v, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil {
				return nil, fmt.Errorf("correct: --corrupt %q: %q is not an integer", spec, p)
			}
			out[i] = v
		}
		return out, nil
	}
	c := corruption{kind: kind, canvas: L}
	box := func(x, y, w, h int) error {
		if w < 1 || h < 1 || x < 0 || y < 0 || x+w > L || y+h > L {
			return fmt.Errorf("correct: --corrupt %q: box %d×%d at column %d, row %d does not fit the %d×%d canvas", spec, w, h, x, y, L, L)
		}
		if w == L && h == L {
			return fmt.Errorf("correct: --corrupt %q covers the whole canvas: nothing is known", spec)
		}
		for i := y; i < y+h; i++ {
			for j := x; j < x+w; j++ {
				c.sites = append(c.sites, i*L+j)
			}
		}
		return nil
	}
	switch kind {
	case "box":
		v, err := ints(4)
		if err != nil {
			return c, err
		}
		return c, box(v[0], v[1], v[2], v[3])
	case "stripe":
		v, err := ints(2)
		if err != nil {
			return c, err
		}
		return c, box(0, v[0], L, v[1])
	case "pixels":
		p, err := strconv.ParseFloat(arg, 64)
		if err != nil || !(p > 0 && p < 1) {
			return c, fmt.Errorf("correct: --corrupt %q: want pixels:p with 0 < p < 1", spec)
		}
		c.p = p
		return c, nil
	}
	return c, fmt.Errorf("correct: --corrupt %q: unknown kind %q (box, stripe or pixels)", spec, kind)
}

// apply corrupts pix (C×L×L) in place and returns the corrupted sites (every channel).
func (c corruption) apply(pix []uint8, channels int, rng *rand.Rand) []int {
	v := c.canvas * c.canvas
	sites := c.sites
	if c.kind == "pixels" {
		sites = nil
		for s := range v {
			if rng.Float64() < c.p {
				sites = append(sites, s)
			}
		}
		if len(sites) == 0 { // at least one site, so that there is something to repair
			sites = []int{rng.IntN(v)}
		}
	}
	for ch := range channels {
		for _, s := range sites {
			if c.kind == "pixels" {
				pix[ch*v+s] = uint8(rng.IntN(256))
			} else {
				pix[ch*v+s] = 0
			}
		}
	}
	return sites
}

// correctResult is what correctImages measured: per image, the clean, corrupted and corrected intensities
// (C·L·L each, in [0, 1]) and the corrupted sites, and the aggregate report.
type correctResult struct {
	Clean, Corrupted, Corrected [][]float64
	Sites                       [][]int
	Touched                     []int
	Cones                       [][]int // the freed latents of each image (flat C·L·L indices)
	Latents                     [][]float64
	// With sampling: per image up to 5 decoded samples and the per-pixel standard deviation (intensities).
	Samples [][][]float64
	Std     [][]float64
	Report  correctReport
}

type correctReport struct {
	Method         string     `json:"method"`
	N              int        `json:"n"`
	Steps          int        `json:"steps"`
	Sigma          float64    `json:"sigma"`
	MSECorrupted   [2]jsonNum `json:"mse_corrupted"`
	MSECorrected   [2]jsonNum `json:"mse_corrected"`
	MSEOutside     [2]jsonNum `json:"mse_outside"`
	LatentsTouched float64    `json:"latents_touched"`
	LatentsTotal   int        `json:"latents_total"`
	ConeLevels     int        `json:"cone_levels,omitempty"`
	Window         int        `json:"window"`
	Batch          int        `json:"batch"`
	BlocksRun      float64    `json:"blocks_run"`
	BlocksTotal    int        `json:"blocks_total"`
	Seconds        float64    `json:"seconds"`
	*sampleReport
}

// sampleReport is the sampling part of a correct report.
type sampleReport struct {
	Sampler  string `json:"sampler"`
	Samples  int    `json:"samples"`
	Burn     int    `json:"burn"`
	Leapfrog int    `json:"leapfrog"`
	// Acceptance and Eps: mean ± error over images; GradientEvals: total.
	Acceptance    [2]jsonNum `json:"acceptance"`
	Eps           [2]jsonNum `json:"eps"`
	GradientEvals int64      `json:"gradient_evals"`
	// Per-pixel standard deviation of the sampled repairs (intensities in [0, 1]), averaged over the
	// corrupted pixels and over the others, then mean ± error over images.
	SpreadCorrupted [2]jsonNum `json:"spread_corrupted"`
	SpreadOutside   [2]jsonNum `json:"spread_outside"`
	// MSE of the posterior mean (the average of the sampled images) over the corrupted pixels.
	MSEMean [2]jsonNum `json:"mse_posterior_mean"`
	// MSE of single samples over the corrupted pixels, averaged over the samples.
	MSESample [2]jsonNum `json:"mse_sample"`
	Seconds   float64    `json:"seconds"`
}

// correctOptions are the settings of one correctImages call.
type correctOptions struct {
	corrupt    corruption
	all        bool
	levels     int
	window     int
	fullDecode bool
	batch      int    // images repaired together (same corrupted sites); 0 means 1
	sample     string // "", "hmc" or "langevin"
	hmc        bulk.HMCConfig
	steps      int
	lr         float64
	sigma      float64
	seed       uint64
}

// meanErr is the mean of v and its standard error (0 for one value).
func meanErr(v []float64) [2]jsonNum {
	m := 0.0
	for _, x := range v {
		m += x
	}
	m /= float64(len(v))
	if len(v) < 2 {
		return [2]jsonNum{jsonNum(m), 0}
	}
	s := 0.0
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	return [2]jsonNum{jsonNum(m), jsonNum(math.Sqrt(s / float64(len(v)-1) / float64(len(v))))}
}

// regionMSE returns the MSE of a against b over the corrupted sites (every channel) and over every other value.
func regionMSE(a, b []float64, sites []int, channels, v int) (in, out float64) {
	hit := make([]bool, v)
	for _, s := range sites {
		hit[s] = true
	}
	nin, nout := 0, 0
	for ch := range channels {
		for s := range v {
			d := a[ch*v+s] - b[ch*v+s]
			if hit[s] {
				in += d * d
				nin++
			} else {
				out += d * d
				nout++
			}
		}
	}
	if nin > 0 {
		in /= float64(nin)
	}
	if nout > 0 {
		out /= float64(nout)
	}
	return in, out
}

// correctImages repairs every image of pix (n × C·L·L, uint8) with the flow frozen in store. It freezes
// every parameter of store and adds one frozen parameter per image ("correct/z<k>", k its index in store).
func correctImages(flow *models.Flow, store *layers.Store, pix []uint8, n int, o correctOptions) (*correctResult, error) {
	C, L := flow.Channels, flow.L
	v, dim := L*L, flow.Channels*flow.L*flow.L
	if len(pix) != n*dim {
		return nil, fmt.Errorf("correct: %d pixel values for %d images of %d", len(pix), n, dim)
	}
	for _, name := range store.Names() {
		if !store.Frozen(name) {
			if err := store.Freeze(name); err != nil {
				return nil, fmt.Errorf("correct: %w", err)
			}
		}
	}
	enc, err := models.NewEncoder(flow, store, 1)
	if err != nil {
		return nil, fmt.Errorf("correct: %w", err)
	}
	defer enc.Close()
	sm, err := models.NewSampler(flow, store, 1)
	if err != nil {
		return nil, fmt.Errorf("correct: %w", err)
	}
	defer sm.Close()
	pre := losses.Preprocess{Fixed: true, U: 0.5}
	toY := func(p []uint8) ([]float64, error) {
		y := make([]float64, dim)
		if err := pre.Apply(nil, p, dim, y, make([]float64, 1)); err != nil {
			return nil, fmt.Errorf("correct: %w", err)
		}
		return y, nil
	}
	intensity := func(y []float64) []float64 {
		out := make([]float64, len(y))
		for i, x := range y {
			out[i] = pre.Dequantised(x)
		}
		return out
	}
	if o.batch < 1 {
		o.batch = 1
	}
	res := &correctResult{}
	rng := rand.New(rand.NewPCG(o.seed, 0xc0e1))
	var before, after, outside []float64
	touched, blocksRun, blocksTotal := 0, 0, 0
	var acc, eps, spIn, spOut, mseMean, mseSample []float64
	var grads int64
	sampleSecs := 0.0
	t0 := time.Now()
	for g0 := 0; g0 < n; g0 += o.batch {
		bs := min(o.batch, n-g0)
		var ycs, yos, starts [][]float64
		var yoAll, startAll []float64
		var sites []int
		for j := range bs {
			i := g0 + j
			clean := pix[i*dim : (i+1)*dim]
			bad := append([]uint8(nil), clean...)
			st := o.corrupt.apply(bad, C, rng)
			if j == 0 {
				sites = st
			} else if !slices.Equal(st, sites) {
				return nil, fmt.Errorf("correct: image %d: a batch of repairs needs the same corrupted sites in every image (box or stripe, or --batch 1)", i)
			}
			yc, err := toY(clean)
			if err != nil {
				return nil, err
			}
			yo, err := toY(bad)
			if err != nil {
				return nil, err
			}
			start, _, err := enc.Encode(yo)
			if err != nil {
				return nil, fmt.Errorf("correct: image %d: %w", i, err)
			}
			ycs, yos, starts = append(ycs, yc), append(yos, yo), append(starts, start)
			yoAll, startAll = append(yoAll, yo...), append(startAll, start...)
		}
		rep := &bulk.Repair{Flow: flow, Observed: yoAll, Region: sites, Start: startAll, Sigma: o.sigma, All: o.all,
			Levels: o.levels, FullDecode: o.fullDecode, Window: windowAround(sites, L, o.window),
			Name: fmt.Sprintf("correct/z%d", store.Len())} // a new name: the store only grows
		tr, err := train.New(store, rep, train.Config{Steps: int64(o.steps), Batch: bs, LR: o.lr, Seed: o.seed + uint64(g0), LogEvery: int64(o.steps)})
		if err != nil {
			return nil, fmt.Errorf("correct: images %d … %d: %w", g0, g0+bs-1, err)
		}
		err = tr.Run(context.Background())
		tr.Close()
		if err != nil {
			return nil, fmt.Errorf("correct: images %d … %d: %w", g0, g0+bs-1, err)
		}
		if err := store.Freeze(rep.Name); err != nil {
			return nil, fmt.Errorf("correct: %w", err)
		}
		zAll, err := rep.Latents(store)
		if err != nil {
			return nil, fmt.Errorf("correct: images %d … %d: %w", g0, g0+bs-1, err)
		}
		for j := range bs {
			i := g0 + j
			yc, yo, start := ycs[j], yos[j], starts[j]
			z := zAll[j*dim : (j+1)*dim]
			yr, _, err := sm.Decode(z)
			if err != nil {
				return nil, fmt.Errorf("correct: image %d: %w", i, err)
			}
			xc, xo, xr := intensity(yc), intensity(yo), intensity(yr)
			b, _ := regionMSE(xo, xc, sites, C, v)
			a, out := regionMSE(xr, xc, sites, C, v)
			before, after, outside = append(before, b), append(after, a), append(outside, out)
			touched += len(rep.Cone)
			if rep.Decoder != nil {
				blocksRun += rep.Decoder.BlocksRun
				blocksTotal = rep.Decoder.BlocksTotal
			}
			res.Clean, res.Corrupted, res.Corrected = append(res.Clean, xc), append(res.Corrupted, xo), append(res.Corrected, xr)
			res.Sites, res.Touched = append(res.Sites, sites), append(res.Touched, len(rep.Cone))
			res.Cones, res.Latents = append(res.Cones, slices.Clone(rep.Cone)), append(res.Latents, z)
			if o.sample != "" {
				t1 := time.Now()
				st, err := sampleRepairs(flow, store, sm, yo, sites, start, z, xc, o, uint64(i), intensity)
				if err != nil {
					return nil, fmt.Errorf("correct: image %d: %w", i, err)
				}
				sampleSecs += time.Since(t1).Seconds()
				acc, eps, spIn, spOut = append(acc, st.acc), append(eps, st.eps), append(spIn, st.spreadIn), append(spOut, st.spreadOut)
				mseMean, mseSample = append(mseMean, st.mseMean), append(mseSample, st.mseSample)
				grads += st.grads
				res.Samples, res.Std = append(res.Samples, st.shown), append(res.Std, st.std)
			}
		}
	}
	method := "cone"
	if o.all {
		method = "all"
	}
	res.Report = correctReport{Method: method, N: n, Steps: o.steps, Sigma: o.sigma,
		MSECorrupted: meanErr(before), MSECorrected: meanErr(after), MSEOutside: meanErr(outside),
		LatentsTouched: float64(touched) / float64(n), LatentsTotal: dim, ConeLevels: o.levels, Window: o.window, Batch: o.batch, Seconds: time.Since(t0).Seconds()}
	if blocksTotal == 0 { // all latents or the full decode: every block every step
		blocksTotal = fullBlocks(flow)
		blocksRun = blocksTotal * n
	}
	res.Report.BlocksRun, res.Report.BlocksTotal = float64(blocksRun)/float64(n), blocksTotal
	if o.sample != "" {
		res.Report.Seconds -= sampleSecs
		res.Report.sampleReport = &sampleReport{Sampler: o.sample, Samples: o.hmc.Samples, Burn: o.hmc.Burn, Leapfrog: o.hmc.Leapfrog,
			Acceptance: meanErr(acc), Eps: meanErr(eps), GradientEvals: grads, SpreadCorrupted: meanErr(spIn),
			SpreadOutside: meanErr(spOut), MSEMean: meanErr(mseMean), MSESample: meanErr(mseSample), Seconds: sampleSecs}
	}
	return res, nil
}

// correctPNG lays out clean | corrupted | corrected triples, three or six tiles to a row.
func correctPNG(path string, r *correctResult, C, L, zoom int) error {
	k := min(len(r.Clean), 12)
	tiles := 9
	if k > 3 {
		tiles = 36
	}
	dim := C * L * L
	grid := make([]uint8, tiles*dim)
	for i := range grid {
		grid[i] = 255
	}
	put := func(t int, x []float64) {
		for j, v := range x {
			grid[t*dim+j] = uint8(math.Round(255 * math.Min(1, math.Max(0, v))))
		}
	}
	for i := range k {
		put(3*i, r.Clean[i])
		put(3*i+1, r.Corrupted[i])
		put(3*i+2, r.Corrected[i])
	}
	return writeGrid(path, grid, tiles, C, L, zoom)
}

func runCorrect(args []string, stdout, stderr io.Writer) error {
	if helpRequested(args) {
		return printHelp(stdout, "correct")
	}
	fs, f := newCorrectFlags(stderr)
	dir, err := runDirArg(fs, args, "correct")
	if err != nil {
		return err
	}
	if f.corrupt == "" {
		return errors.New("correct: say how to corrupt the images: --corrupt box:x,y,w,h | stripe:y,h | pixels:p")
	}
	if f.method != "cone" && f.method != "all" {
		return fmt.Errorf("correct: --method %q, want cone or all", f.method)
	}
	if f.batch < 1 || (f.batch > 1 && strings.HasPrefix(f.corrupt, "pixels")) {
		return fmt.Errorf("correct: --batch %d with --corrupt %s, want ≥ 1, and 1 for pixels (each image has its own sites)", f.batch, f.corrupt)
	}
	if f.window < -1 {
		return fmt.Errorf("correct: --window %d, want ≥ 0 (or −1 for no window)", f.window)
	}
	if f.levels < 0 || (f.levels > 0 && f.method != "cone") {
		return fmt.Errorf("correct: --cone-levels %d with --method %s, want ≥ 0 and only with --method cone", f.levels, f.method)
	}
	if f.n < 1 || f.first < 0 || f.steps < 1 || !(f.lr > 0) || math.IsInf(f.lr, 0) || !(f.sigma > 0) || math.IsInf(f.sigma, 0) || f.zoom < 1 || f.zoom > 16 {
		return fmt.Errorf("correct: --n=%d --first=%d --steps=%d --lr=%v --sigma=%v --zoom=%d, want n ≥ 1, first ≥ 0, steps ≥ 1, lr > 0, σ > 0, 1 ≤ zoom ≤ 16",
			f.n, f.first, f.steps, f.lr, f.sigma, f.zoom)
	}
	hmc := bulk.HMCConfig{Samples: f.samples, Burn: f.burn, Leapfrog: f.leapfrog, Eps: f.eps}
	switch f.sample {
	case "":
		if f.samplesPNG != "" {
			return errors.New("correct: --samples-png needs --sample hmc or langevin")
		}
	case "langevin":
		hmc.Leapfrog = 1
	case "hmc":
	default:
		return fmt.Errorf("correct: --sample %q, want hmc or langevin", f.sample)
	}
	if f.sample != "" && (f.samples < 1 || f.burn < 0 || hmc.Leapfrog < 1 || !(f.eps > 0) || math.IsInf(f.eps, 0)) {
		return fmt.Errorf("correct: --samples=%d --burn=%d --leapfrog=%d --eps=%v, want samples ≥ 1, burn ≥ 0, leapfrog ≥ 1, eps > 0",
			f.samples, f.burn, f.leapfrog, f.eps)
	}
	run, flow, store, step, err := loadImageRun(dir, "correct", f.wc)
	if err != nil {
		return err
	}
	cor, err := parseCorruption(f.corrupt, flow.L)
	if err != nil {
		return err
	}
	set, err := run.Data.split(f.data, f.split, run.Train.Seed, "correct")
	if err != nil {
		return err
	}
	if f.first+f.n > set.Len() {
		return fmt.Errorf("correct: images %d … %d outside the %s split (0 … %d)", f.first, f.first+f.n-1, f.split, set.Len()-1)
	}
	pix, err := loadImages(set, f.first, f.n)
	if err != nil {
		return fmt.Errorf("correct: %w", err)
	}
	res, err := correctImages(flow, store, pix, f.n, correctOptions{corrupt: cor, all: f.method == "all", levels: f.levels,
		window: f.window, batch: f.batch, fullDecode: f.fullDecode, sample: f.sample, hmc: hmc, steps: f.steps, lr: f.lr, sigma: f.sigma, seed: f.seed})
	if err != nil {
		return err
	}
	if f.png != "" {
		if err := correctPNG(f.png, res, flow.Channels, flow.L, f.zoom); err != nil {
			return fmt.Errorf("correct: %w", err)
		}
	}
	if f.samplesPNG != "" {
		if err := samplesPNG(f.samplesPNG, res, flow.Channels, flow.L, f.zoom); err != nil {
			return fmt.Errorf("correct: %w", err)
		}
	}
	r := res.Report
	if f.asJSON {
		return json.NewEncoder(stdout).Encode(struct {
			Run   string `json:"run"`
			Step  int64  `json:"step"`
			Split string `json:"split"`
			First int    `json:"first"`
			correctReport
		}{dir, step, f.split, f.first, r})
	}
	fmt.Fprintf(stdout, "correct %s (step %d), %s images %d … %d, --corrupt %s, method %s, %d steps, σ = %g:\n",
		dir, step, f.split, f.first, f.first+f.n-1, f.corrupt, r.Method, r.Steps, r.Sigma)
	fmt.Fprintf(stdout, "  MSE over the corrupted sites: %.5f ± %.5f corrupted, %.5f ± %.5f corrected\n", r.MSECorrupted[0], r.MSECorrupted[1], r.MSECorrected[0], r.MSECorrected[1])
	fmt.Fprintf(stdout, "  MSE elsewhere after repair:   %.3g ± %.2g\n", r.MSEOutside[0], r.MSEOutside[1])
	fmt.Fprintf(stdout, "  latents touched %.1f of %d per image; block evaluations per decode %.1f of %d; %.1f s\n",
		r.LatentsTouched, r.LatentsTotal, r.BlocksRun, r.BlocksTotal, r.Seconds)
	return nil
}

// loadImages reads n consecutive images of set from first.
func loadImages(set *images.Dataset, first, n int) ([]uint8, error) {
	dim := set.Dim()
	idx := make([]int, n)
	for i := range idx {
		idx[i] = first + i
	}
	pix := make([]uint8, n*dim)
	if err := set.Batch(pix, idx, nil); err != nil {
		return nil, err
	}
	return pix, nil
}

// fullBlocks is the number of block evaluations of one full decode of flow.
func fullBlocks(flow *models.Flow) int {
	seq, err := layers.BlockSequence(flow.Bijector)
	if err != nil {
		return 0
	}
	n := 0
	for _, sp := range seq {
		n += len(flow.Hier.Blocks(sp.Level, sp.Decimator))
	}
	return n
}

// windowAround is every site of the L×L canvas within Chebyshev distance m of a site of sites, or nil
// (no window) for m < 0.
func windowAround(sites []int, L, m int) []int {
	if m < 0 {
		return nil
	}
	in := make([]bool, L*L)
	for _, s := range sites {
		i0, j0 := s/L, s%L
		for i := max(0, i0-m); i <= min(L-1, i0+m); i++ {
			for j := max(0, j0-m); j <= min(L-1, j0+m); j++ {
				in[i*L+j] = true
			}
		}
	}
	var out []int
	for s, ok := range in {
		if ok {
			out = append(out, s)
		}
	}
	return out
}

// sampled is what sampleRepairs measured on one image.
type sampled struct {
	acc, eps, spreadIn, spreadOut, mseMean, mseSample float64
	grads                                             int64
	shown                                             [][]float64 // up to 5 decoded samples (intensities)
	std                                               []float64   // per-pixel standard deviation (intensities)
}

// sampleRepairs draws the free latents of rep from their posterior (the repair energy, see
// bulk.Posterior) by HMC, starting at the repaired latents z, and measures the spread of the decoded images.
func sampleRepairs(flow *models.Flow, store *layers.Store, sm *models.Sampler, yo []float64, sites []int,
	start, z, clean []float64, o correctOptions, image uint64, intensity func([]float64) []float64) (*sampled, error) {
	post, err := bulk.NewPosterior(bulk.Repair{Flow: flow, Observed: yo, Region: sites, Start: start, Sigma: o.sigma,
		All: o.all, Levels: o.levels, Window: windowAround(sites, flow.L, o.window), FullDecode: o.fullDecode}, store)
	if err != nil {
		return nil, err
	}
	defer post.Close()
	x0 := make([]float64, post.Dim())
	for i, k := range post.Free() {
		x0[i] = z[k]
	}
	res, err := bulk.Sample(post.EvalGrad, x0, o.hmc, rand.New(rand.NewPCG(o.seed, 0x5a3b1e+image)))
	if err != nil {
		return nil, fmt.Errorf("sampling: %w", err)
	}
	C, v := flow.Channels, flow.L*flow.L
	dim := C * v
	sum, sum2 := make([]float64, dim), make([]float64, dim)
	out := &sampled{acc: res.Acceptance, eps: res.Eps, grads: res.Grads}
	for si, zc := range res.Samples {
		y, _, err := sm.Decode(post.Latents(zc))
		if err != nil {
			return nil, err
		}
		x := intensity(y)
		for j, val := range x {
			sum[j] += val
			sum2[j] += val * val
		}
		in, _ := regionMSE(x, clean, sites, C, v)
		out.mseSample += in / float64(len(res.Samples))
		if stride := max(1, len(res.Samples)/5); si%stride == stride-1 && len(out.shown) < 5 {
			out.shown = append(out.shown, x)
		}
	}
	k := float64(len(res.Samples))
	mean := make([]float64, dim)
	out.std = make([]float64, dim)
	for j := range sum {
		mean[j] = sum[j] / k
		out.std[j] = math.Sqrt(math.Max(0, sum2[j]/k-mean[j]*mean[j]))
	}
	hit := make([]bool, v)
	for _, s := range sites {
		hit[s] = true
	}
	nin, nout := 0, 0
	for ch := range C {
		for s := range v {
			if hit[s] {
				out.spreadIn += out.std[ch*v+s]
				nin++
			} else {
				out.spreadOut += out.std[ch*v+s]
				nout++
			}
		}
	}
	out.spreadIn /= float64(max(nin, 1))
	out.spreadOut /= float64(max(nout, 1))
	out.mseMean, _ = regionMSE(mean, clean, sites, C, v)
	return out, nil
}

// samplesPNG lays out, for up to 4 images, one row: clean | corrupted | repaired | 5 samples | per-pixel
// std (scaled so that the largest std of the row is white).
func samplesPNG(path string, r *correctResult, C, L, zoom int) error {
	rows := min(len(r.Samples), 4)
	const cols = 9
	dim := C * L * L
	grid := make([]uint8, rows*cols*dim)
	for i := range grid {
		grid[i] = 255
	}
	put := func(t int, x []float64, scale float64) {
		for j, v := range x {
			grid[t*dim+j] = uint8(math.Round(255 * math.Min(1, math.Max(0, v*scale))))
		}
	}
	for i := range rows {
		put(i*cols, r.Clean[i], 1)
		put(i*cols+1, r.Corrupted[i], 1)
		put(i*cols+2, r.Corrected[i], 1)
		for k, x := range r.Samples[i] {
			put(i*cols+3+k, x, 1)
		}
		top := 0.0
		for _, v := range r.Std[i] {
			top = math.Max(top, v)
		}
		if top > 0 {
			put(i*cols+8, r.Std[i], 1/top)
		}
	}
	return writeGridCols(path, grid, rows*cols, cols, C, L, zoom)
}
