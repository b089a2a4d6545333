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
	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/losses"
	"rgflow/models/diffusion"
	"rgflow/train"
)

// diffusionRun is a renormalizing-diffusion run: a learned score trained by denoising score matching on
// samples of a lattice action, saved as config.json and in every checkpoint.
type diffusionRun struct {
	Kind    string      `json:"kind"` // "diffusion"
	Physics actionSpec  `json:"physics"`
	Process processSpec `json:"process"`
	Score   scoreSpec   `json:"score"`
	Data    string      `json:"data"`
	// V0 is the data's variance per mode coordinate (averaged over channels): the reference of the score
	// network's scale and the variance of the Gaussian prior's start.
	V0        []float64 `json:"v0"`
	Weighting string    `json:"weighting"`
	TMin      float64   `json:"t_min"`
	// TSampling is uniform or importance (losses.DSM).
	TSampling string `json:"t_sampling,omitempty"`
	// Chains > 0 trains on that many HMC chains that advance during training instead of a sample file.
	Chains          int       `json:"chains,omitempty"`
	ChainEvery      int       `json:"chain_every,omitempty"`
	ChainThermalize int       `json:"chain_thermalize,omitempty"`
	Train           trainSpec `json:"train"`
}

// processSpec selects the forward process.
type processSpec struct {
	Name     string  `json:"name"` // carosso, polchinski, vp, ve
	Horizon  float64 `json:"horizon"`
	Omega    float64 `json:"omega"`
	Mu2      float64 `json:"mu2"`
	PolM2    float64 `json:"polchinski_m2"`
	BetaMin  float64 `json:"beta_min"`
	BetaMax  float64 `json:"beta_max"`
	SigmaMin float64 `json:"sigma_min"`
	SigmaMax float64 `json:"sigma_max"`
	// Gamma ≠ 0 rescales the field, ψ = e^{γt} φ (the "renormalized" variant of the process).
	Gamma float64 `json:"gamma,omitempty"`
}

// scoreSpec selects the score network.
type scoreSpec struct {
	Kind  string `json:"kind"` // cnn, effective or effective+cnn
	Width int    `json:"width"`
	Depth int    `json:"depth"`
	D4    bool   `json:"d4"`
	// GlobalMean feeds the lattice average of the field as extra input channels.
	GlobalMean bool `json:"global_mean,omitempty"`
	// ZeroQuartic adds the zero-mode quartic (Σφ)⁴/V³ to the effective action (new runs: on; absent from
	// the configs of runs saved before it existed, which therefore load without it).
	ZeroQuartic bool `json:"zero_quartic,omitempty"`
	// GaussianBase learns the score as a residual over the exact score of the Gaussian with the data's
	// spectrum V0 (diffusion.GaussianResidual).
	GaussianBase bool `json:"gaussian_base,omitempty"`
}

func defaultDiffusionRun() diffusionRun {
	return diffusionRun{
		Kind:    "diffusion",
		Physics: actionSpec{Action: "free", L: 8, M2: 0.5, Convention: "standard"},
		Process: processSpec{Name: "carosso", Horizon: 4, Omega: 1, Mu2: 1, PolM2: 1, BetaMin: 0.1, BetaMax: 20, SigmaMin: 0.01, SigmaMax: 10},
		Score:   scoreSpec{Kind: "cnn", Width: 16, Depth: 2, ZeroQuartic: true},
		// 0.02 keeps the smallest noise variance Ω·t_min well below the data's per-mode variance.
		Weighting: "variance", TMin: 0.02, TSampling: "uniform", ChainEvery: 1, ChainThermalize: 500,
		Train: trainSpec{Steps: 2000, Batch: 64, LR: 2e-3, Schedule: "cosine", Warmup: -1, FinalLR: 1e-5, Clip: 100,
			Seed: 1, Dtype: "float64", LogEvery: 100, CheckpointEvery: 500, Keep: 3},
	}
}

