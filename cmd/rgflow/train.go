package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	G "gorgonia.org/gorgonia"

	"rgflow/checkpoints"
	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/losses"
	"rgflow/models"
	"rgflow/train"
)

// latticeRun is everything a lattice run needs, saved as config.json and in every checkpoint; resuming
// restores it and then applies the flags given explicitly.
type latticeRun struct {
	Kind    string        `json:"kind"`
	Physics actionSpec    `json:"physics"`
	Model   models.Config `json:"model"`
	Train   trainSpec     `json:"train"`
}

// trainSpec are the optimisation settings of a run.
type trainSpec struct {
	Steps           int64   `json:"steps"`
	Batch           int     `json:"batch"`
	LR              float64 `json:"lr"`
	Schedule        string  `json:"schedule"`
	Warmup          int64   `json:"warmup"`
	FinalLR         float64 `json:"final_lr"`
	Clip            float64 `json:"clip"`
	Seed            uint64  `json:"seed"`
	Dtype           string  `json:"dtype"`
	Symmetrize      bool    `json:"symmetrize"`
	BetaStart       float64 `json:"beta_start"`
	BetaSteps       int64   `json:"beta_steps"`
	LogEvery        int64   `json:"log_every"`
	CheckpointEvery int64   `json:"checkpoint_every"`
	Keep            int     `json:"keep"`
	EvalSamples     int     `json:"eval_samples"` // --eval-n of a lattice run (the saved name predates the flag's)
	EMADecay        float64 `json:"ema_decay,omitempty"`
	// Horizon is the step at which a cosine schedule reaches FinalLR: the run's --steps when it started, kept
	// when a resumed run is extended to a larger --steps (the extra steps run at FinalLR) unless --reschedule
	// stretches the cosine to the new --steps. 0 (configs saved before it existed): Steps.
	Horizon int64 `json:"horizon,omitempty"`
}

// defaultLatticeRun is the README's main job: NeuralRG on real φ⁴ at the AKS point L=8, a few minutes on
// two cores.
func defaultLatticeRun() latticeRun {
	return latticeRun{
		Kind:    "lattice",
		Physics: defaultActionSpec(),
		Model:   models.Config{Preset: "neuralrg"},
		Train: trainSpec{Steps: 2000, Batch: 256, LR: 1e-3, Schedule: "cosine", Warmup: -1, FinalLR: 1e-5, Clip: 100,
			Seed: 1, Dtype: "float64", Symmetrize: true, LogEvery: 100, CheckpointEvery: 500, Keep: 3, EvalSamples: 8192},
	}
}

const trainUsage = `usage: rgflow train lattice [flags]        (rgflow train images -h for images)
       rgflow train lattice --resume runs/NAME [flags that override the saved ones]

Trains a hierarchical RG flow on a lattice action by reverse KL (variational free energy). With no flags it
trains NeuralRG on real φ⁴ at the AKS point (L=8, m²=−4, λ=1.502 in the standard convention
S = Σ[½(∂φ)² + ½m²φ² + λφ⁴]; λ_A = 6.008 in AKS's, λ = λ_A/4) and reports the free energy, the
importance-sampled ln Z and the effective sample size. --resume with a larger --steps keeps a cosine
schedule's end (the new steps run at --final-lr) unless --reschedule stretches it.

flags:
`

// runTrain dispatches rgflow train SUBJECT.
func runTrain(args []string, stdout, stderr io.Writer) error {
	if helpRequested(args) {
		subject := ""
		if len(args) > 0 && (args[0] == "lattice" || args[0] == "images" || args[0] == "diffusion") {
			subject = args[0]
		}
		if subject == "diffusion" && len(args) > 1 && args[1] == "images" {
			subject = "diffusion images"
		}
		return printHelp(stdout, "train", subject)
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, trainUsage)
		return errors.New("train: say what to train on: rgflow train lattice|images|diffusion [flags]")
	}
	switch args[0] {
	case "lattice":
		return runTrainLattice(args[1:], stdout, stderr)
	case "images":
		return runTrainImages(args[1:], stdout, stderr)
	case "diffusion":
		if len(args) > 1 && args[1] == "images" {
			return runTrainImgDiff(args[2:], stdout, stderr)
		}
		return runTrainDiffusion(args[1:], stdout, stderr)
	default:
		return fmt.Errorf("train: unknown subject %q (want lattice, images or diffusion)", args[0])
	}
}

// sessionFlags are the flags of one training session that are not part of the run's config.
type sessionFlags struct {
	resume, out string
	stopAfter   int64
	timeLimit   time.Duration // wall time of this session (0: none)
	cpuLimit    time.Duration // CPU time of this process in this session (0: none)
	reschedule  bool
	workers     int
	note        string // what resuming does to the schedule, printed when the session starts
	// onCheckpoint are extra hooks after each checkpoint (not a flag: set by the command, e.g. the ODE
	// flows' round-trip check).
	onCheckpoint []train.Hook
}

