package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"

	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/models"
	"rgflow/models/flowmc"
)

// latticeEval is the report of rgflow eval on a lattice run.
type latticeEval struct {
	Step        int64                 `json:"step"`
	Samples     int                   `json:"samples"`
	Loss        [2]jsonNum            `json:"loss"`
	LogZ        [2]jsonNum            `json:"logZ"`
	ExactLogZ   *jsonNum              `json:"exact_logZ"`
	Gap         *[2]jsonNum           `json:"gap"`
	ESS         jsonNum               `json:"ess"`
	Acceptance  jsonNum               `json:"acceptance"`
	TauInt      map[string]jsonNum    `json:"tau_int"`
	Observables map[string][2]jsonNum `json:"observables"`
	// RoundTrip is max |F(F⁻¹(z)) − z| over roundTripN prior samples (ODE flows: the integrator's error).
	RoundTrip *jsonNum `json:"roundtrip_max_abs,omitempty"`
	names     []string
}

// drawLattice samples n configurations of a lattice run's flow (from the symmetrised model when the run was
// trained with Z₂ symmetrisation).
// The draws are spread over workers goroutines and do not depend on their number.
func drawLattice(run *latticeRun, act lattice.Action, flow *models.Flow, store *layers.Store, n, workers int, rng *rand.Rand) (*flowmc.Draws, error) {
	return flowmc.Draw(act, flow, store, n, flowmc.Options{Symmetrize: run.Train.Symmetrize, Workers: workers}, rng)
}

// roundTripN is the number of prior samples on which eval measures an ODE flow's round-trip error.
const roundTripN = 256

// evalChains is the number of independent flow-MCMC chains the proposals are split into.
const evalChains = 4

// evaluateLattice measures a trained flow (flowmc.Evaluate) on n draws seeded by seed.
func evaluateLattice(run *latticeRun, act lattice.Action, flow *models.Flow, store *layers.Store, step int64, n, workers int, seed uint64) (*latticeEval, error) {
	if n < 2*evalChains {
		return nil, fmt.Errorf("eval: --n=%d, want at least %d", n, 2*evalChains)
	}
	rng := rand.New(rand.NewPCG(seed, 0xe7a1))
	d, err := drawLattice(run, act, flow, store, n, workers, rng)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	r, err := flowmc.Evaluate(d, act, evalChains, rng)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	pair := func(e flowmc.Estimate) [2]jsonNum { return [2]jsonNum{jsonNum(e.Value), jsonNum(e.Err)} }
	rep := &latticeEval{Step: step, Samples: n, TauInt: map[string]jsonNum{}, Observables: map[string][2]jsonNum{},
		Loss: pair(r.FreeEnergy), LogZ: pair(r.LogZ), ESS: jsonNum(r.ESS), Acceptance: jsonNum(r.Acceptance)}
	if r.HasExact {
		e, g := jsonNum(r.ExactLogZ), pair(r.Gap)
		rep.ExactLogZ, rep.Gap = &e, &g
	}
	for _, o := range r.Results.Observables {
		rep.Observables[o.Name] = [2]jsonNum{jsonNum(o.Value), jsonNum(o.Err)}
		rep.TauInt[o.Name] = jsonNum(o.Tau)
		rep.names = append(rep.names, o.Name)
	}
	if run.Model.ODE != nil {
		rt, err := models.RoundTrip(flow, store, min(n, roundTripN), rng)
		if err != nil {
			return nil, fmt.Errorf("eval: round trip: %w", err)
		}
		v := jsonNum(rt)
		rep.RoundTrip = &v
	}
	return rep, nil
}

func printLatticeEval(w io.Writer, r *latticeEval) {
	pm := func(v [2]jsonNum) string { return fmt.Sprintf("%.6f ± %.6f", float64(v[0]), float64(v[1])) }
	fmt.Fprintf(w, "evaluation at step %d on %d flow samples:\n", r.Step, r.Samples)
	fmt.Fprintf(w, "  variational free energy  F_q = %s   (≥ −ln Z)\n", pm(r.Loss))
	fmt.Fprintf(w, "  importance-sampled ln Z      = %s\n", pm(r.LogZ))
	if r.ExactLogZ != nil {
		fmt.Fprintf(w, "  exact ln Z                   = %.6f\n", float64(*r.ExactLogZ))
		fmt.Fprintf(w, "  gap F_q + ln Z = KL(q‖p)     = %s nats\n", pm(*r.Gap))
	}
	fmt.Fprintf(w, "  ESS fraction                 = %.4f\n", float64(r.ESS))
	fmt.Fprintf(w, "  flow-MCMC acceptance         = %.4f\n", float64(r.Acceptance))
	if r.RoundTrip != nil {
		fmt.Fprintf(w, "  round trip max|F(F⁻¹(z))−z|  = %.3g   (ODE integrator error)\n", float64(*r.RoundTrip))
	}
	fmt.Fprintf(w, "  flow-MCMC observables:\n")
	names := r.names
	if names == nil {
		for k := range r.Observables {
			names = append(names, k)
		}
		sort.Strings(names)
	}
	for _, k := range names {
		v := r.Observables[k]
		fmt.Fprintf(w, "    %-15s %14.6g ± %-12.3g τ_int %.2f\n", k, float64(v[0]), float64(v[1]), float64(r.TauInt[k]))
	}
}