const diffusionUsage = `usage: rgflow train diffusion --data samples.npz [flags]
       rgflow train diffusion --chains K [flags]
       rgflow train diffusion --resume runs/NAME [flags that override the saved ones]

Trains a score network s_θ(x, t) by denoising score matching on lattice samples (the phi array of
rgflow mcmc --out samples.npz, or K HMC chains that advance during training, their state in every
checkpoint) under a linear forward process that acts mode by mode (carosso heat flow, polchinski with a
mass regulator, vp, ve). Sample the run with rgflow sample RUN --sampler em|pc|ancestral|ode, measure it with
rgflow eval RUN and rgflow flow RUN.

flags:
`

func (f *diffusionFlags) flagSet() *flag.FlagSet   { return f.fs }
func (f *diffusionFlags) sessionOf() *sessionFlags { return &f.session }

type diffusionFlags struct {
	fs      *flag.FlagSet
	session sessionFlags
}

func newDiffusionFlags(run *diffusionRun, stderr io.Writer) *diffusionFlags {
	f := &diffusionFlags{fs: flag.NewFlagSet("train diffusion", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), diffusionUsage); fs.PrintDefaults() }
	run.Physics.register(fs)
	f.session.register(fs)
	registerTrainFlags(fs, &run.Train)
	p := &run.Process
	fs.StringVar(&p.Name, "process", p.Name, "forward process: carosso, polchinski, vp or ve")
	fs.Float64Var(&p.Horizon, "horizon", p.Horizon, "end time T of the carosso and polchinski processes (vp and ve run on [0, 1])")
	fs.Float64Var(&p.Omega, "omega", p.Omega, "carosso: noise strength Ω")
	fs.Float64Var(&p.Mu2, "mu2", p.Mu2, "carosso: zero-mode regulator μ² (0: Brownian zero mode); polchinski: the mass regulator's μ²")
	fs.Float64Var(&p.PolM2, "polchinski-m2", p.PolM2, "polchinski: mass² of the propagator C = 1/(p̂²+m²)")
	fs.Float64Var(&p.BetaMin, "beta-min", p.BetaMin, "vp: β_min")
	fs.Float64Var(&p.BetaMax, "beta-max", p.BetaMax, "vp: β_max")
	fs.Float64Var(&p.SigmaMin, "sigma-min", p.SigmaMin, "ve: σ_min")
	fs.Float64Var(&p.SigmaMax, "sigma-max", p.SigmaMax, "ve: σ_max")
	fs.Float64Var(&p.Gamma, "gamma", p.Gamma, "renormalized variant: rescale the field by e^{γt} (ψ = e^{γt}φ, every mode; 0: off). Space rescaling p → b_t p is not available on a fixed lattice (see the README)")
	s := &run.Score
	fs.StringVar(&s.Kind, "score", s.Kind, "score network: cnn (periodic CNN with FiLM time conditioning), effective (−∇ of a learned action Σ f_i(t) O_i over φ², φ⁴, (∇φ)², the zero mode² and the zero mode⁴) or effective+cnn (the effective score plus a CNN remainder with a zero-initialised gain)")
	fs.IntVar(&s.Width, "width", s.Width, "CNN hidden channels; effective: hidden units of the MLP of t (effective+cnn: both)")
	fs.BoolVar(&s.ZeroQuartic, "zero-quartic", s.ZeroQuartic, "effective, effective+cnn: include the zero-mode quartic (Σφ)⁴/V³ with a learned coupling f₅(t) ≥ 0")
	fs.IntVar(&s.Depth, "depth", s.Depth, "CNN hidden layers")
	fs.BoolVar(&s.GlobalMean, "global-mean", s.GlobalMean, "give the CNN the field's lattice average as extra input channels (direct access to the zero mode)")
	fs.BoolVar(&s.GaussianBase, "gaussian-base", s.GaussianBase, "learn the score as a residual over the exact score of the Gaussian with the data's spectrum (the network learns only the interaction; needed for the polchinski flow, whose exact score spans many orders of magnitude between modes)")
	fs.BoolVar(&s.D4, "d4", s.D4, "average the CNN over the 8 lattice rotations and reflections (8× the cost)")
	fs.StringVar(&run.Data, "data", run.Data, "training samples: an .npz with phi (N, C, L, L), e.g. from rgflow mcmc --out")
	fs.StringVar(&run.Weighting, "weighting", run.Weighting, "loss weighting per mode: variance (λ = q) or likelihood (λ = b²)")
	fs.Float64Var(&run.TMin, "t-min", run.TMin, "smallest training time (t in [t-min, T])")
	fs.StringVar(&run.TSampling, "t-sampling", run.TSampling, "how t is drawn: uniform, or importance (density ∝ the target's size Σ λ/q, with the correction that keeps the objective's expectation)")
	fs.IntVar(&run.Chains, "chains", run.Chains, "train on this many HMC chains of the action that advance every step (instead of --data); sample j of a batch is chain j mod K")
	fs.IntVar(&run.ChainEvery, "chain-every", run.ChainEvery, "--chains: HMC trajectories per chain per training step")
	fs.IntVar(&run.ChainThermalize, "chain-thermalize", run.ChainThermalize, "--chains: warm-up trajectories per chain (step size tuned) before training")
	return f
}

