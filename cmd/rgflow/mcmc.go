package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"

	"rgflow/checkpoints"
	"rgflow/datasets/lattice"
)

const mcmcUsage = `usage: rgflow mcmc [flags]

Samples a lattice action with Hybrid Monte Carlo (randomised trajectory length, step size tuned to
--target-accept during --thermalize, global flip φ → −φ for Z2 actions; --chains independent chains in
parallel, reproducible from --seed whatever the number of cores) and measures observables with
blocked-jackknife errors and integrated autocorrelation times.

Parameters are read in --convention (default standard,
S = Σ_x [ ½ Σ_μ (φ_{x+μ} − φ_x)² + ½ m² φ² + λ φ⁴ ]); aks takes m_A², λ_A (λ = λ_A/4), hopping takes
--kappa and --lambda-h. The AKS/Gerdes benchmark point m_A² = −4, λ_A = 6.008 at L = 8 is
  rgflow mcmc --action phi4 --L 8 --m2 -4 --lambda 1.502            (standard)
  rgflow mcmc --action phi4 --L 8 --m2 -4 --lambda 6.008 --convention aks
Samples are always in the standard normalisation. τ_int is in measurements (one every --every
trajectories). G_r is G(r) for r = 0 … L/2; Gt is G̃(p) at p = 2πk/L for k in Gt_momenta.
--out writes phi (N·chains, C, L, L; row k·chains + chain is measurement k of chain),
action, chain and trajectory arrays to an .npz file.
--bulk RUNDIR runs the same HMC on the latents z of a trained lattice run, with the bulk effective action
S_eff(z) = S(F⁻¹(z)) − ldj (no global flip: S_eff is not Z2-symmetric), and measures F⁻¹(z); the action
comes from the run. gradient_evals counts force evaluations, for comparisons at equal cost.

Observables (definitions in package rgflow/datasets/lattice): abs_m, chi, chi_c, phi2, G_half, U4,
xi2, mR2, Z, gR; o2 adds helicity and abs_mean_field; ising adds m2_improved, abs_m_spin and U4_spin
(spin observables through E[σ|x] = tanh x). Undefined values (e.g. m_R² when G̃(0) ≤ G̃(p₁)) are
null in the JSON output and "—" in the table.

flags:
`

// mcmcFlags are the parsed flags of rgflow mcmc.
type mcmcFlags struct {
	physics                         actionSpec
	out                             string
	trajectories, thermalize, every int
	chains, workers                 int
	seed                            uint64
	step, targetAccept, trajLength  float64
	asJSON                          bool
	set                             map[string]bool
	bulk                            string // run directory for HMC on the latents (bulk.go)
}

// newMCMCFlags defines the flags of rgflow mcmc.
func newMCMCFlags() (*flag.FlagSet, *mcmcFlags) {
	f := &mcmcFlags{}
	fs := flag.NewFlagSet("mcmc", flag.ContinueOnError)
	f.physics = defaultActionSpec()
	f.physics.register(fs)
	fs.IntVar(&f.trajectories, "trajectories", 1000, "HMC trajectories per chain after thermalisation")
	fs.IntVar(&f.thermalize, "thermalize", 200, "warm-up trajectories per chain (step size tuned here)")
	fs.IntVar(&f.chains, "chains", 4, "independent chains")
	fs.IntVar(&f.workers, "workers", 0, "goroutines running chains (default all cores; never changes the numbers)")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed")
	fs.BoolVar(&f.asJSON, "json", false, "print one JSON object instead of a table")
	fs.StringVar(&f.out, "out", "", "write the samples to this .npz file")
	fs.Float64Var(&f.step, "step", 0, "fixed leapfrog step size (default: tuned during thermalisation)")
	fs.Float64Var(&f.targetAccept, "target-accept", 0.8, "acceptance probability the step-size tuning aims for")
	fs.IntVar(&f.every, "every", 1, "keep one configuration every N trajectories")
	fs.Float64Var(&f.trajLength, "traj-length", 0, "mean trajectory length in MD time (default 1; 5 for ising)")
	fs.StringVar(&f.bulk, "bulk", "", "run HMC on the latents z of this trained lattice run (bulk HMC; the action is the run's)")
	return fs, f
}