func (f *sessionFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.resume, "resume", "", "continue the run in this directory from its newest valid checkpoint (it writes there: --out, if given, must name the same directory)")
	fs.StringVar(&f.out, "out", "", "run directory (default runs/<what>-<time>)")
	fs.Int64Var(&f.stopAfter, "stop-after", 0, "stop after this many steps of this session, with a checkpoint (for time-limited jobs; 0: run to --steps)")
	fs.DurationVar(&f.timeLimit, "time-limit", 0, "stop with a checkpoint once this session has trained for this wall time, e.g. 30m (0: no limit; the step under way finishes first)")
	fs.DurationVar(&f.cpuLimit, "cpu-limit", 0, "stop with a checkpoint once this process has used this much CPU time training in this session, e.g. 60m = 30 minutes on 2 busy cores (0: no limit); equal budgets on a shared machine")
	registerWorkers(fs, &f.workers, "worker goroutines, each with its own graph over a shard of the batch (the global --batch is fixed: the numbers agree to rounding on any count; under mpirun: per process)")
	fs.BoolVar(&f.reschedule, "reschedule", false, "with --resume and a larger --steps: stretch the cosine schedule to the new --steps (default: keep the run's schedule, the extra steps run at --final-lr)")
}

// check rejects session flags that contradict each other; cmd names the command in errors.
func (f sessionFlags) check(cmd string) error {
	if f.resume != "" && f.out != "" && filepath.Clean(f.out) != filepath.Clean(f.resume) {
		return fmt.Errorf("%s: --resume %s continues that run in its own directory, but --out names %s; drop --out (or copy the run directory to %s and resume the copy)",
			cmd, f.resume, f.out, f.out)
	}
	if err := checkWorkers(cmd, f.workers); err != nil {
		return err
	}
	if f.timeLimit < 0 || f.cpuLimit < 0 {
		return fmt.Errorf("%s: --time-limit %s, --cpu-limit %s: a limit must be ≥ 0 (0: none)", cmd, f.timeLimit, f.cpuLimit)
	}
	if f.cpuLimit > 0 {
		if _, ok := processCPU(); !ok {
			return fmt.Errorf("%s: --cpu-limit: this operating system does not report the process's CPU time; use --time-limit", cmd)
		}
	}
	if f.reschedule && f.resume == "" {
		return fmt.Errorf("%s: --reschedule only applies to a resumed run (--resume DIR --steps N --reschedule)", cmd)
	}
	return nil
}

// modelFlags are the preset and size knobs; they change the saved model config only when given.
type modelFlags struct {
	preset, hidden, engine          string
	depth, repeat, width, resBlocks int
	inputActNorm                    bool
	odeSteps                        int
	odeKinetic, odeJacobian         float64
}

func (f *modelFlags) register(fs *flag.FlagSet, preset string) {
	fs.StringVar(&f.preset, "preset", preset, "model preset: "+strings.Join(models.PresetNames(), ", "))
	fs.IntVar(&f.depth, "depth", 0, "affine couplings per block bijector, every level (default: the preset's)")
	fs.IntVar(&f.repeat, "repeat", 0, "disentangler+decimator pairs per level (default: the preset's)")
	fs.StringVar(&f.hidden, "hidden", "", "MLP conditioner widths, e.g. 10,10,10 (default: the preset's)")
	fs.IntVar(&f.width, "width", 0, "residual-MLP conditioner width (default: the preset's)")
	fs.IntVar(&f.resBlocks, "res-blocks", -1, "residual blocks per conditioner (default: the preset's)")
	fs.BoolVar(&f.inputActNorm, "input-actnorm", false, "a per-site ActNorm before the hierarchy, initialised from data (images)")
	fs.StringVar(&f.engine, "engine", "", engineUsage)
	fs.IntVar(&f.odeSteps, "ode-steps", 0, "fixed RK4 steps over t ∈ [0, 1] of the ode- presets (per level for ode-rg; default: the preset's)")
	fs.Float64Var(&f.odeKinetic, "ode-kinetic", 0, "weight λ of the kinetic-energy regulariser λ∫|v|²dt added to the loss of the ode- presets (0: off)")
	fs.Float64Var(&f.odeJacobian, "ode-jacobian", 0, "weight W of the Jacobian regulariser W∫‖εᵀ∂v/∂x‖²dt (Hutchinson's estimate of the Frobenius norm, a fresh Gaussian probe ε per sample and integration) added to the reverse-KL loss of the ode- presets (0: off)")
}