func parseDiffusionRun(args []string, stderr io.Writer) (*diffusionRun, *diffusionFlags, error) {
	const cmd = "train diffusion"
	run, f, err := parseTrainRun(cmd, "diffusion", args, stderr, defaultDiffusionRun, newDiffusionFlags, func(r *diffusionRun) *trainSpec { return &r.Train })
	if err != nil {
		return nil, nil, err
	}
	run.Physics.noteSet(f.fs)
	if f.session.resume != "" {
		set := setFlags(f.fs)
		for _, n := range []string{"action", "L", "process", "score", "width", "depth", "d4", "global-mean", "zero-quartic", "gaussian-base", "data", "chains", "chain-thermalize"} {
			if set[n] {
				return nil, nil, fmt.Errorf("%s: --%s cannot change when resuming (it changes the model or its data)", cmd, n)
			}
		}
		f.session.note = run.Train.resolveHorizon(f.session.reschedule)
	}
	if err := run.Train.validate(cmd); err != nil {
		return nil, nil, err
	}
	if run.TSampling == "" { // runs saved before t sampling could be chosen
		run.TSampling = "uniform"
	}
	switch {
	case run.Chains < 0:
		return nil, nil, fmt.Errorf("%s: --chains=%d, want ≥ 1 (or 0 with --data)", cmd, run.Chains)
	case run.Chains > 0 && run.Data != "":
		return nil, nil, fmt.Errorf("%s: --data and --chains both given: train either on a sample file or on HMC chains", cmd)
	case run.Chains == 0 && run.Data == "":
		return nil, nil, fmt.Errorf("%s: --data is required: an .npz of samples (phi (N, C, L, L)), e.g. from rgflow mcmc --out samples.npz (or --chains K)", cmd)
	case run.Chains > 0 && f.session.workers > 1 && setFlags(f.fs)["workers"]:
		return nil, nil, fmt.Errorf("%s: --chains: the HMC chains advance once per step and cannot be split over --workers=%d; use one worker", cmd, f.session.workers)
	case run.Chains > 0 && (run.ChainEvery < 1 || run.ChainThermalize < 0):
		return nil, nil, fmt.Errorf("%s: --chain-every=%d, --chain-thermalize=%d, want ≥ 1 and ≥ 0", cmd, run.ChainEvery, run.ChainThermalize)
	case run.TSampling != "uniform" && run.TSampling != "importance":
		return nil, nil, fmt.Errorf("%s: --t-sampling %q, want uniform or importance", cmd, run.TSampling)
	}
	if !(run.TMin > 0) {
		return nil, nil, fmt.Errorf("%s: --t-min=%v, want t-min > 0 (and below the process's end time)", cmd, run.TMin)
	}
	if run.Chains > 0 {
		f.session.workers = 1 // the chains feed the whole batch of each step
	}
	return run, f, nil
}