func parseMCMCFlags(args []string, stderr io.Writer) (*mcmcFlags, error) {
	fs, f := newMCMCFlags()
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), mcmcUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("mcmc: unexpected argument %q (flags only; see rgflow mcmc -h)", fs.Arg(0))
	}
	f.physics.noteSet(fs)
	switch {
	case f.trajectories < 2:
		return nil, fmt.Errorf("mcmc: --trajectories=%d, want at least 2", f.trajectories)
	case f.thermalize < 0:
		return nil, fmt.Errorf("mcmc: --thermalize=%d is negative", f.thermalize)
	case f.chains < 1:
		return nil, fmt.Errorf("mcmc: --chains=%d, want at least 1", f.chains)
	case f.workers < 0:
		return nil, fmt.Errorf("mcmc: --workers=%d is negative", f.workers)
	case f.every < 1:
		return nil, fmt.Errorf("mcmc: --every=%d, want at least 1", f.every)
	case f.trajectories/f.every < 2:
		return nil, fmt.Errorf("mcmc: --trajectories=%d with --every=%d keeps %d configurations per chain, want at least 2",
			f.trajectories, f.every, f.trajectories/f.every)
	case f.step < 0 || math.IsNaN(f.step) || math.IsInf(f.step, 0):
		return nil, fmt.Errorf("mcmc: --step=%v, want a finite step size > 0", f.step)
	case !(f.targetAccept > 0 && f.targetAccept < 1):
		return nil, fmt.Errorf("mcmc: --target-accept=%v, want 0 < target < 1", f.targetAccept)
	case f.trajLength < 0 || math.IsNaN(f.trajLength) || math.IsInf(f.trajLength, 0):
		return nil, fmt.Errorf("mcmc: --traj-length=%v, want a finite length > 0", f.trajLength)
	}
	return f, nil
}

// jsonNum is a float64 that marshals NaN and ±Inf as null.
type jsonNum float64

func (x jsonNum) MarshalJSON() ([]byte, error) {
	v := float64(x)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(v)
}

// mcmcReport is the --json output.
type mcmcReport struct {
	Action           string                `json:"action"`
	L                int                   `json:"L"`
	Params           map[string]jsonNum    `json:"params"`
	Convention       string                `json:"convention"`
	ConventionParams map[string]jsonNum    `json:"convention_params,omitempty"`
	Chains           int                   `json:"chains"`
	Trajectories     int                   `json:"trajectories"`
	Thermalize       int                   `json:"thermalize"`
	Every            int                   `json:"every"`
	Seed             uint64                `json:"seed"`
	PerChain         int                   `json:"measurements_per_chain"`
	StepSize         jsonNum               `json:"step_size"`
	MeanSteps        jsonNum               `json:"mean_leapfrog_steps"`
	TrajLength       jsonNum               `json:"traj_length"`
	Acceptance       jsonNum               `json:"acceptance"`
	ExpMinusDH       jsonNum               `json:"exp_minus_dH"`
	TauUnit          string                `json:"tau_int_unit"`
	TauInt           map[string]jsonNum    `json:"tau_int"`
	Observables      map[string][2]jsonNum `json:"observables"`
	GR               [][2]jsonNum          `json:"G_r"`
	GtMomenta        [][2]int              `json:"Gt_momenta"`
	Gt               [][2]jsonNum          `json:"Gt"`
	ShortRun         []string              `json:"short_run,omitempty"`
	Errors           string                `json:"errors"`
	// Sampler is "hmc" (on φ) or "bulk-hmc" (on the latents z of the flow in Run, mapped back to φ);
	// GradEvals counts force evaluations (leapfrog steps) over all chains, thermalisation included.
	Sampler   string `json:"sampler"`
	Run       string `json:"run,omitempty"`
	GradEvals int64  `json:"gradient_evals"`
}

func numMap(m map[string]float64) map[string]jsonNum {
	if m == nil {
		return nil
	}
	out := make(map[string]jsonNum, len(m))
	for k, v := range m {
		out[k] = jsonNum(v)
	}
	return out
}