const engineUsage = "graph or fused: run the block bijectors as Gorgonia's graph of elementary ops or as one fused op with a hand-written backward pass (same parameters, same numbers; default: fused where there is a fused kernel, the mlp and resmlp conditioners and the ode-gerdes kernel field; graph otherwise)"

// overrideEngine applies --engine (when given) to a model config loaded from a run, and validates it.
func overrideEngine(m *models.Config, engine, cmd string) error {
	if engine != "" {
		m.Engine = engine
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	return nil
}

// apply resolves the model config: the preset when rebuild (a fresh run, or --preset or the lattice changed),
// then the size flags given explicitly.
func (f *modelFlags) apply(m *models.Config, set map[string]bool, rebuild bool, L, channels int, seed uint64, cmd string) error {
	if rebuild {
		cfg, err := models.Preset(f.preset, L, channels)
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		cfg.MaskSeed = seed
		*m = cfg
	}
	if set["depth"] {
		m.Depths = []int{f.depth}
	}
	if set["repeat"] {
		m.Repeat = f.repeat
	}
	if set["hidden"] {
		var hs []int
		for _, p := range strings.Split(f.hidden, ",") {
			h, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil {
				return fmt.Errorf("%s: --hidden %q: %q is not an integer", cmd, f.hidden, p)
			}
			hs = append(hs, h)
		}
		m.Hidden = hs
	}
	if set["width"] {
		m.Width = f.width
	}
	if set["res-blocks"] {
		m.ResBlocks = f.resBlocks
	}
	if set["input-actnorm"] {
		m.InputActNorm = f.inputActNorm
	}
	if set["engine"] {
		m.Engine = f.engine
	}
	if set["ode-steps"] {
		if m.ODE == nil {
			return fmt.Errorf("%s: --ode-steps applies to the ode- presets, not %s", cmd, m.Preset)
		}
		m.ODE.Steps = f.odeSteps
	}
	if set["ode-kinetic"] {
		if m.ODE == nil {
			return fmt.Errorf("%s: --ode-kinetic applies to the ode- presets, not %s", cmd, m.Preset)
		}
		m.ODE.Kinetic = f.odeKinetic
	}
	if set["ode-jacobian"] {
		if m.ODE == nil {
			return fmt.Errorf("%s: --ode-jacobian applies to the ode- presets, not %s", cmd, m.Preset)
		}
		if cmd == "train images" && f.odeJacobian != 0 {
			return fmt.Errorf("%s: --ode-jacobian applies to the reverse-KL loss of train lattice; the image likelihood takes no regularisers", cmd)
		}
		m.ODE.Jacobian = f.odeJacobian
		if m.ODE.Jacobian > 0 && !set["engine"] && m.Engine == models.EngineFused {
			m.Engine = models.EngineGraph // the regulariser needs second derivatives, which the fused ODE lacks
		}
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	return nil
}

// registerTrainFlags defines the optimisation flags on fs with t's values as defaults.
func registerTrainFlags(fs *flag.FlagSet, t *trainSpec) {
	fs.Int64Var(&t.Steps, "steps", t.Steps, "total optimiser steps of the run (a resumed run continues up to this)")
	fs.IntVar(&t.Batch, "batch", t.Batch, "batch size")
	fs.Float64Var(&t.LR, "lr", t.LR, "peak learning rate")
	fs.StringVar(&t.Schedule, "schedule", t.Schedule, "learning-rate schedule: cosine or constant")
	fs.Int64Var(&t.Warmup, "warmup", t.Warmup, "linear warm-up steps (cosine schedule; -1: min(50, steps/10))")
	fs.Float64Var(&t.FinalLR, "final-lr", t.FinalLR, "learning rate at the last step (cosine schedule)")
	fs.Float64Var(&t.Clip, "clip", t.Clip, "clip the global gradient norm to this (0: off)")
	fs.Uint64Var(&t.Seed, "seed", t.Seed, "random seed (weights, masks, noise)")
	fs.StringVar(&t.Dtype, "dtype", t.Dtype, "float64 or float32")
	fs.Int64Var(&t.LogEvery, "log-every", t.LogEvery, "log period in steps")
	fs.Int64Var(&t.CheckpointEvery, "checkpoint-every", t.CheckpointEvery, "checkpoint period in steps")
	fs.IntVar(&t.Keep, "keep", t.Keep, "checkpoints to keep")
	fs.Float64Var(&t.EMADecay, "ema-decay", t.EMADecay, "keep a moving average of the weights with this decay, e.g. 0.999 (0: off); sample, eval and latents use it")
}

// latticeFlags binds a lattice run's settings to a flag set; parsing sets only the flags given.
func (f *latticeFlags) flagSet() *flag.FlagSet   { return f.fs }
func (f *latticeFlags) sessionOf() *sessionFlags { return &f.session }

type latticeFlags struct {
	fs      *flag.FlagSet
	session sessionFlags
	model   modelFlags
	run     *latticeRun
}

func newLatticeFlags(run *latticeRun, stderr io.Writer) *latticeFlags {
	f := &latticeFlags{fs: flag.NewFlagSet("train lattice", flag.ContinueOnError), run: run}
	fs := f.fs
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), trainUsage); fs.PrintDefaults() }
	run.Physics.register(fs)
	f.session.register(fs)
	f.model.register(fs, run.Model.Preset)
	t := &run.Train
	registerTrainFlags(fs, t)
	fs.BoolVar(&t.Symmetrize, "symmetrize", t.Symmetrize, "Z₂-symmetrise the model, q_s(x) = ½[q(x)+q(−x)] (Z₂ actions only)")
	fs.Float64Var(&t.BetaStart, "beta-start", t.BetaStart, "anneal β from this to 1 (with --beta-steps)")
	fs.Int64Var(&t.BetaSteps, "beta-steps", t.BetaSteps, "steps over which β reaches 1 (0: no annealing)")
	fs.IntVar(&t.EvalSamples, "eval-n", t.EvalSamples, "flow samples for the evaluation printed at the end (0: none)")
	deprecatedAlias(fs, "eval-samples", "eval-n", stderr)
	return f
}