// sde builds the run's forward process.
func (r *diffusionRun) sde(cmd string) (diffusion.SDE, error) {
	lat, err := diffusion.NewLattice(r.Physics.L)
	if err != nil {
		return nil, fmt.Errorf("%s: --L: %w", cmd, err)
	}
	p := r.Process
	var sde diffusion.SDE
	switch p.Name {
	case "carosso":
		sde, err = diffusion.NewCarosso(lat, p.Omega, p.Mu2, p.Horizon)
	case "polchinski":
		sde, err = diffusion.NewPolchinski(lat, diffusion.MassRegulator{Mu2: p.Mu2}, p.PolM2, p.Horizon)
	case "vp":
		sde, err = diffusion.NewVP(lat, p.BetaMin, p.BetaMax)
	case "ve":
		sde, err = diffusion.NewVE(lat, p.SigmaMin, p.SigmaMax)
	default:
		return nil, fmt.Errorf("%s: --process %q, want carosso, polchinski, vp or ve", cmd, p.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: --process %s: %w", cmd, p.Name, err)
	}
	if p.Gamma != 0 {
		if sde, err = diffusion.NewRescaled(sde, p.Gamma); err != nil {
			return nil, fmt.Errorf("%s: --gamma: %w", cmd, err)
		}
	}
	return sde, nil
}

// model builds the action, process and score network of a run (V0 must be set).
func (r *diffusionRun) model(cmd string) (lattice.Action, diffusion.GraphScore, error) {
	act, err := r.Physics.build(cmd)
	if err != nil {
		return nil, nil, err
	}
	sde, err := r.sde(cmd)
	if err != nil {
		return nil, nil, err
	}
	var eff *diffusion.EffectiveScore
	switch r.Score.Kind {
	case "cnn":
	case "effective", "effective+cnn":
		m2 := r.Physics.M2
		if !(m2 > 0) {
			m2 = 1
		}
		if eff, err = diffusion.NewEffectiveScore(sde, act.Channels(), r.Score.Width, m2); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", cmd, err)
		}
		eff.ZeroQuartic = r.Score.ZeroQuartic
		eff.Residual = r.Score.GaussianBase
		if r.Score.Kind == "effective" {
			return r.wrapBase(cmd, act, eff)
		}
		if r.Score.GlobalMean {
			return nil, nil, fmt.Errorf("%s: --global-mean with --score effective+cnn: the effective action already reads the zero mode", cmd)
		}
	default:
		return nil, nil, fmt.Errorf("%s: --score %q, want cnn, effective or effective+cnn", cmd, r.Score.Kind)
	}
	net, err := diffusion.NewCNNScore(sde, act.Channels(), r.Score.Width, r.Score.Depth, r.Score.D4, r.V0)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	net.GlobalMean = r.Score.GlobalMean
	if eff != nil {
		ec, err := diffusion.NewEffectiveCNNScore(eff, net)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", cmd, err)
		}
		return r.wrapBase(cmd, act, ec)
	}
	return r.wrapBase(cmd, act, net)
}

// wrapBase makes net a residual over the exact Gaussian score of V0 when the run asks for it.
func (r *diffusionRun) wrapBase(cmd string, act lattice.Action, net diffusion.GraphScore) (lattice.Action, diffusion.GraphScore, error) {
	if !r.Score.GaussianBase {
		return act, net, nil
	}
	res, err := diffusion.NewGaussianResidual(net, r.V0)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: --gaussian-base: %w", cmd, err)
	}
	return act, res, nil
}