// runMCMC is the rgflow mcmc subcommand.
func runMCMC(args []string, stdout, stderr io.Writer) error {
	if helpRequested(args) {
		return printHelp(stdout, "mcmc")
	}
	f, err := parseMCMCFlags(args, stderr)
	if err != nil {
		return err
	}
	a, target, decode, closeTarget, err := mcmcTarget(f, stderr)
	if err != nil {
		return err
	}
	defer closeTarget()
	C, L := a.Channels(), a.Size()
	perChain := f.trajectories / f.every
	if f.out != "" {
		if n := float64(perChain) * float64(f.chains) * float64(C*L*L); n > 1<<28 {
			return fmt.Errorf("mcmc: --out would hold %.3g values (%.1f GB); keep fewer with --every or --trajectories", n, 8*n/1e9)
		}
	}
	trajLength := f.trajLength
	if trajLength == 0 {
		trajLength = 1
		if a.Name() == "ising" {
			// The magnetisation direction of the relaxed Ising field is soft (period ≈ 10 in MD time).
			trajLength = 5
		}
	}
	cfg := lattice.HMCConfig{
		Trajectories: f.trajectories, Thermalize: f.thermalize, Every: f.every,
		Chains: f.chains, Workers: f.workers, Seed: f.seed,
		TargetAccept: f.targetAccept, TrajLength: trajLength,
	}
	if f.step > 0 {
		cfg.StepSize, cfg.FixedStep = f.step, true
	}
	obs := lattice.NewObserver(a, f.chains)
	var samples, actions [][]float64
	if f.out != "" {
		samples = make([][]float64, f.chains)
		actions = make([][]float64, f.chains)
		for c := range samples {
			samples[c] = make([]float64, 0, perChain*C*L*L)
			actions[c] = make([]float64, 0, perChain)
		}
	}
	visit := func(chain, k int, phi []float64, s float64) {
		if decode != nil {
			phi, s = decode(phi)
		}
		obs.Measure(chain, phi)
		if samples != nil {
			samples[chain] = append(samples[chain], phi...)
			actions[chain] = append(actions[chain], s)
		}
	}
	run, err := lattice.RunHMC(context.Background(), target, cfg, visit)
	if err == nil {
		err = target.Err()
	}
	if err != nil {
		return fmt.Errorf("mcmc: %w", err)
	}
	res, err := obs.Results(lattice.StatsOptions{})
	if err != nil {
		return fmt.Errorf("mcmc: %w", err)
	}
	if f.out != "" {
		if err := writeSamples(f.out, samples, actions, C, L, f.every); err != nil {
			return fmt.Errorf("mcmc: --out: %w", err)
		}
	}
	rep := mcmcReport{
		Action: a.Name(), L: L, Params: numMap(a.Params()), Convention: f.physics.Convention,
		Chains: f.chains, Trajectories: f.trajectories, Thermalize: f.thermalize, Every: f.every, Seed: f.seed,
		PerChain: res.PerChain, TrajLength: jsonNum(trajLength), Acceptance: jsonNum(run.Acceptance()),
		TauUnit: "trajectories", Sampler: target.Name(), Run: f.bulk, GradEvals: target.GradEvals(),
		TauInt: map[string]jsonNum{}, Observables: map[string][2]jsonNum{},
		Errors: fmt.Sprintf("blocked jackknife, blocks of %g τ_int (at least %d blocks); τ_int by the Γ-method with window W ≥ %g τ_int",
			20.0, 20, lattice.DefaultWindowFactor),
	}
	switch f.physics.Convention {
	case "aks":
		rep.ConventionParams = numMap(map[string]float64{"m2_a": f.physics.M2, "lambda_a": f.physics.Lambda})
		if a.Name() == "free" {
			rep.ConventionParams["lambda_a"] = 0
		}
	case "hopping":
		rep.ConventionParams = numMap(map[string]float64{"kappa": f.physics.Kappa, "lambda_h": f.physics.LambdaH})
	}
	var eps, steps, emdh float64
	for _, st := range run.Chains {
		eps += st.StepSize
		steps += float64(st.MeanSteps)
		emdh += st.MeanExpMinus
	}
	n := float64(len(run.Chains))
	rep.StepSize, rep.MeanSteps, rep.ExpMinusDH = jsonNum(eps/n), jsonNum(steps/n), jsonNum(emdh/n)
	for _, o := range res.Observables {
		rep.Observables[o.Name] = [2]jsonNum{jsonNum(o.Value), jsonNum(o.Err)}
		rep.TauInt[o.Name] = jsonNum(o.Tau)
		if o.ShortRun {
			rep.ShortRun = append(rep.ShortRun, o.Name)
		}
	}
	for _, g := range res.G {
		rep.GR = append(rep.GR, [2]jsonNum{jsonNum(g.Value), jsonNum(g.Err)})
	}
	rep.GtMomenta = res.GtMomenta
	for _, g := range res.Gt {
		rep.Gt = append(rep.Gt, [2]jsonNum{jsonNum(g.Value), jsonNum(g.Err)})
	}
	if f.every > 1 {
		rep.TauUnit = fmt.Sprintf("measurements (one every %d trajectories)", f.every)
	}
	if f.asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(rep)
	}
	return printMCMCTable(stdout, rep, res)
}