// trainFlags is what parseTrainRun needs of a train command's flags: the flag set and the session flags.
type trainFlags interface {
	flagSet() *flag.FlagSet
	sessionOf() *sessionFlags
}

// parseTrainRun parses a train command's flags in two passes over args. The first, over throw-away defaults,
// only learns --resume and checks the session flags; the second parses over the resumed run's saved config
// (of kind, its training horizon kept) or the defaults, so explicitly given flags apply on top of either.
func parseTrainRun[R any, F trainFlags](cmd, kind string, args []string, stderr io.Writer, defaults func() R,
	newFlags func(*R, io.Writer) F, train func(*R) *trainSpec) (*R, F, error) {
	var none F
	probe := defaults()
	pf := newFlags(&probe, io.Discard)
	if err := pf.flagSet().Parse(args); err != nil {
		return nil, none, err
	}
	if pf.flagSet().NArg() > 0 {
		return nil, none, fmt.Errorf("%s: unexpected argument %q (flags only)", cmd, pf.flagSet().Arg(0))
	}
	if err := pf.sessionOf().check(cmd); err != nil {
		return nil, none, err
	}
	run := defaults()
	if resume := pf.sessionOf().resume; resume != "" {
		var saved R
		if err := loadRunConfig(resume, kind, &saved, cmd); err != nil {
			return nil, none, err
		}
		run = saved
		train(&run).keepHorizon()
	}
	f := newFlags(&run, stderr)
	if err := f.flagSet().Parse(args); err != nil {
		return nil, none, err
	}
	return &run, f, nil
}

// parseLatticeRun resolves a run's settings: the defaults, or the saved config when resuming, with the
// explicitly given flags applied on top.
func parseLatticeRun(args []string, stderr io.Writer) (*latticeRun, *latticeFlags, error) {
	// First pass: only to learn --resume.
	run, f, err := parseTrainRun("train lattice", "lattice", args, stderr, defaultLatticeRun, newLatticeFlags, func(r *latticeRun) *trainSpec { return &r.Train })
	if err != nil {
		return nil, nil, err
	}
	run.Physics.noteSet(f.fs)
	set := setFlags(f.fs)
	channels := 1
	if run.Physics.Action == "o2" {
		channels = 2
	}
	rebuild := f.session.resume == "" || set["preset"] || set["L"] || set["action"]
	if L := run.Physics.L; L >= 2 && L%2 == 0 && L&(L-1) != 0 {
		return nil, nil, fmt.Errorf("train lattice: --L %d: the hierarchical (MERA) flows need L a power of two (4, 8, 16, …); "+
			"rgflow mcmc takes any even L", L)
	}
	if err := f.model.apply(&run.Model, set, rebuild, run.Physics.L, channels, run.Train.Seed, "train lattice"); err != nil {
		return nil, nil, err
	}
	if f.session.resume != "" {
		f.session.note = run.Train.resolveHorizon(f.session.reschedule)
	}
	return run, f, run.validate()
}

// setFlags is the set of flags given explicitly on fs.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	return set
}

// loadRunConfig reads the config saved in a run directory's newest checkpoint into dst, checking its kind.
func loadRunConfig(dir, kind string, dst any, cmd string) error {
	k, raw, err := runConfig(dir, cmd)
	if err != nil {
		return err
	}
	if k != kind {
		return fmt.Errorf("%s: %s is a %q run, not a %s run", cmd, dir, k, kind)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%s: %s: the checkpoint's config does not parse: %w", cmd, dir, err)
	}
	return nil
}

