package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/losses"
	"rgflow/models/diffusion"
	"rgflow/train"
)

// loadDiffusionRun rebuilds a diffusion run's action, score network and weights (the moving average when
// ema and the checkpoint has one).
func loadDiffusionRun(dir, cmd string, ema bool) (*diffusionRun, lattice.Action, diffusion.GraphScore, *layers.Store, int64, error) {
	var run diffusionRun
	if err := loadRunConfig(dir, "diffusion", &run, cmd); err != nil {
		return nil, nil, nil, nil, 0, err
	}
	act, net, err := run.model(cmd)
	if err != nil {
		return nil, nil, nil, nil, 0, err
	}
	dtype := tensor.Float64
	if run.Train.Dtype == "float32" {
		dtype = tensor.Float32
	}
	store := layers.NewStore(dtype, run.Train.Seed)
	bs := layers.NewScope(G.NewGraph(), store) // binds the parameters so that the weights can be loaded
	if _, err := net.Build(bs, bs.Input("x", 1, net.InputChannels(), run.Physics.L, run.Physics.L), bs.Input("t", 1)); err != nil {
		return nil, nil, nil, nil, 0, fmt.Errorf("%s: %w", cmd, err)
	}
	l, err := train.LoadRunWeights(store, dir, ema)
	if err != nil {
		return nil, nil, nil, nil, 0, fmt.Errorf("%s: %w", cmd, err)
	}
	return &run, act, net, store, l.Step, nil
}

// hostScore runs a trained network on the host with forward graphs of batch samples: an effective action
// as an EffectiveHostScore (exact divergence of its flow), anything else as a NetScore.
func hostScore(net diffusion.GraphScore, store *layers.Store, batch int) (diffusion.Score, func() error, error) {
	if e, ok := net.(*diffusion.EffectiveScore); ok {
		h, err := diffusion.NewEffectiveHostScore(e, store, batch)
		if err != nil {
			return nil, nil, err
		}
		return h, h.Close, nil
	}
	n, err := diffusion.NewNetScore(net, store, batch)
	if err != nil {
		return nil, nil, err
	}
	return n, n.Close, nil
}

// heldOutSamples returns n samples of act that training never saw, in chains consecutive chains of equal
// length: exact Gaussian draws for a free field (one "chain" of independent draws), otherwise 8 fresh HMC
// chains (1000 warm-up trajectories, then every 5th trajectory) seeded by seed.
func heldOutSamples(run *diffusionRun, act lattice.Action, lat *diffusion.Lattice, n int, seed uint64) (x []float64, src string, chains int, err error) {
	C, V := act.Channels(), lat.V
	if run.Physics.Action == "free" && run.Physics.M2 > 0 {
		v, err := lat.FreeVariance(run.Physics.M2)
		if err != nil {
			return nil, "", 0, err
		}
		x := make([]float64, n*C*V)
		if err := (&diffusion.Gaussian{Lat: lat, Var: v}).Sample(rand.New(rand.NewPCG(seed, 0x4e1d)), x); err != nil {
			return nil, "", 0, err
		}
		return x, "exact free-field samples", 1, nil
	}
	const every = 5
	chains = min(8, max(1, n/2))
	per := n / chains
	x = make([]float64, chains*per*C*V)
	_, err = lattice.RunHMC(context.Background(), act, lattice.HMCConfig{Chains: chains, Thermalize: 1000, Trajectories: per * every,
		Every: every, Seed: seed ^ 0x4e1d}, func(c, k int, phi []float64, _ float64) {
		copy(x[(c*per+k)*C*V:], phi)
	})
	if err != nil {
		return nil, "", 0, err
	}
	return x, fmt.Sprintf("HMC, %d fresh chains of %d (seed %d)", chains, per, seed), chains, nil
}

