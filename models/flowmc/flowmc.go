package flowmc

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/losses"
	"rgflow/models"
)

// DefaultBatch is the largest batch Draw runs the flow on.
const DefaultBatch = 256

// Options configure Draw. The zero value draws from q itself in batches of up to DefaultBatch.
type Options struct {
	// Symmetrize samples q_s(x) = ½[q(x) + q(−x)] (see the package doc); the action must be Z₂-symmetric.
	Symmetrize bool
	// Batch is the flow's batch size; 0 means min(n, DefaultBatch).
	Batch int
	// Workers > 0 draws in parallel on that many goroutines, each with its own sampler graph: the n samples
	// are cut into chunks of Batch, and chunk k is drawn from its own stream, a PCG seeded with (s, k) where
	// s = rng.Uint64() is drawn once. The draws then depend on rng and Batch only, bit for bit, not on
	// Workers. Workers = 0 draws every chunk from rng in turn (one stream, one goroutine).
	Workers int
}

// Draws are samples of a flow with what the estimators need.
type Draws struct {
	N, Dim int
	X      []float64 // (N, C, L, L) configurations
	Z      []float64 // (N, C, L, L) latents the configurations were generated from (before any flip)
	LogQ   []float64 // log-density of the sampled model (q, or q_s when symmetrised), per sample
	Action []float64 // S(x) by the action's host form, per sample
}

// Config returns sample i's configuration (a sub-slice of X).
func (d *Draws) Config(i int) []float64 { return d.X[i*d.Dim : (i+1)*d.Dim : (i+1)*d.Dim] }

// LogW returns the log importance weights −S(x) − log q(x), one per sample.
func (d *Draws) LogW() []float64 {
	w := make([]float64, d.N)
	for i := range w {
		w[i] = -d.Action[i] - d.LogQ[i]
	}
	return w
}