// readLatticeSamples reads the phi array (N, C, L, L) of an .npz and checks its shape.
func readLatticeSamples(path string, C, L int, cmd string) ([]float64, int, error) {
	arrs, err := checkpoints.ReadNPZ(path)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: --data: %w", cmd, err)
	}
	var names []string
	for _, a := range arrs {
		names = append(names, a.Name)
		if a.Name != "phi" {
			continue
		}
		if len(a.Shape) != 4 || a.Shape[1] != C || a.Shape[2] != L || a.Shape[3] != L || a.Shape[0] < 1 {
			return nil, 0, fmt.Errorf("%s: --data %s: phi has shape %v, want (N, %d, %d, %d) for this action and --L", cmd, path, a.Shape, C, L, L)
		}
		var data []float64
		switch d := a.Data.(type) {
		case []float64:
			data = d
		case []float32:
			data = make([]float64, len(d))
			for i, v := range d {
				data[i] = float64(v)
			}
		default:
			return nil, 0, fmt.Errorf("%s: --data %s: phi holds %T, want float64 or float32", cmd, path, a.Data)
		}
		for i, v := range data {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, 0, fmt.Errorf("%s: --data %s: phi value %d is %v", cmd, path, i, v)
			}
		}
		return data, a.Shape[0], nil
	}
	return nil, 0, fmt.Errorf("%s: --data %s has no phi array (it has %s); write one with rgflow mcmc --out", cmd, path, strings.Join(names, ", "))
}

// chainSweeps is the number of HMC sweeps (advances of every chain) whose fields give the reference
// spectrum of a run trained on chains: 32768 fields in all (at least 8 sweeps). Successive sweeps of a chain
// are correlated (near a critical point over tens of trajectories), and the Gaussian base of
// --gaussian-base reproduces this spectrum mode by mode, so it must be measured on many more fields than a
// batch: 256 fields (16 sweeps of 16 chains) left single low modes of φ⁴ at L = 20 up to 80 % off, and the
// trained model sampled that error. Chain trajectories are cheap next to training (32768 at L = 20: about
// a second of CPU).
func chainSweeps(k int) int { return max(8, (32768+k-1)/k) }

// chainSpectrum thermalises the chains and returns the mean square per mode coordinate of their fields over
// chainSweeps advances (the chains go on from there), averaged over the lattice symmetries.
func chainSpectrum(lat *diffusion.Lattice, chains *losses.HMCChains, C int) ([]float64, error) {
	V := lat.V
	if chains.Size() != C*V {
		return nil, fmt.Errorf("chains hold fields of %d values, want C·V = %d", chains.Size(), C*V)
	}
	v, u := make([]float64, V), make([]float64, V)
	n := 0
	for range chainSweeps(chains.Len()) {
		if err := chains.Advance(); err != nil {
			return nil, err
		}
		for c := range chains.Len() {
			f := chains.Field(c)
			for ch := range C {
				lat.ToModes(u, f[ch*V:(ch+1)*V])
				for j, x := range u {
					v[j] += x * x
				}
				n++
			}
		}
	}
	for j := range v {
		v[j] /= float64(n)
	}
	if err := lat.SymmetrizeModes(v); err != nil {
		return nil, err
	}
	return v, nil
}

// modeVariance is the data's mean square per mode coordinate, averaged over samples, channels and the
// lattice symmetries (diffusion.Lattice.SymmetrizeModes: every action here is invariant under them).
func modeVariance(lat *diffusion.Lattice, data []float64) []float64 {
	V := lat.V
	v, u := make([]float64, V), make([]float64, V)
	n := len(data) / V
	for f := range n {
		lat.ToModes(u, data[f*V:(f+1)*V])
		for j, x := range u {
			v[j] += x * x
		}
	}
	for j := range v {
		v[j] /= float64(n)
	}
	_ = lat.SymmetrizeModes(v) // len(v) == lat.V by construction
	return v
}