// runConfig reads the config saved in a run directory's newest checkpoint and its kind ("lattice" or
// "images").
func runConfig(dir, cmd string) (kind string, raw []byte, err error) {
	if raw, err = train.CheckpointConfig(dir); err != nil {
		return "", nil, fmt.Errorf("%s: %s: %w", cmd, dir, err)
	}
	var k struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(raw, &k); err != nil {
		return "", nil, fmt.Errorf("%s: %s: the checkpoint's config does not parse: %w", cmd, dir, err)
	}
	return k.Kind, raw, nil
}

// weightChoice is the --ema flag of the commands that load a run's weights, and where they say which
// weights they use; with the --engine they run them with (empty: the run's).
type weightChoice struct {
	ema      bool
	log      io.Writer
	engine   string
	odeSteps int // ode- runs: integrate with this many steps instead of the run's (0: the run's)
}

func (w *weightChoice) register(fs *flag.FlagSet, log io.Writer) {
	w.log = log
	fs.BoolVar(&w.ema, "ema", true, "use the moving average of the weights when the checkpoint has one (--ema=false: the raw weights)")
	fs.StringVar(&w.engine, "engine", "", "graph or fused: run the flow with this engine instead of the run's (the same parameters and numbers; fused only for mlp and resmlp conditioners)")
}

// loadWeights binds the flow's parameters into store, loads the newest checkpoint's weights (the moving
// average when the checkpoint has one and wc asks for it) and says which on wc.log.
func loadWeights(flow *models.Flow, store *layers.Store, dir, cmd string, wc weightChoice) (int64, error) {
	if err := bindFlow(flow, store); err != nil {
		return 0, err
	}
	l, err := train.LoadRunWeights(store, dir, wc.ema)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", cmd, err)
	}
	if wc.log != nil {
		switch {
		case l.EMA:
			fmt.Fprintf(wc.log, "%s: using the EMA weights of step %d (decay %v, %d updates; --ema=false for the raw weights)\n",
				cmd, l.Step, l.EMADecay, l.EMAUpdates)
		case l.HasEMA:
			fmt.Fprintf(wc.log, "%s: using the raw weights of step %d (--ema=false; the checkpoint also has EMA weights)\n", cmd, l.Step)
		default:
			fmt.Fprintf(wc.log, "%s: using the raw weights of step %d (the checkpoint has no EMA weights)\n", cmd, l.Step)
		}
	}
	return l.Step, nil
}

// dispatchRun calls onImages for a run directory (first argument) that holds an image run, onLattice
// otherwise (including when the directory comes after the flags).
func dispatchRun(args []string, cmd string, onLattice func([]string) error, onImages func(string, []string) error) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		kind, _, err := runConfig(args[0], cmd)
		if err != nil {
			return err
		}
		if kind == "images" {
			return onImages(args[0], args[1:])
		}
	}
	return onLattice(args)
}

func (r *latticeRun) validate() error {
	t := r.Train
	switch {
	case t.BetaSteps < 0 || t.BetaSteps > 0 && !(t.BetaStart > 0 && t.BetaStart <= 1):
		return fmt.Errorf("train lattice: β annealing --beta-start=%v --beta-steps=%d, want 0 < β₀ ≤ 1 and steps ≥ 0", t.BetaStart, t.BetaSteps)
	case t.EvalSamples != 0 && t.EvalSamples < minEvalN:
		return fmt.Errorf("train lattice: --eval-n=%d, want 0 (no evaluation) or at least %d", t.EvalSamples, minEvalN)
	}
	return r.Train.validate("train lattice")
}

// minEvalN is the fewest flow samples a lattice evaluation takes: two per flow-MCMC chain.
const minEvalN = 2 * evalChains

// keepHorizon pins the cosine horizon of a saved run before flags are applied (configs saved without one
// end their cosine at their --steps).
func (t *trainSpec) keepHorizon() {
	if t.Horizon == 0 {
		t.Horizon = t.Steps
	}
}

