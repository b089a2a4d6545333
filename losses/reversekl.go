package losses

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/models"
)

// Action is the graph form of a lattice action: phi (B, C, L, L) → S per sample (B). lattice.Action
// satisfies it.
type Action interface {
	Action(s *layers.Scope, phi *G.Node) (*G.Node, error)
	Z2() bool
}

// ReverseKL is the variational free energy of a flow against exp(−S): loss = mean[log q(x) + β S(x)] with
// x = F⁻¹(z), z from the prior; loss ≥ −ln Z, and the gap is KL(q‖p).
//
// With Symmetrize (only for Z₂-symmetric actions) the model is q_s(x) = ½[q(x) + q(−x)] and log q is
// replaced by log q_s(x) = log q(x) + softplus(log q(−x) − log q(x)) − ln 2; samples of q are valid
// samples of q_s after a random global flip, which the estimators don't need because S and q_s are both
// symmetric.
//
// β anneals from BetaStart to 1 over BetaSteps steps (linearly); BetaSteps = 0 means β = 1 throughout.
type ReverseKL struct {
	Flow       *models.Flow
	Action     Action
	Symmetrize bool
	BetaStart  float64
	BetaSteps  int64

	step            int64
	batch           int
	z, beta         *G.Node
	zVal, zOne      *tensor.Dense // the batch's latents; one sample's (FeedShard)
	betaVal         G.Value
	logqV, actV     G.Value
	dtype           tensor.Dtype
	lastLogq, lastS []float64
	noise           noiseFeed // the flow's random probes (an ODE's Jacobian regulariser), if any
}

// SetStep tells the objective which optimiser step comes next (for β annealing).
func (r *ReverseKL) SetStep(step int64) { r.step = step }

// State is the annealing position, saved in checkpoints (train.StatefulObjective).
func (r *ReverseKL) State() map[string]string {
	return map[string]string{"step": strconv.FormatInt(r.step, 10)}
}

// Restore sets the annealing position from a checkpoint; a checkpoint without it leaves the position alone.
func (r *ReverseKL) Restore(st map[string]string) error {
	v, ok := st["step"]
	if !ok {
		return nil
	}
	step, err := strconv.ParseInt(v, 10, 64)
	if err != nil || step < 0 {
		return fmt.Errorf("losses: ReverseKL: saved step %q is not a step count", v)
	}
	r.step = step
	return nil
}

// Beta is the inverse temperature used at a step.
func (r *ReverseKL) Beta(step int64) float64 {
	if r.BetaSteps <= 0 || step >= r.BetaSteps {
		return 1
	}
	return r.BetaStart + (1-r.BetaStart)*float64(step)/float64(r.BetaSteps)
}

// Build makes the loss graph for a batch.
func (r *ReverseKL) Build(s *layers.Scope, batch int) (*G.Node, error) {
	if r.Flow == nil || r.Action == nil {
		return nil, fmt.Errorf("losses: ReverseKL needs a Flow and an Action")
	}
	if r.Symmetrize && !r.Action.Z2() {
		return nil, fmt.Errorf("losses: ReverseKL: Z₂ symmetrisation asked for an action that is not Z₂-symmetric")
	}
	if r.BetaSteps > 0 && !(r.BetaStart > 0 && r.BetaStart <= 1) {
		return nil, fmt.Errorf("losses: ReverseKL: β annealing from %g, want 0 < β₀ ≤ 1", r.BetaStart)
	}
	r.batch, r.dtype = batch, s.Dtype()
	r.z = s.Input("reversekl/z", r.Flow.Shape(batch)...)
	r.zVal = layers.NewDense(s.Dtype(), r.Flow.Shape(batch), nil)
	s.CollectAux()
	x, logq, err := r.Flow.Generate(s, r.z)
	if err != nil {
		return nil, err
	}
	if r.Symmetrize {
		if logq, err = symmetrize(s, r.Flow, x, logq); err != nil {
			return nil, err
		}
	}
	act, err := r.Action.Action(s, x)
	if err != nil {
		return nil, err
	}
	r.beta = G.NewScalar(s.Graph(), s.Dtype(), G.WithName("reversekl/beta"))
	bs, err := G.Mul(act, r.beta)
	if err != nil {
		return nil, err
	}
	per, err := G.Add(logq, bs)
	if err != nil {
		return nil, err
	}
	// Regularisers the flow registered in this graph (an ODE's kinetic energy) join the loss, not the
	// reported free energy (which is read from logq and the action).
	for _, aux := range s.Aux() {
		if per, err = G.Add(per, aux); err != nil {
			return nil, err
		}
	}
	if r.noise, err = newNoiseFeed(s, batch); err != nil {
		return nil, err
	}
	G.Read(logq, &r.logqV)
	G.Read(act, &r.actV)
	return G.Mean(per)
}

// symmetrize returns log q_s(x) = log q(x) + softplus(log q(−x) − log q(x)) − ln 2.
func symmetrize(s *layers.Scope, f *models.Flow, x, logq *G.Node) (*G.Node, error) {
	neg, err := G.Neg(x)
	if err != nil {
		return nil, err
	}
	logqNeg, _, err := f.LogProb(s, neg)
	if err != nil {
		return nil, err
	}
	d, err := G.Sub(logqNeg, logq)
	if err != nil {
		return nil, err
	}
	sp, err := G.Softplus(d)
	if err != nil {
		return nil, err
	}
	out, err := G.Add(logq, sp)
	if err != nil {
		return nil, err
	}
	return G.Sub(out, s.Scalar(math.Ln2))
}

// Feed draws the batch's latents and sets β for the coming step.
func (r *ReverseKL) Feed(rng *rand.Rand) error {
	if err := r.Flow.Prior.Sample(rng, r.zVal); err != nil {
		return err
	}
	for k := range r.batch {
		r.noise.fillRow(rng, k)
	}
	return r.letZBeta()
}

// letZBeta lets the latents and β of step r.step into the graph and advances the step.
func (r *ReverseKL) letZBeta() error {
	if err := G.Let(r.z, r.zVal); err != nil {
		return err
	}
	if err := r.noise.let(); err != nil {
		return err
	}
	b := r.Beta(r.step)
	r.step++
	if r.dtype == tensor.Float32 {
		r.betaVal = G.NewF32(float32(b))
	} else {
		r.betaVal = G.NewF64(b)
	}
	return G.Let(r.beta, r.betaVal)
}

// Metrics reports, for the batch just run, the variational free energy mean[log q + S] (at β = 1) with
// its standard error, the importance-sampling estimate of ln Z and the effective sample size fraction.
func (r *ReverseKL) Metrics() map[string]float64 {
	if r.logqV == nil || r.actV == nil {
		return nil
	}
	return r.metricsOf(layers.Float64s(r.logqV.(tensor.Tensor)), layers.Float64s(r.actV.(tensor.Tensor)))
}

// metricsOf computes Metrics from per-sample log q and S.
func (r *ReverseKL) metricsOf(logq, action []float64) map[string]float64 {
	r.lastLogq, r.lastS = logq, action
	f := make([]float64, len(r.lastLogq))
	logw := make([]float64, len(f))
	for i := range f {
		f[i] = r.lastLogq[i] + r.lastS[i]
		logw[i] = -f[i]
	}
	m, se := MeanStdErr(f)
	lz, lzErr := LogMeanExp(logw)
	return map[string]float64{
		"free_energy": m, "free_energy_err": se, "beta": r.Beta(r.step - 1),
		"logZ_is": lz, "logZ_is_err": lzErr, "ess": ESS(logw),
	}
}