func runTrainDiffusion(args []string, stdout, stderr io.Writer) error {
	const cmd = "train diffusion"
	run, f, err := parseDiffusionRun(args, stderr)
	if err != nil {
		return err
	}
	act, err := run.Physics.build(cmd)
	if err != nil {
		return err
	}
	C, L := act.Channels(), run.Physics.L
	lat, err := diffusion.NewLattice(L)
	if err != nil {
		return fmt.Errorf("%s: --L: %w", cmd, err)
	}
	var data []float64
	var n int
	var chains *losses.HMCChains
	source := run.Data
	if run.Chains > 0 {
		if chains, err = losses.NewHMCChains(act, losses.HMCChainsConfig{Chains: run.Chains, Seed: run.Train.Seed ^ 0xc4a1,
			Thermalize: run.ChainThermalize, Every: run.ChainEvery}); err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		n = run.Chains
		source = fmt.Sprintf("%d HMC chains", run.Chains)
		if run.V0 == nil { // a fresh run: thermalise, then the reference spectrum from the chains
			if run.V0, err = chainSpectrum(lat, chains, C); err != nil {
				return fmt.Errorf("%s: %w", cmd, err)
			}
		}
	} else {
		if data, n, err = readLatticeSamples(run.Data, C, L, cmd); err != nil {
			return err
		}
		if run.V0 == nil {
			run.V0 = modeVariance(lat, data)
		}
	}
	_, net, err := run.model(cmd)
	if err != nil {
		return err
	}
	dtype := tensor.Float64
	if run.Train.Dtype == "float32" {
		dtype = tensor.Float32
	}
	store := layers.NewStore(dtype, run.Train.Seed)
	obj := &losses.DSM{Net: net, Data: data, Weighting: run.Weighting, TMin: run.TMin, DataSeed: run.Train.Seed ^ 0xd5,
		TSampling: run.TSampling, Chains: chains}
	// Bind the parameters (and check the settings) before the Trainer does.
	if _, err := obj.Build(layers.NewScope(G.NewGraph(), store), 1); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	out := f.session.dir(fmt.Sprintf("diffusion-%s-L%d", run.Physics.Action, L))
	what := fmt.Sprintf("a %s score (width %d, depth %d) by DSM (%s weighting) under %s on %d samples of %s L=%d (%s",
		run.Score.Kind, run.Score.Width, run.Score.Depth, run.Weighting, net.Process().Name(), n, act.Name(), L, source)
	tr, done, err := runTraining(cmd, run, run.Train, f.session, out, store, obj, what, stdout, stderr)
	if err != nil || !done {
		return err
	}
	defer tr.Close()
	printNext(stdout, []string{"sample", out, "--n", "1000", "--sampler", "em", "--nfe", "200", "--json"})
	return nil
}

// diffusionSampleFlags are the flags of rgflow sample on a diffusion run.
type diffusionSampleFlags struct {
	fs      *flag.FlagSet
	n, nfe  int
	batch   int
	sampler string
	out     string
	seed    uint64
	asJSON  bool
	wc      weightChoice
	snr     float64
	tEnd    float64
}