// validate checks the optimisation settings (and resolves an automatic warm-up and, for a fresh run, the
// cosine horizon).
func (t *trainSpec) validate(cmd string) error {
	if t.Warmup == -1 {
		t.Warmup = min(50, t.Steps/10)
	}
	if t.Horizon == 0 {
		t.Horizon = t.Steps
	}
	switch {
	case t.Steps <= 0:
		return fmt.Errorf("%s: --steps=%d, want > 0", cmd, t.Steps)
	case t.Batch <= 0:
		return fmt.Errorf("%s: --batch=%d, want > 0", cmd, t.Batch)
	case !(t.LR > 0) || math.IsInf(t.LR, 0):
		return fmt.Errorf("%s: --lr=%v, want a positive finite number", cmd, t.LR)
	case t.Schedule != "cosine" && t.Schedule != "constant":
		return fmt.Errorf("%s: --schedule %q, want cosine or constant", cmd, t.Schedule)
	case t.Warmup < 0 || t.Warmup >= t.Steps && t.Schedule == "cosine":
		return fmt.Errorf("%s: --warmup=%d, want 0 ≤ warmup < steps (%d)", cmd, t.Warmup, t.Steps)
	case !(t.EMADecay >= 0 && t.EMADecay < 1):
		return fmt.Errorf("%s: --ema-decay=%v, want 0 ≤ decay < 1 (0: no moving average)", cmd, t.EMADecay)
	}
	if _, err := parseDtype(t.Dtype); err != nil {
		return fmt.Errorf("%s: --%w", cmd, err)
	}
	return nil
}

// schedule is the run's learning-rate schedule.
func (t trainSpec) schedule() train.Schedule {
	if t.Schedule == "constant" {
		return train.Constant{Value: t.LR}
	}
	return train.Cosine{Peak: t.LR, Final: t.FinalLR, Warmup: t.Warmup, Total: t.Horizon}
}

// resolveHorizon decides the cosine horizon of a resumed run after its flags are applied: unchanged (the
// steps past it run at FinalLR) unless reschedule, which stretches it to Steps. It returns what happened,
// for the user, or "" when there is nothing to say.
func (t *trainSpec) resolveHorizon(reschedule bool) string {
	if t.Schedule != "cosine" {
		if reschedule {
			return fmt.Sprintf("--reschedule: the %s schedule has no horizon; nothing to stretch", t.Schedule)
		}
		return ""
	}
	switch {
	case reschedule && t.Horizon != t.Steps:
		old := t.Horizon
		t.Horizon = t.Steps
		return fmt.Sprintf("rescheduled: the cosine schedule that ended at step %d now ends at step %d", old, t.Steps)
	case t.Steps > t.Horizon:
		return fmt.Sprintf("the cosine schedule ends at step %d, as the run was started; steps %d to %d run at the final rate %g (--reschedule stretches the cosine to step %d instead)",
			t.Horizon, t.Horizon+1, t.Steps, t.FinalLR, t.Steps)
	}
	return ""
}

// engineAction is the action as the objective's graph should hold it: its fused op by default, its
// elementary-op graph with --engine graph (the reference every fused kernel is tested against).
func engineAction(act lattice.Action, m models.Config) lattice.Action {
	if m.EngineName() == models.EngineGraph {
		return lattice.GraphForm(act)
	}
	return act
}