// SymmetrizedLogQ is log q_s(x) = log ½[q(x) + q(−x)] from log q(x) and log q(−x), computed stably.
func SymmetrizedLogQ(logq, logqNeg float64) float64 {
	return logAddExp(logq, logqNeg) - math.Ln2
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

// Draw samples n configurations from flow with the weights in store, and evaluates the action's host form
// on each in float64. With opt.Symmetrize every draw is flipped with probability ½ and LogQ is log q_s.
func Draw(act lattice.Action, flow *models.Flow, store *layers.Store, n int, opt Options, rng *rand.Rand) (*Draws, error) {
	if n < 1 {
		return nil, fmt.Errorf("flowmc: %d samples, want ≥ 1", n)
	}
	if act.Channels() != flow.Channels || act.Size() != flow.L {
		return nil, fmt.Errorf("flowmc: the action's fields are %d×%d×%d, the flow's %d×%d×%d",
			act.Channels(), act.Size(), act.Size(), flow.Channels, flow.L, flow.L)
	}
	if opt.Symmetrize && !act.Z2() {
		return nil, fmt.Errorf("flowmc: Z₂ symmetrisation asked for the %s action, which is not Z₂-symmetric", act.Name())
	}
	d, err := Sample(flow, store, n, opt, rng)
	if err != nil {
		return nil, err
	}
	d.Action = make([]float64, n)
	for i := range d.Action {
		d.Action[i] = act.Eval(d.Config(i))
	}
	return d, nil
}

// Sample draws n samples of the flow with the weights in store: X, Z and LogQ of Draws (Action stays nil).
// With opt.Symmetrize (for a model meant to be Z₂-symmetric) every draw is flipped with probability ½ and
// LogQ is log q_s. Draw is Sample plus the action.
func Sample(flow *models.Flow, store *layers.Store, n int, opt Options, rng *rand.Rand) (*Draws, error) {
	if n < 1 {
		return nil, fmt.Errorf("flowmc: %d samples, want ≥ 1", n)
	}
	batch := opt.Batch
	if batch == 0 {
		batch = min(n, DefaultBatch)
	}
	if batch < 1 {
		return nil, fmt.Errorf("flowmc: batch %d, want ≥ 1", batch)
	}
	if opt.Workers < 0 {
		return nil, fmt.Errorf("flowmc: %d workers, want ≥ 0", opt.Workers)
	}
	dim := flow.Channels * flow.L * flow.L
	d := &Draws{N: n, Dim: dim, X: make([]float64, n*dim), Z: make([]float64, n*dim), LogQ: make([]float64, n)}
	chunks := (n + batch - 1) / batch
	nw := max(1, min(opt.Workers, chunks))
	// The samplers are built one after the other (building binds the store's tensors), then run in parallel
	// (forward graphs only read the weights, so they may share the store's tensors).
	drawers := make([]*drawer, nw)
	for w := range drawers {
		dr, err := newDrawer(flow, store, batch, opt.Symmetrize)
		if err != nil {
			return nil, err // the deferred closes release the drawers built so far
		}
		drawers[w] = dr
		defer dr.close()
	}
	// chunk draws chunk k with rng into its place in d.
	chunk := func(dr *drawer, k int, rng *rand.Rand) error {
		x, logq, z, err := dr.draw(rng)
		if err != nil {
			return fmt.Errorf("flowmc: sample %d: %w", k*batch, err)
		}
		take := min(batch, n-k*batch)
		copy(d.X[k*batch*dim:], x[:take*dim])
		copy(d.Z[k*batch*dim:], z[:take*dim])
		copy(d.LogQ[k*batch:], logq[:take])
		return nil
	}
	if opt.Workers == 0 {
		for k := range chunks {
			if err := chunk(drawers[0], k, rng); err != nil {
				return nil, err
			}
		}
	} else {
		base := rng.Uint64()
		var next atomic.Int64
		errs := make([]error, nw)
		var wg sync.WaitGroup
		for w, dr := range drawers {
			wg.Go(func() {
				for k := int(next.Add(1) - 1); k < chunks; k = int(next.Add(1) - 1) {
					if errs[w] = chunk(dr, k, rand.New(rand.NewPCG(base, uint64(k)))); errs[w] != nil {
						return
					}
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

// drawer is one goroutine's sampler (and, when symmetrising, encoder for log q(−x)).
type drawer struct {
	sm   *models.Sampler
	enc  *models.Encoder
	dim  int
	neg  []float64
	symm bool
}

func newDrawer(flow *models.Flow, store *layers.Store, batch int, symm bool) (*drawer, error) {
	sm, err := models.NewSampler(flow, store, batch)
	if err != nil {
		return nil, fmt.Errorf("flowmc: %w", err)
	}
	dr := &drawer{sm: sm, dim: flow.Channels * flow.L * flow.L, symm: symm}
	if symm {
		if dr.enc, err = models.NewEncoder(flow, store, batch); err != nil {
			sm.Close()
			return nil, fmt.Errorf("flowmc: %w", err)
		}
		dr.neg = make([]float64, batch*dr.dim)
	}
	return dr, nil
}

func (dr *drawer) close() {
	dr.sm.Close()
	if dr.enc != nil {
		dr.enc.Close()
	}
}

// draw samples one batch from rng: x, log q (log q_s and a random flip per sample when symmetrising), z.
func (dr *drawer) draw(rng *rand.Rand) (x, logq, z []float64, err error) {
	x, logq, z, err = dr.sm.Sample(rng)
	if err != nil || !dr.symm {
		return x, logq, z, err
	}
	for i, v := range x {
		dr.neg[i] = -v
	}
	_, logqNeg, err := dr.enc.Encode(dr.neg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("log q(−x): %w", err)
	}
	for b := range logq {
		logq[b] = SymmetrizedLogQ(logq[b], logqNeg[b])
		if rng.Uint64()&1 == 1 { // q_s is even: a random flip turns a draw of q into one of q_s
			for i := b * dr.dim; i < (b+1)*dr.dim; i++ {
				x[i] = -x[i]
			}
		}
	}
	return x, logq, z, nil
}

// IndependenceMetropolis runs chains independence-Metropolis chains over the proposals whose log weights
// are logw (see the package doc for the split and the acceptance rule), calling visit(chain, cur) with the
// index of every chain's current state after each proposal (the start included). It returns the number of
// accepted proposals and the number of proposals that could be accepted, chains·(⌊n/chains⌋ − 1).
func IndependenceMetropolis(logw []float64, chains int, rng *rand.Rand, visit func(chain, cur int)) (accepted, proposals int, err error) {
	if chains < 1 || len(logw) < 2*chains {
		return 0, 0, fmt.Errorf("flowmc: %d proposals for %d chains, want at least 2 per chain", len(logw), chains)
	}
	per := len(logw) / chains
	for c := 0; c < chains; c++ {
		cur := c * per
		for t := 0; t < per; t++ {
			i := c*per + t
			if t > 0 && math.Log(rng.Float64()) < logw[i]-logw[cur] {
				cur = i
				accepted++
			}
			visit(c, cur)
		}
	}
	return accepted, chains * (per - 1), nil
}

// Estimate is a value with its standard error.
type Estimate struct{ Value, Err float64 }

// Report is what Evaluate measures (see the package doc for the definitions).
type Report struct {
	N          int
	FreeEnergy Estimate // F_q = mean[log q + S] ≥ −ln Z
	LogZ       Estimate // importance-sampled ln Z
	ESS        float64  // effective sample size fraction in (0, 1]
	// ExactLogZ is the exact ln Z and Gap = F_q + ln Z = KL(q‖p) with F_q's error, where ln Z is known
	// (HasExact; see ExactLogZ).
	ExactLogZ float64
	Gap       Estimate
	HasExact  bool
	// Acceptance is the flow-MCMC acceptance rate; Results the observables of the chains.
	Acceptance float64
	Results    lattice.Results
}

// Evaluate measures draws of a flow against act: free energy, importance-sampled ln Z, ESS, the exact
// gap where ln Z is known, and flow-MCMC observables on chains chains, drawing the Metropolis uniforms
// from rng.
func Evaluate(d *Draws, act lattice.Action, chains int, rng *rand.Rand) (*Report, error) {
	if len(d.LogQ) != d.N || len(d.Action) != d.N || len(d.X) != d.N*d.Dim {
		return nil, fmt.Errorf("flowmc: draws hold %d log-densities, %d actions and %d values for %d samples of %d",
			len(d.LogQ), len(d.Action), len(d.X), d.N, d.Dim)
	}
	if d.Dim != act.Channels()*act.Size()*act.Size() {
		return nil, fmt.Errorf("flowmc: samples of %d values, the %s action wants %d", d.Dim, act.Name(), act.Channels()*act.Size()*act.Size())
	}
	logw := d.LogW()
	f := make([]float64, d.N)
	for i, w := range logw {
		f[i] = -w
	}
	rep := &Report{N: d.N}
	m, se := losses.MeanStdErr(f)
	rep.FreeEnergy = Estimate{m, se}
	lz, lzErr := losses.LogMeanExp(logw)
	rep.LogZ = Estimate{lz, lzErr}
	rep.ESS = losses.ESS(logw)
	if ex, ok := ExactLogZ(act); ok {
		rep.ExactLogZ, rep.HasExact = ex, true
		rep.Gap = Estimate{m + ex, se}
	}
	obs := lattice.NewObserver(act, chains)
	acc, props, err := IndependenceMetropolis(logw, chains, rng, func(c, cur int) { obs.Measure(c, d.Config(cur)) })
	if err != nil {
		return nil, err
	}
	rep.Acceptance = float64(acc) / float64(props)
	if rep.Results, err = obs.Results(lattice.StatsOptions{}); err != nil {
		return nil, fmt.Errorf("flowmc: %w", err)
	}
	return rep, nil
}

// ExactLogZ is the exact ln Z of an action where one is known (the free field and the relaxed Ising
// model, in the standard convention) and whether it is known.
func ExactLogZ(a lattice.Action) (float64, bool) {
	p := a.Params()
	switch a.Name() {
	case "free":
		return lattice.FreeLogZ(a.Size(), p["m2"]), true
	case "ising":
		return lattice.IsingRelaxedLogZ(a.Size(), p["T"]), true
	}
	return 0, false
}