func newDiffusionSampleFlags(stderr io.Writer) *diffusionSampleFlags {
	f := &diffusionSampleFlags{fs: flag.NewFlagSet("sample", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(stderr)
	fs.IntVar(&f.n, "n", 1000, "number of samples")
	fs.IntVar(&f.nfe, "nfe", 200, "score evaluations per sample (em, ancestral: steps; pc: 2 per step; ode: RK4, 4 per step)")
	fs.IntVar(&f.batch, "batch", 256, "samples per forward graph of the score network")
	fs.StringVar(&f.sampler, "sampler", "em", "em (reverse-SDE Euler–Maruyama), pc (predictor–corrector), ancestral (posterior-mean steps with the exact transition: exact for a Gaussian at any step count, no stiffness bias) or ode (probability flow, RK4)")
	fs.StringVar(&f.out, "out", "", "write the samples (phi (n, C, L, L)) to this .npz file")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed")
	fs.BoolVar(&f.asJSON, "json", false, "print the observables as JSON")
	fs.Float64Var(&f.snr, "snr", 0.16, "pc: the corrector's signal-to-noise ratio")
	fs.Float64Var(&f.tEnd, "t-end", 0, "time at which generation stops: 0 gives the data's distribution; a t > 0 gives the process's marginal at t (the network is trained on [t-min, T]; EM and PC never evaluate it at t-end itself)")
	f.wc.register(fs, stderr)
	return f
}

// diffusionSampleReport is the --json output of rgflow sample on a diffusion run.
type diffusionSampleReport struct {
	Run         string                `json:"run"`
	Step        int64                 `json:"step"`
	Sampler     string                `json:"sampler"`
	N           int                   `json:"n"`
	NFE         int                   `json:"nfe"`
	TEnd        float64               `json:"t_end"`
	Seconds     float64               `json:"seconds"`
	Observables map[string][2]jsonNum `json:"observables"`
	MMean       [2]jsonNum            `json:"m_mean"` // mean of the lattice average of the first channel
	// Couplings (effective-action runs): the learned f_i(t) and, for a free field, the local projection
	// of the exact Gaussian action at t.
	Couplings []couplingReport `json:"couplings,omitempty"`
}

type couplingReport struct {
	T    float64    `json:"t"`
	F    [5]jsonNum `json:"f"` // coefficients of Σφ², Σφ⁴, Σ(∇φ)², (Σφ)²/V, (Σφ)⁴/V³
	Free [5]jsonNum `json:"free_projection,omitempty"`
}

func runSampleDiffusion(dir string, args []string, stdout, stderr io.Writer) error {
	const cmd = "sample"
	f := newDiffusionSampleFlags(stderr)
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q after the run directory (flags only)", cmd, f.fs.Arg(0))
	}
	switch {
	case f.n < 2:
		return fmt.Errorf("%s: --n=%d, want ≥ 2", cmd, f.n)
	case f.batch < 1:
		return fmt.Errorf("%s: --batch=%d, want ≥ 1", cmd, f.batch)
	case f.sampler != "em" && f.sampler != "pc" && f.sampler != "ode" && f.sampler != "ancestral":
		return fmt.Errorf("%s: --sampler %q, want em, pc, ancestral or ode", cmd, f.sampler)
	case f.nfe < 1 || f.sampler == "pc" && f.nfe < 2 || f.sampler == "ode" && f.nfe < 4:
		return fmt.Errorf("%s: --nfe=%d is too small for --sampler %s (em ≥ 1, pc ≥ 2, ode ≥ 4)", cmd, f.nfe, f.sampler)
	}
	var run diffusionRun
	if err := loadRunConfig(dir, "diffusion", &run, cmd); err != nil {
		return err
	}
	act, net, err := run.model(cmd)
	if err != nil {
		return err
	}
	dtype := tensor.Float64
	if run.Train.Dtype == "float32" {
		dtype = tensor.Float32
	}
	store := layers.NewStore(dtype, run.Train.Seed)
	bs := layers.NewScope(G.NewGraph(), store) // binds the parameters so that the weights can be loaded
	if _, err := net.Build(bs, bs.Input("x", 1, net.InputChannels(), run.Physics.L, run.Physics.L), bs.Input("t", 1)); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	l, err := train.LoadRunWeights(store, dir, f.wc.ema)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	score, err := diffusion.NewNetScore(net, store, f.batch)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	defer score.Close()
	sde := net.Process()
	tEnd := f.tEnd
	if !(tEnd >= 0 && tEnd < sde.T()) {
		return fmt.Errorf("%s: --t-end=%v, want 0 ≤ t-end < T=%v", cmd, tEnd, sde.T())
	}
	prior, err := diffusion.Prior(sde, run.V0)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	C, L := net.Channels(), run.Physics.L
	V := L * L
	x := make([]float64, f.n*C*V)
	rng := rand.New(rand.NewPCG(f.seed, 0xd1ff))
	if err := prior.Sample(rng, x); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	start := time.Now()
	var nfe int
	switch f.sampler {
	case "em":
		nfe, err = diffusion.EulerMaruyama(sde, score, x, f.nfe, tEnd, rng)
	case "pc":
		nfe, err = diffusion.PredictorCorrector(sde, score, x, f.nfe/2, tEnd, f.snr, 1, rng)
	case "ode":
		nfe, err = diffusion.ProbabilityFlowRK4(sde, score, x, sde.T(), tEnd, f.nfe/4)
	case "ancestral":
		nfe, err = diffusion.Ancestral(sde, score, run.V0, x, sde.T(), tEnd, f.nfe, rng)
	}
	if err != nil {
		return fmt.Errorf("%s: %s sampler: %w", cmd, f.sampler, err)
	}
	secs := time.Since(start).Seconds()
	obs := lattice.NewObserver(act, 1)
	ms := make([]float64, f.n)
	for i := range f.n {
		phi := x[i*C*V : (i+1)*C*V]
		obs.Measure(0, phi)
		m := 0.0
		for _, v := range phi[:V] {
			m += v
		}
		ms[i] = m / float64(V)
	}
	res, err := obs.Results(lattice.StatsOptions{})
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	mm, me := losses.MeanStdErr(ms)
	rep := diffusionSampleReport{Run: dir, Step: l.Step, Sampler: f.sampler, N: f.n, NFE: nfe, TEnd: tEnd, Seconds: secs,
		Observables: map[string][2]jsonNum{}, MMean: [2]jsonNum{jsonNum(mm), jsonNum(me)}}
	for _, o := range res.Observables {
		rep.Observables[o.Name] = [2]jsonNum{jsonNum(o.Value), jsonNum(o.Err)}
	}
	if e := effectivePart(net); e != nil {
		if rep.Couplings, err = effectiveCouplings(e, store, run); err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
	}
	if f.out != "" {
		if err := checkpoints.WriteNPZ(f.out, []checkpoints.Array{{Name: "phi", Shape: []int{f.n, C, L, L}, Data: x}}); err != nil {
			return fmt.Errorf("%s: --out: %w", cmd, err)
		}
	}
	if f.asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	fmt.Fprintf(stdout, "%d samples of %s (step %d) by %s, %d score evaluations, t_end=%g, %.1fs\n", f.n, dir, l.Step, f.sampler, nfe, tEnd, secs)
	fmt.Fprintf(stdout, "  m_mean  %s ± %s\n", fmtNum(mm), fmtNum(me))
	for _, o := range res.Observables {
		fmt.Fprintf(stdout, "  %-8s %s ± %s\n", o.Name, fmtNum(o.Value), fmtNum(o.Err))
	}
	for _, c := range rep.Couplings {
		fmt.Fprintf(stdout, "  t=%-6.3g f(φ², φ⁴, (∇φ)², M²/V, M⁴/V³) = %s, %s, %s, %s, %s", c.T, fmtNum(float64(c.F[0])), fmtNum(float64(c.F[1])), fmtNum(float64(c.F[2])), fmtNum(float64(c.F[3])), fmtNum(float64(c.F[4])))
		if run.Physics.Action == "free" {
			fmt.Fprintf(stdout, "   exact free projection %s, 0, %s, %s, 0", fmtNum(float64(c.Free[0])), fmtNum(float64(c.Free[2])), fmtNum(float64(c.Free[3])))
		}
		fmt.Fprintln(stdout)
	}
	if f.out != "" {
		fmt.Fprintf(stdout, "wrote phi %v to %s\n", []int{f.n, C, L, L}, f.out)
	}
	return nil
}

// isDiffusionRun reports whether dir holds a diffusion run (false when it holds no readable run config).
func isDiffusionRun(dir string) bool {
	if strings.HasPrefix(dir, "-") {
		return false
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoints")); err != nil {
		return false
	}
	kind, _, err := runConfig(dir, "sample")
	return err == nil && kind == "diffusion"
}

// effectiveCouplings reports the learned couplings at 6 times from t_min to T and, for a free field, the
// local projection of the exact action.
func effectiveCouplings(e *diffusion.EffectiveScore, store *layers.Store, run diffusionRun) ([]couplingReport, error) {
	T := e.SDE.T()
	return couplingsAt(e, store, &run, []float64{0, run.TMin, 0.1 * T, 0.25 * T, 0.5 * T, T})
}

// effectivePart returns the effective action of an effective or effective+cnn score (nil for others).
func effectivePart(net diffusion.GraphScore) *diffusion.EffectiveScore {
	switch n := diffusion.Unwrap(net).(type) {
	case *diffusion.EffectiveScore:
		return n
	case *diffusion.EffectiveCNNScore:
		return n.Eff
	}
	return nil
}