// latticeModel builds a run's action, flow and (empty) store.
func (r *latticeRun) latticeModel(cmd string) (lattice.Action, *models.Flow, *layers.Store, error) {
	act, err := r.Physics.build(cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	if r.Model.Channels != act.Channels() || r.Model.L != act.Size() {
		return nil, nil, nil, fmt.Errorf("%s: the model is for %d channel(s) at L=%d, the action %s has %d at L=%d",
			cmd, r.Model.Channels, r.Model.L, act.Name(), act.Channels(), act.Size())
	}
	flow, err := models.Build(r.Model)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	dt, _ := parseDtype(r.Train.Dtype)
	store := layers.NewStore(dt, r.Train.Seed)
	return act, flow, store, nil
}

func runTrainLattice(args []string, stdout, stderr io.Writer) error {
	run, f, err := parseLatticeRun(args, stderr)
	if err != nil {
		return err
	}
	act, flow, store, err := run.latticeModel("train lattice")
	if err != nil {
		return err
	}
	if run.Train.Symmetrize && !act.Z2() {
		return fmt.Errorf("train lattice: --symmetrize needs a Z₂-symmetric action; %s is not", act.Name())
	}
	obj := &losses.ReverseKL{Flow: flow, Action: engineAction(act, run.Model), Symmetrize: run.Train.Symmetrize,
		BetaStart: run.Train.BetaStart, BetaSteps: run.Train.BetaSteps}
	out := f.session.dir(fmt.Sprintf("%s-L%d", run.Physics.Action, run.Physics.L))
	f.session.checkRoundTrip(run.Model, flow, store, run.Train.Seed, stderr)
	what := fmt.Sprintf("%s (%s engine) on %s L=%d %v (%s", run.Model.Preset, run.Model.EngineName(), act.Name(), act.Size(), act.Params(), flow.Hier.String())
	tr, done, err := runTraining("train lattice", run, run.Train, f.session, out, store, obj, what, stdout, stderr)
	if err != nil || !done {
		return err
	}
	defer tr.Close()
	if run.Train.EvalSamples == 0 {
		return nil
	}
	if err := useEMA(tr, store, stdout); err != nil {
		return err
	}
	rep, err := evaluateLattice(run, act, flow, store, tr.Step(), run.Train.EvalSamples, f.session.workers, run.Train.Seed+1)
	if err != nil {
		return err
	}
	printLatticeEval(stdout, rep)
	printNext(stdout,
		[]string{"eval", out, "--n", "65536"},
		[]string{"sample", out, "--n", "1000", "--out", "samples.npz"},
		[]string{"latents", out, "--n", "1000", "--out", "latents.npz"})
	return nil
}

// printNext prints commands to try next, one runnable command line per line (arguments quoted for a POSIX
// shell where they need it).
func printNext(w io.Writer, cmds ...[]string) {
	fmt.Fprintln(w, "\nnext:")
	for _, c := range cmds {
		q := make([]string, len(c))
		for i, a := range c {
			q[i] = shellQuote(a)
		}
		fmt.Fprintf(w, "  rgflow %s\n", strings.Join(q, " "))
	}
}

// shellQuote quotes s for a POSIX shell when it holds anything but letters, digits and -_./:=,+@%.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// limits names the time limits set, for messages ("" when none).
func (f sessionFlags) limits() string {
	var l []string
	if f.timeLimit > 0 {
		l = append(l, "--time-limit")
	}
	if f.cpuLimit > 0 {
		l = append(l, "--cpu-limit")
	}
	return strings.Join(l, " and ")
}

// dir is the run directory: --resume's, --out, or runs/<what>-<time>.
func (f sessionFlags) dir(what string) string {
	switch {
	case f.resume != "":
		return f.resume
	case f.out != "":
		return f.out
	}
	return filepath.Join("runs", what+"-"+time.Now().Format("20060102-150405"))
}

// runTraining runs one training session of any objective: it writes config.json (and run.json for a fresh
// run), builds the Trainer, resumes it from --resume, trains with Ctrl-C and --stop-after handled, and reports
// the speed. done is false when the session stopped early as asked (then tr is closed). what describes the
// model for the first line.
func runTraining(cmd string, run any, t trainSpec, sess sessionFlags, out string, store *layers.Store,
	obj train.Objective, what string, stdout, stderr io.Writer) (tr *train.Trainer, done bool, err error) {
	raw, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return nil, false, err
	}
	group, stdout, stderr, err := trainComm(cmd, stdout, stderr)
	if err != nil {
		return nil, false, err
	}
	lead := group.Rank() == 0 // writes the run directory and reports; the other ranks only compute
	var progress io.Writer
	if lead {
		progress = stderr
	}
	if sess.resume == "" {
		// Refuse before writing anything: a fresh run must not touch another run's files.
		if ents, err := os.ReadDir(train.CheckpointDir(out)); err == nil && len(ents) > 0 {
			return nil, false, fmt.Errorf("%s: %s already holds a run with checkpoints; nothing was changed there. Continue it with: rgflow %s --resume %s (or choose another --out)",
				cmd, out, cmd, shellQuote(out))
		}
	}
	if lead {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return nil, false, fmt.Errorf("%s: %w", cmd, err)
		}
		if err := checkpoints.WriteFileAtomic(filepath.Join(out, "config.json"), func(w io.Writer) error {
			_, err := w.Write(append(raw, '\n'))
			return err
		}); err != nil {
			return nil, false, fmt.Errorf("%s: %w", cmd, err)
		}
	}
	ctx, stop := train.ContextWithSignals(context.Background())
	defer stop()
	pause, cancel := context.WithCancel(ctx) // cancelled by --stop-after, or by a signal through ctx
	defer cancel()
	var startStep int64
	var hooks train.Hooks
	if sess.stopAfter > 0 {
		hooks.OnStep = append(hooks.OnStep, train.Hook{Name: "stop-after", Fn: func(r train.Record) error {
			if r.Step >= startStep+sess.stopAfter {
				cancel()
			}
			return nil
		}})
	}
	hooks.OnCheckpoint = append(hooks.OnCheckpoint, sess.onCheckpoint...)
	limits := sess.limits()
	if limits != "" && group.Size() > 1 {
		// Each rank would read its own clock and could stop at another step than the others, leaving them
		// waiting in an all-reduce: a step count is the same on every rank.
		return nil, false, fmt.Errorf("%s: %s under mpirun would stop the ranks at different steps; use --stop-after N (a step count) instead", cmd, limits)
	}
	var limitHit string // which limit stopped the session, for the final message
	var startWall time.Time
	var startCPU time.Duration
	if limits != "" {
		hooks.OnStep = append(hooks.OnStep, train.Hook{Name: "time limits", Fn: func(r train.Record) error {
			if sess.timeLimit > 0 && time.Since(startWall) >= sess.timeLimit {
				limitHit = "--time-limit " + sess.timeLimit.String()
				cancel()
			}
			if cpu, _ := processCPU(); sess.cpuLimit > 0 && cpu-startCPU >= sess.cpuLimit {
				limitHit = "--cpu-limit " + sess.cpuLimit.String()
				cancel()
			}
			return nil
		}})
	}
	workers := sess.workers
	if _, ok := obj.(train.ShardedObjective); !ok {
		workers = 1 // an objective that cannot be split runs on one worker
	}
	tr, err = train.New(store, obj, train.Config{
		Steps: t.Steps, Batch: t.Batch, Schedule: t.schedule(), ClipNorm: t.Clip, EMADecay: t.EMADecay,
		LogEvery: t.LogEvery, CheckpointEvery: t.CheckpointEvery, Keep: t.Keep,
		Seed: t.Seed, Out: out, RunConfig: raw, Progress: progress, Hooks: hooks,
		Workers: workers, Comm: group,
	})
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", cmd, err)
	}
	closeOnErr := func(e error) (*train.Trainer, bool, error) {
		tr.Close()
		return nil, false, e
	}
	if sess.resume != "" {
		if err := tr.Resume(out); err != nil {
			return closeOnErr(fmt.Errorf("%s: %w", cmd, err))
		}
		fmt.Fprintf(stderr, "resuming %s at step %d of %d\n", out, tr.Step(), t.Steps)
		if sess.note != "" {
			fmt.Fprintf(stderr, "%s (learning rate at step %d: %g)\n", sess.note, tr.Step()+1, t.schedule().LR(tr.Step()))
		}
	} else if lead {
		if err := writeRunInfo(out, t.Seed); err != nil {
			return closeOnErr(err)
		}
	}
	fmt.Fprintf(stdout, "training %s, %d parameters, %s), batch %d, %d steps → %s\n",
		what, store.NumParams(), t.Dtype, t.Batch, t.Steps, out)
	if n := group.Size(); n > 1 || tr.Workers() > 1 {
		fmt.Fprintf(stdout, "data parallel: %d process(es) × %d worker(s) on this one, global batch %d\n", n, tr.Workers(), t.Batch)
	}
	start := time.Now()
	startStep = tr.Step()
	startWall, startCPU = start, 0
	if limits != "" {
		startCPU, _ = processCPU()
	}
	if err := tr.Run(pause); err != nil {
		if (sess.stopAfter > 0 || limits != "") && ctx.Err() == nil && errors.Is(err, train.ErrInterrupted) {
			why := "as asked"
			if limitHit != "" {
				cpu, _ := processCPU()
				why = fmt.Sprintf("at %s (%s wall, %s CPU)", limitHit, time.Since(start).Round(time.Second), (cpu - startCPU).Round(time.Second))
			}
			fmt.Fprintf(stdout, "stopped after %d steps at step %d of %d %s; continue with:\n  rgflow %s --resume %s\n",
				tr.Step()-startStep, tr.Step(), t.Steps, why, cmd, shellQuote(out))
			return closeOnErr(nil)
		}
		return closeOnErr(err)
	}
	if steps := tr.Step() - startStep; steps > 0 {
		el := time.Since(start)
		fmt.Fprintf(stdout, "trained %d steps in %s (%.1f ms/step)\n", steps, el.Round(time.Second), el.Seconds()*1000/float64(steps))
	}
	if !lead { // the evaluation and hints that follow are rank 0's
		return closeOnErr(nil)
	}
	return tr, true, nil
}