// diffusionEval is the report of rgflow eval on a diffusion run.
type diffusionEval struct {
	Run     string `json:"run"`
	Step    int64  `json:"step"`
	HeldOut string `json:"held_out"`
	N       int    `json:"n"`
	// DSMLoss is the denoising score-matching loss of the run's objective (weighting, t range and
	// sampling) on the held-out samples: mean and standard error.
	DSMLoss [2]jsonNum `json:"dsm_loss"`
	// NLL is −log q(x)/V on the held-out samples under the probability-flow ODE, with NFE score evaluations
	// and the divergence taken as Divergence says.
	NLL        [2]jsonNum `json:"nll_per_site"`
	NFE        int        `json:"nfe"`
	Divergence string     `json:"divergence"`
	// ExactNLL (free field) is (S(x) + ln Z)/V on the same samples.
	ExactNLL *[2]jsonNum `json:"exact_nll_per_site,omitempty"`
	// KL (free field) is KL(q‖p) = E_q[ln q + S] + ln Z in nats over KLN probability-flow samples, its error
	// the statistical one and the integration error (the change against an integration with half the
	// RK4 steps, or 10× the RK45 tolerances) added in quadrature.
	KL         *[2]jsonNum `json:"kl,omitempty"`
	KLPerSite  *[2]jsonNum `json:"kl_per_site,omitempty"`
	KLStatErr  *jsonNum    `json:"kl_stat_err,omitempty"`
	KLODEErr   *jsonNum    `json:"kl_ode_err,omitempty"`
	KLN        int         `json:"kl_n,omitempty"`
	KLNFE      int         `json:"kl_nfe,omitempty"`
	ExactLogZ  *jsonNum    `json:"exact_logZ,omitempty"`
	Seconds    float64     `json:"seconds"`
	Integrator string      `json:"integrator"`
}

// diffusionEvalInput is what evaluateDiffusion needs: the run's network (its process, channels and DSM
// scale), host scores (Score on batches; Score1 for the one-sample DSM evaluation, nil: Score), the prior
// at T, the DSM settings, held-out samples, and for a free field its m² (> 0: exact NLL and KL).
type diffusionEvalInput struct {
	Act        lattice.Action
	Net        diffusion.GraphScore
	Score      diffusion.Score
	Score1     diffusion.Score
	Prior      *diffusion.Gaussian
	Weighting  string
	TMin       float64
	TSampling  string
	HeldOut    []float64
	HeldOutSrc string
	FreeM2     float64
	KLN        int
	Opt        diffusion.LikelihoodOptions
	Seed       uint64
}

