package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"

	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/losses"
	"rgflow/models"
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
	names       []string
}

// flowDraws are samples of a trained flow with what the estimators need.
type flowDraws struct {
	x, logq, z []float64 // x and z are (n, C, L, L); logq is the model's (symmetrised if trained so)
	action     []float64 // S(x), host form
	dim        int
}

// drawLattice samples n configurations from the flow (with a random global flip and the symmetrised
// density when the run was trained with Z₂ symmetrisation) and evaluates S on the host in float64.
func drawLattice(run *latticeRun, act lattice.Action, flow *models.Flow, store *layers.Store, n int, rng *rand.Rand) (*flowDraws, error) {
	batch := min(n, 256)
	sm, err := models.NewSampler(flow, store, batch)
	if err != nil {
		return nil, err
	}
	defer sm.Close()
	var enc *models.Encoder
	if run.Train.Symmetrize {
		if enc, err = models.NewEncoder(flow, store, batch); err != nil {
			return nil, err
		}
		defer enc.Close()
	}
	d := &flowDraws{dim: flow.Channels * flow.L * flow.L}
	for len(d.logq) < n {
		x, logq, z, err := sm.Sample(rng)
		if err != nil {
			return nil, err
		}
		if enc != nil {
			neg := make([]float64, len(x))
			for i, v := range x {
				neg[i] = -v
			}
			_, logqNeg, err := enc.Encode(neg)
			if err != nil {
				return nil, err
			}
			for b := range logq {
				logq[b] = logAddExp(logq[b], logqNeg[b]) - math.Ln2
				if rng.Uint64()&1 == 1 { // q_s is symmetric: a random flip turns a draw of q into one of q_s
					for i := b * d.dim; i < (b+1)*d.dim; i++ {
						x[i] = -x[i]
					}
				}
			}
		}
		take := min(batch, n-len(d.logq))
		d.x = append(d.x, x[:take*d.dim]...)
		d.z = append(d.z, z[:take*d.dim]...)
		d.logq = append(d.logq, logq[:take]...)
	}
	d.action = make([]float64, n)
	for b := range d.action {
		d.action[b] = act.Eval(d.x[b*d.dim : (b+1)*d.dim])
	}
	return d, nil
}

func logAddExp(a, b float64) float64 {
	if a < b {
		a, b = b, a
	}
	if math.IsInf(b, -1) {
		return a
	}
	return a + math.Log1p(math.Exp(b-a))
}

// evalChains is the number of independent flow-MCMC chains the proposals are split into.
const evalChains = 4

// evaluateLattice measures a trained flow: the variational free energy, importance-sampled ln Z and ESS,
// the exact gap where ln Z is known, and the observables of rgflow mcmc on independence-Metropolis chains
// with the flow as proposal.
func evaluateLattice(run *latticeRun, act lattice.Action, flow *models.Flow, store *layers.Store, step int64, n int, seed uint64) (*latticeEval, error) {
	if n < 2*evalChains {
		return nil, fmt.Errorf("eval: --samples=%d, want at least %d", n, 2*evalChains)
	}
	rng := rand.New(rand.NewPCG(seed, 0xe7a1))
	d, err := drawLattice(run, act, flow, store, n, rng)
	if err != nil {
		return nil, err
	}
	f := make([]float64, n)
	logw := make([]float64, n)
	for i := range f {
		f[i] = d.logq[i] + d.action[i]
		logw[i] = -f[i]
	}
	rep := &latticeEval{Step: step, Samples: n, TauInt: map[string]jsonNum{}, Observables: map[string][2]jsonNum{}}
	m, se := losses.MeanStdErr(f)
	rep.Loss = [2]jsonNum{jsonNum(m), jsonNum(se)}
	lz, lzErr := losses.LogMeanExp(logw)
	rep.LogZ = [2]jsonNum{jsonNum(lz), jsonNum(lzErr)}
	rep.ESS = jsonNum(losses.ESS(logw))
	if ex, ok := exactLogZ(act); ok {
		e := jsonNum(ex)
		rep.ExactLogZ = &e
		rep.Gap = &[2]jsonNum{jsonNum(m + ex), jsonNum(se)}
	}
	// Flow MCMC: independence Metropolis over the proposals, split into evalChains chains.
	obs := lattice.NewObserver(act, evalChains)
	per := n / evalChains
	accepted := 0
	for c := 0; c < evalChains; c++ {
		cur := c * per
		for t := 0; t < per; t++ {
			i := c*per + t
			if t > 0 && math.Log(rng.Float64()) < logw[i]-logw[cur] {
				cur = i
				accepted++
			}
			obs.Measure(c, d.x[cur*d.dim:(cur+1)*d.dim])
		}
	}
	rep.Acceptance = jsonNum(float64(accepted) / float64(evalChains*(per-1)))
	res, err := obs.Results(lattice.StatsOptions{})
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	for _, o := range res.Observables {
		rep.Observables[o.Name] = [2]jsonNum{jsonNum(o.Value), jsonNum(o.Err)}
		rep.TauInt[o.Name] = jsonNum(o.Tau)
		rep.names = append(rep.names, o.Name)
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
// A non-empty engine replaces the saved one.
func loadLatticeRun(dir, cmd, engine string) (*latticeRun, lattice.Action, *models.Flow, *layers.Store, int64, error) {
	var run latticeRun
	if err := loadRunConfig(dir, "lattice", &run, cmd); err != nil {
		return nil, nil, nil, nil, 0, err
	}
	if err := overrideEngine(&run.Model, engine, cmd); err != nil {
		return nil, nil, nil, nil, 0, err
	}
	act, flow, store, err := run.latticeModel(cmd)
	if err != nil {
		return nil, nil, nil, nil, 0, err
	}
	step, err := loadWeights(flow, store, dir, cmd)
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

func runEval(args []string, stdout, stderr io.Writer) error {
	return dispatchRun(args, "eval", func(a []string) error { return runEvalLattice(a, stdout, stderr) },
		func(dir string, a []string) error { return runEvalImages(dir, a, stdout, stderr) })
}

func runEvalLattice(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("samples", 16384, "flow samples")
	seed := fs.Uint64("seed", 1, "random seed")
	asJSON := fs.Bool("json", false, "print one JSON object")
	engine := fs.String("engine", "", engineUsage+" (default: the run's)")
	dir, err := runDirArg(fs, args, "eval")
	if err != nil {
		return err
	}
	run, act, flow, store, step, err := loadLatticeRun(dir, "eval", *engine)
	if err != nil {
		return err
	}
	rep, err := evaluateLattice(run, act, flow, store, step, *n, *seed)
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