// useEMA copies a finished trainer's moving averages into the store (training is over), so that the
// evaluation printed at the end sees the weights that sample and eval use.
func useEMA(tr *train.Trainer, store *layers.Store, stdout io.Writer) error {
	ema := tr.EMA()
	if ema == nil || !ema.Started() {
		return nil
	}
	for _, n := range ema.Names() {
		avg, _ := ema.Average(n)
		if err := store.Set(n, avg.Shape(), layers.Float64s(avg)); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "evaluating the EMA weights (decay %v)\n", ema.Decay())
	return nil
}

// writeRunInfo records the seed, version and start time of a fresh run.
func writeRunInfo(dir string, seed uint64) error {
	info, err := json.MarshalIndent(map[string]any{
		"seed": seed, "version": version, "started": time.Now().UTC().Format(time.RFC3339),
	}, "", "  ")
	if err != nil {
		return err
	}
	return checkpoints.WriteFileAtomic(filepath.Join(dir, "run.json"), func(w io.Writer) error {
		_, err := w.Write(append(info, '\n'))
		return err
	})
}

// bindFlow builds a forward graph once so that every parameter of the flow exists in the store (needed
// before loading weights).
func bindFlow(flow *models.Flow, store *layers.Store) error {
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	_, _, err := flow.LogProb(s, s.Input("x", flow.Shape(1)...))
	return err
}