// evaluateDiffusion computes the report (without Run and Step).
func evaluateDiffusion(in diffusionEvalInput) (*diffusionEval, error) {
	start := time.Now()
	sde := in.Net.Process()
	lat := sde.Lattice()
	C, V := in.Net.Channels(), lat.V
	if len(in.HeldOut) == 0 || len(in.HeldOut)%(C*V) != 0 {
		return nil, fmt.Errorf("held-out samples: %d values, want a positive multiple of C·V=%d", len(in.HeldOut), C*V)
	}
	n := len(in.HeldOut) / (C * V)
	rep := &diffusionEval{HeldOut: in.HeldOutSrc, N: n, Divergence: diffusion.DivergenceMethod(in.Score, in.Opt)}
	if in.Opt.Steps > 0 {
		rep.Integrator = fmt.Sprintf("RK4, %d steps", in.Opt.Steps)
	} else {
		rep.Integrator = fmt.Sprintf("RK45, rtol %g, atol %g", orDefault(in.Opt.RTol, 1e-6), orDefault(in.Opt.ATol, 1e-6))
	}
	rng := rand.New(rand.NewPCG(in.Seed, 0xe7a1))

	// DSM loss, one pass over the held-out samples.
	s1 := in.Score1
	if s1 == nil {
		s1 = in.Score
	}
	dsm := &losses.DSM{Net: in.Net, Data: in.HeldOut, Weighting: in.Weighting, TMin: in.TMin, TSampling: in.TSampling, DataSeed: in.Seed}
	m, se, err := dsm.Evaluate(s1, n, rng)
	if err != nil {
		return nil, fmt.Errorf("DSM loss: %w", err)
	}
	rep.DSMLoss = [2]jsonNum{jsonNum(m), jsonNum(se)}

	// Probability-flow NLL per site.
	lp, nfe, err := diffusion.LogLikelihood(sde, in.Score, in.Prior, in.HeldOut, in.Opt, rng)
	if err != nil {
		return nil, fmt.Errorf("probability-flow likelihood: %w", err)
	}
	rep.NFE = nfe
	nll := perSample(lp, C)
	for i := range nll {
		nll[i] = -nll[i] / float64(V)
	}
	a, e := losses.MeanStdErr(nll)
	rep.NLL = [2]jsonNum{jsonNum(a), jsonNum(e)}
	if !(in.FreeM2 > 0) {
		rep.Seconds = time.Since(start).Seconds()
		return rep, nil
	}

	// Free field: exact NLL on the same samples and KL(q‖p) through the exact ln Z.
	lnZ := lattice.FreeLogZ(lat.L, in.FreeM2) * float64(C)
	ex := make([]float64, n)
	for i := range n {
		ex[i] = (in.Act.Eval(in.HeldOut[i*C*V:(i+1)*C*V]) + lnZ) / float64(V)
	}
	a, e = losses.MeanStdErr(ex)
	rep.ExactNLL = &[2]jsonNum{jsonNum(a), jsonNum(e)}
	lz := jsonNum(lnZ)
	rep.ExactLogZ = &lz
	k := in.KLN
	if k < 2 {
		return nil, fmt.Errorf("KL: %d samples, want ≥ 2", k)
	}
	xT := make([]float64, k*C*V)
	if err := in.Prior.Sample(rng, xT); err != nil {
		return nil, err
	}
	coarse := in.Opt
	if coarse.Steps > 0 {
		coarse.Steps = max(1, coarse.Steps/2)
	} else {
		coarse.RTol, coarse.ATol = 10*orDefault(in.Opt.RTol, 1e-6), 10*orDefault(in.Opt.ATol, 1e-6)
	}
	klOf := func(opt diffusion.LikelihoodOptions, probeSeed uint64) ([]float64, int, error) {
		x := append([]float64(nil), xT...)
		lq, nfe, err := diffusion.SampleLogProb(sde, in.Score, in.Prior, x, opt, rand.New(rand.NewPCG(in.Seed, probeSeed)))
		if err != nil {
			return nil, nfe, err
		}
		q := perSample(lq, C)
		for i := range q {
			q[i] += in.Act.Eval(x[i*C*V:(i+1)*C*V]) + lnZ
		}
		return q, nfe, nil
	}
	fine, nfe, err := klOf(in.Opt, 0x6b1)
	if err != nil {
		return nil, fmt.Errorf("KL: %w", err)
	}
	rough, _, err := klOf(coarse, 0x6b1) // the same probes: the difference is the integration's
	if err != nil {
		return nil, fmt.Errorf("KL (coarse integration): %w", err)
	}
	kl, stat := losses.MeanStdErr(fine)
	kc, _ := losses.MeanStdErr(rough)
	ode := math.Abs(kl - kc)
	tot := math.Hypot(stat, ode)
	rep.KL = &[2]jsonNum{jsonNum(kl), jsonNum(tot)}
	rep.KLPerSite = &[2]jsonNum{jsonNum(kl / float64(V)), jsonNum(tot / float64(V))}
	s, o := jsonNum(stat), jsonNum(ode)
	rep.KLStatErr, rep.KLODEErr, rep.KLN, rep.KLNFE = &s, &o, k, nfe
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

func orDefault(v, d float64) float64 {
	if v == 0 {
		return d
	}
	return v
}

// perSample sums per-field values over the C channels of each sample.
func perSample(v []float64, C int) []float64 {
	out := make([]float64, len(v)/C)
	for i, x := range v {
		out[i/C] += x
	}
	return out
}

// diffusionEvalFlags are the flags of rgflow eval on a diffusion run.
type diffusionEvalFlags struct {
	fs           *flag.FlagSet
	n, klN       int
	steps        int
	rtol         float64
	probes       int
	batch        int
	data         string
	seed         uint64
	asJSON       bool
	wc           weightChoice
	forceHutchin bool
}

func newDiffusionEvalFlags(stderr io.Writer) *diffusionEvalFlags {
	f := &diffusionEvalFlags{fs: flag.NewFlagSet("eval", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(stderr)
	fs.IntVar(&f.n, "n", 256, "held-out samples for the DSM loss and the NLL")
	fs.IntVar(&f.klN, "kl-n", 256, "free field: probability-flow samples for KL(q‖p)")
	fs.StringVar(&f.data, "data", "", "held-out samples (phi (N, C, L, L) .npz; default: exact draws for a free field, fresh HMC chains otherwise)")
	fs.IntVar(&f.steps, "steps", 0, "probability-flow ODE: RK4 steps (0: adaptive RK45 at --rtol)")
	fs.Float64Var(&f.rtol, "rtol", 1e-5, "RK45 relative and absolute tolerance")
	fs.IntVar(&f.probes, "probes", 1, "Hutchinson probes (scores without an exact divergence: the CNN)")
	fs.BoolVar(&f.forceHutchin, "hutchinson", false, "use Hutchinson's estimator even where the divergence is exact")
	fs.IntVar(&f.batch, "batch", 256, "samples per forward graph of the score network")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed")
	fs.BoolVar(&f.asJSON, "json", false, "print one JSON object")
	f.wc.register(fs, stderr)
	return f
}

func runEvalDiffusion(dir string, args []string, stdout, stderr io.Writer) error {
	const cmd = "eval"
	f := newDiffusionEvalFlags(stderr)
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	switch {
	case f.fs.NArg() > 0:
		return fmt.Errorf("%s: unexpected argument %q after the run directory (flags only)", cmd, f.fs.Arg(0))
	case f.n < 2 || f.klN < 2:
		return fmt.Errorf("%s: --n=%d, --kl-n=%d, want both ≥ 2", cmd, f.n, f.klN)
	case f.steps < 0 || !(f.rtol > 0) || f.probes < 1 || f.batch < 1:
		return fmt.Errorf("%s: --steps=%d, --rtol=%v, --probes=%d, --batch=%d: want steps ≥ 0, rtol > 0, probes ≥ 1, batch ≥ 1", cmd, f.steps, f.rtol, f.probes, f.batch)
	}
	run, act, net, store, step, err := loadDiffusionRun(dir, cmd, f.wc.ema)
	if err != nil {
		return err
	}
	sde := net.Process()
	lat := sde.Lattice()
	C, L := net.Channels(), run.Physics.L
	var held []float64
	var src string
	if f.data != "" {
		var n int
		if held, n, err = readLatticeSamples(f.data, C, L, cmd); err != nil {
			return err
		}
		held, src = held[:min(n, f.n)*C*lat.V], f.data
	} else if held, src, _, err = heldOutSamples(run, act, lat, f.n, f.seed); err != nil {
		return fmt.Errorf("%s: held-out samples: %w", cmd, err)
	}
	score, closeScore, err := hostScore(net, store, min(f.batch, f.n))
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	defer closeScore()
	one, closeOne, err := hostScore(net, store, 1)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	defer closeOne()
	prior, err := diffusion.Prior(sde, run.V0)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	in := diffusionEvalInput{Act: act, Net: net, Score: score, Score1: one, Prior: prior, Weighting: run.Weighting,
		TMin: run.TMin, TSampling: run.TSampling, HeldOut: held, HeldOutSrc: src, KLN: f.klN, Seed: f.seed,
		Opt: diffusion.LikelihoodOptions{Steps: f.steps, RTol: f.rtol, ATol: f.rtol, Probes: f.probes, Hutchinson: f.forceHutchin}}
	if run.Physics.Action == "free" {
		in.FreeM2 = run.Physics.M2
	}
	rep, err := evaluateDiffusion(in)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	rep.Run, rep.Step = dir, step
	if f.asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	pm := func(v [2]jsonNum) string {
		return fmt.Sprintf("%s ± %s", fmtNum(float64(v[0])), fmtNum(float64(v[1])))
	}
	fmt.Fprintf(stdout, "evaluation of %s (step %d) on %d held-out samples (%s), %.1fs:\n", dir, step, rep.N, rep.HeldOut, rep.Seconds)
	fmt.Fprintf(stdout, "  DSM loss                 %s\n", pm(rep.DSMLoss))
	fmt.Fprintf(stdout, "  PF-ODE NLL per site      %s   (%s, %d score evaluations, divergence %s)\n", pm(rep.NLL), rep.Integrator, rep.NFE, rep.Divergence)
	if rep.ExactNLL != nil {
		fmt.Fprintf(stdout, "  exact NLL per site       %s\n", pm(*rep.ExactNLL))
		fmt.Fprintf(stdout, "  KL(q‖p)                  %s nats (%s per site; statistical %s, integration %s; %d samples)\n",
			pm(*rep.KL), pm(*rep.KLPerSite), fmtNum(float64(*rep.KLStatErr)), fmtNum(float64(*rep.KLODEErr)), rep.KLN)
	}
	return nil
}