// writeSamples writes the configurations time-major: row k·chains + c is measurement k of chain c.
func writeSamples(path string, samples, actions [][]float64, C, L, every int) error {
	chains := len(samples)
	per := len(actions[0])
	n := C * L * L
	phi := make([]float64, 0, chains*per*n)
	act := make([]float64, 0, chains*per)
	chain := make([]int64, 0, chains*per)
	traj := make([]int64, 0, chains*per)
	for k := range per {
		for c := range chains {
			phi = append(phi, samples[c][k*n:(k+1)*n]...)
			act = append(act, actions[c][k])
			chain = append(chain, int64(c))
			traj = append(traj, int64((k+1)*every))
		}
	}
	N := chains * per
	return checkpoints.WriteNPZ(path, []checkpoints.Array{
		{Name: "phi", Shape: []int{N, C, L, L}, Data: phi},
		{Name: "action", Shape: []int{N}, Data: act},
		{Name: "chain", Shape: []int{N}, Data: chain},
		{Name: "trajectory", Shape: []int{N}, Data: traj},
	})
}

func fmtNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	return fmt.Sprintf("%.6g", v)
}

func printMCMCTable(w io.Writer, rep mcmcReport, res lattice.Results) error {
	keys := make([]string, 0, len(rep.Params))
	for k := range rep.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ps []string
	for _, k := range keys {
		ps = append(ps, fmt.Sprintf("%s=%s", k, fmtNum(float64(rep.Params[k]))))
	}
	fmt.Fprintf(w, "%s  L=%d  %s (standard convention)\n", rep.Action, rep.L, strings.Join(ps, " "))
	fmt.Fprintf(w, "%d chains × %d trajectories (+%d thermalisation), %d measurements per chain\n",
		rep.Chains, rep.Trajectories, rep.Thermalize, rep.PerChain)
	fmt.Fprintf(w, "%s: step %.4g, %g leapfrog steps on average, acceptance %.3f, ⟨exp(−ΔH)⟩ = %.4f, %d gradient evaluations\n\n",
		rep.Sampler, float64(rep.StepSize), float64(rep.MeanSteps), float64(rep.Acceptance), float64(rep.ExpMinusDH), rep.GradEvals)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "observable\tvalue\terror\tτ_int\t\t")
	row := func(name string, e lattice.Estimate) {
		note := ""
		if e.ShortRun {
			note = "run too short for τ_int"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\t%s\n", name, fmtNum(e.Value), fmtNum(e.Err), fmtNum(e.Tau), note)
	}
	for _, o := range res.Observables {
		row(o.Name, o.Estimate)
	}
	for r, g := range res.G {
		row(fmt.Sprintf("G(%d)", r), g)
	}
	for i, g := range res.Gt {
		k := res.GtMomenta[i]
		row(fmt.Sprintf("Gt(k=%d,%d)", k[0], k[1]), g)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nerrors: %s; τ_int in %s\n", rep.Errors, rep.TauUnit)
	return err
}