// loadLatticeRun rebuilds a lattice run's action, flow and weights from its directory.
// A non-empty wc.engine replaces the saved engine.
func loadLatticeRun(dir, cmd string, wc weightChoice) (*latticeRun, lattice.Action, *models.Flow, *layers.Store, int64, error) {
	var run latticeRun
	if err := loadRunConfig(dir, "lattice", &run, cmd); err != nil {
		return nil, nil, nil, nil, 0, err
	}
	if err := overrideEngine(&run.Model, wc.engine, cmd); err != nil {
		return nil, nil, nil, nil, 0, err
	}
	if wc.odeSteps > 0 {
		if run.Model.ODE == nil {
			return nil, nil, nil, nil, 0, fmt.Errorf("%s: --ode-steps applies to runs of the ode- presets; %s is a %s run", cmd, dir, run.Model.Preset)
		}
		run.Model.ODE.Steps = wc.odeSteps
	}
	act, flow, store, err := run.latticeModel(cmd)
	if err != nil {
		return nil, nil, nil, nil, 0, err
	}
	step, err := loadWeights(flow, store, dir, cmd, wc)
	return &run, act, flow, store, step, err
}

// runDirArg splits "RUNDIR [flags]" (the directory may also come after the flags).
func runDirArg(fs *flag.FlagSet, args []string, cmd string) (string, error) {
	var dir string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		dir, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if dir == "" && fs.NArg() > 0 {
		dir = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return "", fmt.Errorf("%s: unexpected argument %q", cmd, fs.Arg(0))
	}
	if dir == "" {
		return "", errors.New(cmd + ": name the run directory, e.g. rgflow " + cmd + " runs/NAME")
	}
	return dir, nil
}

const evalUsage = `usage: rgflow eval RUNDIR [flags]

Evaluates the newest checkpoint of a run. A lattice run: the variational free energy F_q = E_q[log q + S],
the importance-sampled ln Z with its error, the exact gap F_q + ln Z where ln Z is known, the effective
sample size and the observables of rgflow mcmc on independence-Metropolis chains with the flow as proposal.
An image run: bits/dim on held-out (or training) images and the multi-scale sliced Wasserstein distance
(SWD ×10³, Karras et al. 2018) between as many flow samples and those images, at the data's own size. A
diffusion run: the DSM loss and the probability-flow NLL per site on held-out samples and, for a free
field, KL(q‖p) through the exact ln Z.
`

func runEval(args []string, stdout, stderr io.Writer) error {
	if helpRequested(args) {
		return printHelp(stdout, "eval")
	}
	if len(args) > 0 && isImgDiffRun(args[0]) {
		return runEvalImgDiff(args[0], args[1:], stdout, stderr)
	}
	if len(args) > 0 && isDiffusionRun(args[0]) {
		return runEvalDiffusion(args[0], args[1:], stdout, stderr)
	}
	return dispatchRun(args, "eval", func(a []string) error { return runEvalLattice(a, stdout, stderr) },
		func(dir string, a []string) error { return runEvalImages(dir, a, stdout, stderr) })
}

// evalLatticeFlags are the flags of rgflow eval on a lattice run.
type evalLatticeFlags struct {
	fs       *flag.FlagSet
	n        int
	seed     uint64
	asJSON   bool
	wc       weightChoice
	workers  int
	odeSteps int
}

func newEvalLatticeFlags(stderr io.Writer) *evalLatticeFlags {
	f := &evalLatticeFlags{fs: flag.NewFlagSet("eval", flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.IntVar(&f.n, "n", 16384, fmt.Sprintf("flow samples (at least %d)", minEvalN))
	deprecatedAlias(f.fs, "samples", "n", stderr)
	f.fs.Uint64Var(&f.seed, "seed", 1, "random seed")
	f.fs.BoolVar(&f.asJSON, "json", false, "print one JSON object")
	f.wc.register(f.fs, stderr)
	registerWorkers(f.fs, &f.workers, "goroutines drawing flow samples (the draws do not depend on it)")
	f.fs.IntVar(&f.odeSteps, "ode-steps", 0, "ode- runs: integrate the trained field with this many RK4 steps instead of the run's (more steps: a map and log-density closer to the continuous flow's)")
	return f
}

func runEvalLattice(args []string, stdout, stderr io.Writer) error {
	f := newEvalLatticeFlags(stderr)
	n, seed, asJSON := &f.n, &f.seed, &f.asJSON
	dir, err := runDirArg(f.fs, args, "eval")
	if err != nil {
		return err
	}
	if *n < minEvalN {
		return fmt.Errorf("eval: --n=%d, want at least %d flow samples", *n, minEvalN)
	}
	if err := checkWorkers("eval", f.workers); err != nil {
		return err
	}
	if f.odeSteps < 0 {
		return fmt.Errorf("eval: --ode-steps=%d, want ≥ 1 (0: the run's)", f.odeSteps)
	}
	wc := f.wc
	wc.odeSteps = f.odeSteps
	run, act, flow, store, step, err := loadLatticeRun(dir, "eval", wc)
	if err != nil {
		return err
	}
	rep, err := evaluateLattice(run, act, flow, store, step, *n, f.workers, *seed)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(rep)
	}
	printLatticeEval(stdout, rep)
	return nil
}
