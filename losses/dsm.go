package losses

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/models/diffusion"
	"rgflow/train"
)

// DSM is denoising score matching for a linear, mode-diagonal diffusion process (package diffusion) with a
// graph score network (diffusion.GraphScore: CNNScore or EffectiveScore; a diffusion.Residual network
// regresses onto the target minus its exact Gaussian base, −u/v(t) per mode, so that the sum is the score). For a data field x_0 (C channels, each a lattice field with mode
// coordinates u_0 = F x_0, F orthogonal), a time t uniform in [TMin, T] (or by importance: TSampling) and white noise ε in mode
// coordinates, the exact transition gives
//
//	u_t = m(t) u_0 + √q(t) ε   (per mode coordinate j: mean factor m_j(0,t), variance q_j(0,t)),
//
// whose conditional score is −(u_t − m u_0)/q = −ε/√q per mode (mapped back to position space by Fᵀ). The
// loss of one sample is
//
//	ℓ = Σ_{c,j} λ_j(t) (s̃_{c,j} + ε_{c,j}/√q_j)²,   s̃ = F s_θ(x_t, t) (the network's score in mode coordinates),
//
// summed over channels and mode coordinates, and the objective is its mean over the batch. The weighting is
// "variance" (λ_j = q_j: ℓ = Σ (√q s̃ + ε)², the ε-prediction error) or "likelihood" (λ_j = b_j(t)², the
// squared diffusion coefficient, which makes the time integral of the loss the likelihood bound). Both are
// per mode: a process with different rates per mode (heat flow) weights each mode by its own variance or
// diffusion. For an exact Gaussian start (free field, v_j(0) per mode) the minimum over s of the expected
// loss at time t is Σ_j λ_j (1/q_j − 1/v_j(t)) per channel (v_j(t) = m_j² v_j(0) + q_j, the marginal
// variance), reached by the exact score −u_j/v_j(t).
//
// Data order: the data set is read in epochs, each a permutation of the samples drawn from a PCG seeded
// by (DataSeed, epoch); global sample p of the run (p = step·batch + j) is the data sample perm_{p/N}[p mod
// N]. With the Trainer's data-parallel path (FeedShard) p comes from the step, so a resumed or differently
// split run sees the same data; with Feed the position is a counter, saved in checkpoints (State/Restore),
// so a resume is exact too.
type DSM struct {
	Net       diffusion.GraphScore
	Data      []float64 // N samples of C·V values each (unused with Chains)
	Weighting string    // "variance" (default when empty) or "likelihood"
	TMin      float64   // > 0
	DataSeed  uint64
	// TSampling is "uniform" (default when empty) or "importance": t drawn from p(t) ∝ Σ_j λ_j(t)/q_j(t)
	// (the size of the regression target; piecewise constant on 512 equal cells of [TMin, T]) and the
	// sample's loss multiplied by the exact correction 1/((T − TMin) p(t)), so that the objective is
	// unchanged in expectation. It reduces the variance of the likelihood weighting (target ∝ 1/t at small
	// t); for the variance weighting p is flat and it is uniform sampling.
	TSampling string
	// Chains, when set, replaces Data: HMC chains advanced once per step, sample j of a batch taken from
	// chain j mod K (see HMCChains). Their state is part of State/Restore; they cannot be split over workers.
	Chains *HMCChains

	times *timeSampler

	pos       int64
	scratch   drawScratch
	batch     int
	dtype     tensor.Dtype
	x, t      *G.Node
	w, target *G.Node
	bufs      dsmBufs
	perm      []int
	permEpoch int64
}

type dsmBufs struct{ x, xin, t, w, target []float64 }

// drawScratch holds draw's per-sample work arrays (length V each), kept between calls.
type drawScratch struct{ m, q, a, b, u []float64 }

func (s *drawScratch) ensure(V int) {
	if len(s.m) != V {
		*s = drawScratch{m: make([]float64, V), q: make([]float64, V), a: make([]float64, V), b: make([]float64, V), u: make([]float64, V)}
	}
}

// scale is d.Net.Scale(t) given the transition (m, q) from 0 to t. For a CNNScore it is computed from m
// and q directly, with the same operations in the same order as CNNScore.Scale (which computes the
// transition again): c(t) = 1/√(mean_j (q_j + m_j² v0_j)).
func (d *DSM) scale(t float64, m, q []float64) (float64, error) {
	cnn, ok := d.Net.(*diffusion.CNNScore)
	if !ok || len(cnn.V0) != len(m) {
		return d.Net.Scale(t)
	}
	sum := 0.0
	for j, v0 := range cnn.V0 {
		sum += q[j] + m[j]*m[j]*v0
	}
	return 1 / math.Sqrt(sum/float64(len(m))), nil
}

func (d *DSM) check() error {
	if d.Net == nil {
		return fmt.Errorf("losses: DSM needs a score network")
	}
	switch d.Weighting {
	case "", "variance", "likelihood":
	default:
		return fmt.Errorf("losses: DSM: weighting %q, want variance or likelihood", d.Weighting)
	}
	T := d.Net.Process().T()
	if !(d.TMin > 0 && d.TMin < T) {
		return fmt.Errorf("losses: DSM: t_min=%v, want 0 < t_min < T=%v", d.TMin, T)
	}
	switch d.TSampling {
	case "", "uniform", "importance":
	default:
		return fmt.Errorf("losses: DSM: t sampling %q, want uniform or importance", d.TSampling)
	}
	D := d.Net.Channels() * d.Net.Process().Lattice().V
	if d.Chains != nil {
		if d.Chains.Size() != D {
			return fmt.Errorf("losses: DSM: the HMC chains hold fields of %d values, want C·V=%d", d.Chains.Size(), D)
		}
		return nil
	}
	if len(d.Data) == 0 || len(d.Data)%D != 0 {
		return fmt.Errorf("losses: DSM: %d data values, want a positive multiple of C·V=%d", len(d.Data), D)
	}
	return nil
}

// Samples is the number of data samples.
func (d *DSM) Samples() int { return len(d.Data) / (d.Net.Channels() * d.Net.Process().Lattice().V) }

// Build makes the loss graph for a batch: inputs x_t·c(t) (B, C, L, L), t (B), the weights √λ·c(t) and the
// targets −√λ·ε/√q (both (B·C, V), in mode coordinates).
func (d *DSM) Build(s *layers.Scope, batch int) (*G.Node, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	lat := d.Net.Process().Lattice()
	C, L, V := d.Net.Channels(), lat.L, lat.V
	d.batch, d.dtype = batch, s.Dtype()
	d.x = s.Input("dsm/x", batch, d.Net.InputChannels(), L, L)
	d.t = s.Input("dsm/t", batch)
	d.w = s.Input("dsm/w", batch*C, V)
	d.target = s.Input("dsm/target", batch*C, V)
	f, err := d.Net.Build(s, d.x, d.t)
	if err != nil {
		return nil, err
	}
	f2, err := layers.Reshape(f, batch*C, V)
	if err != nil {
		return nil, err
	}
	// Fᵀ: column j of F-transpose is mode coordinate j's basis vector, so f2·Fᵀ holds the mode coordinates.
	ft := make([]float64, V*V)
	e, u := make([]float64, V), make([]float64, V)
	for i := range V {
		clear(e)
		e[i] = 1
		lat.ToModes(u, e)
		copy(ft[i*V:(i+1)*V], u) // row i of Fᵀ = column i of F = modes of e_i
	}
	ftNode := G.NewMatrix(s.Graph(), s.Dtype(), G.WithShape(V, V), G.WithName("dsm/modes"),
		G.WithValue(layers.NewDense(s.Dtype(), []int{V, V}, ft)))
	// layers.MatMul: the kit's product kernels on the calling goroutine (G.Mul hands gonum this
	// (B·C, V)·(V, V) product, which it splits over goroutines).
	modes, err := layers.MatMul(f2, ftNode)
	if err != nil {
		return nil, err
	}
	wm, err := G.HadamardProd(modes, d.w)
	if err != nil {
		return nil, err
	}
	r, err := G.Sub(wm, d.target)
	if err != nil {
		return nil, err
	}
	sq, err := G.Square(r)
	if err != nil {
		return nil, err
	}
	sum, err := G.Sum(sq)
	if err != nil {
		return nil, err
	}
	return G.Div(sum, s.Scalar(float64(batch)))
}

// index returns the data sample at global position p.
func (d *DSM) index(p int64) int {
	n := int64(d.Samples())
	ep := p / n
	if d.perm == nil || d.permEpoch != ep {
		d.perm = rand.New(rand.NewPCG(d.DataSeed, uint64(ep))).Perm(int(n))
		d.permEpoch = ep
	}
	return d.perm[p%n]
}

// draw fills sample j of the buffers from data sample idx with time and noise from rng. It returns the
// time, and writes x_t (unscaled) into xt and ε (mode coordinates) into eps when they are non-nil.
func (d *DSM) draw(j, idx int, rng *rand.Rand, b *dsmBufs, xt, eps []float64) (float64, error) {
	sde := d.Net.Process()
	lat := sde.Lattice()
	C, V := d.Net.Channels(), lat.V
	T := sde.T()
	t, corr := d.TMin+(T-d.TMin)*rng.Float64(), 1.0
	if d.TSampling == "importance" {
		if d.times == nil {
			ts, err := newTimeSampler(d, timeCells)
			if err != nil {
				return 0, err
			}
			d.times = ts
		}
		t, corr = d.times.draw(rng)
	}
	src := d.Data
	if d.Chains != nil {
		src, idx = d.Chains.Field(idx), 0
	}
	d.scratch.ensure(V)
	m, q := d.scratch.m, d.scratch.q
	if err := sde.Transition(0, t, m, q); err != nil {
		return 0, err
	}
	lam := q
	if d.Weighting == "likelihood" {
		a, bb := d.scratch.a, d.scratch.b
		if err := sde.Coefficients(t, a, bb); err != nil {
			return 0, err
		}
		for k := range bb {
			bb[k] *= bb[k]
		}
		lam = bb
	}
	c, err := d.scale(t, m, q)
	if err != nil {
		return 0, err
	}
	b.t[j] = t
	u := d.scratch.u
	var v0 []float64 // the exact Gaussian base of a residual network (its score −u/v(t) leaves the target)
	if r, ok := d.Net.(diffusion.Residual); ok {
		v0 = r.ResidualBase().V0
	}
	for ch := range C {
		x0 := src[(idx*C+ch)*V : (idx*C+ch+1)*V]
		lat.ToModes(u, x0)
		row := (j*C + ch) * V
		for k := range u {
			e := rng.NormFloat64()
			sq := math.Sqrt(q[k])
			u[k] = m[k]*u[k] + sq*e
			sl := math.Sqrt(lam[k] * corr)
			b.w[row+k] = sl * c
			b.target[row+k] = -sl * e / sq
			if v0 != nil {
				b.target[row+k] += sl * u[k] / (m[k]*m[k]*v0[k] + q[k])
			}
			if eps != nil {
				eps[ch*V+k] = e
			}
		}
		xs := b.x[row : row+V]
		lat.FromModes(xs, u)
		if xt != nil {
			copy(xt[ch*V:], xs)
		}
		for k := range xs {
			xs[k] *= c
		}
	}
	return t, nil
}

func (d *DSM) ensureBufs(n int) {
	V := d.Net.Process().Lattice().V
	C := d.Net.Channels()
	if len(d.bufs.t) != n {
		d.bufs = dsmBufs{x: make([]float64, n*C*V), xin: make([]float64, n*d.Net.InputChannels()*V), t: make([]float64, n), w: make([]float64, n*C*V), target: make([]float64, n*C*V)}
	}
}

func (d *DSM) let() error {
	C, L, V := d.Net.Channels(), d.Net.Process().Lattice().L, d.Net.Process().Lattice().V
	B := d.batch
	d.Net.Input(d.bufs.xin, d.bufs.x)
	for _, p := range []struct {
		n     *G.Node
		shape []int
		v     []float64
	}{{d.x, []int{B, d.Net.InputChannels(), L, L}, d.bufs.xin}, {d.t, []int{B}, d.bufs.t}, {d.w, []int{B * C, V}, d.bufs.w}, {d.target, []int{B * C, V}, d.bufs.target}} {
		if err := G.Let(p.n, layers.NewDense(d.dtype, p.shape, p.v)); err != nil {
			return err
		}
	}
	return nil
}

// Feed draws the next batch: data in the epoch order from the saved position (or the HMC chains after
// one more advance), times and noise from rng.
func (d *DSM) Feed(rng *rand.Rand) error {
	d.ensureBufs(d.batch)
	if d.Chains != nil {
		if err := d.Chains.Advance(); err != nil {
			return fmt.Errorf("losses: DSM: %w", err)
		}
	}
	for j := range d.batch {
		idx := j
		if d.Chains == nil {
			idx = d.index(d.pos)
		} else {
			idx = j % d.Chains.Len()
		}
		if _, err := d.draw(j, idx, rng, &d.bufs, nil, nil); err != nil {
			return fmt.Errorf("losses: DSM: %w", err)
		}
		d.pos++
	}
	return d.let()
}

// NewShard returns an unbuilt copy sharing the data (train.ShardedObjective). HMC chains cannot be shared:
// with Chains it fails.
func (d *DSM) NewShard() (train.ShardedObjective, error) {
	if d.Chains != nil {
		return nil, fmt.Errorf("losses: DSM: HMC chains advance once per step and cannot be split over workers; use one worker")
	}
	return &DSM{Net: d.Net, Data: d.Data, Weighting: d.Weighting, TMin: d.TMin, DataSeed: d.DataSeed, TSampling: d.TSampling}, nil
}

// FeedShard feeds the shard's samples: global sample j of step s is data position s·batch + j, with time
// and noise from sh.Rand(j). With Chains the shard must be the whole batch (one worker); the chains advance
// once and sample j is chain j mod K's field.
func (d *DSM) FeedShard(sh *train.Shard) error {
	d.ensureBufs(sh.Size)
	if d.Chains != nil {
		if sh.Size != sh.Batch {
			return fmt.Errorf("losses: DSM: HMC chains cannot feed a shard of %d of a batch of %d; use one worker", sh.Size, sh.Batch)
		}
		if err := d.Chains.Advance(); err != nil {
			return fmt.Errorf("losses: DSM: %w", err)
		}
	}
	for j := range sh.Size {
		g := sh.Offset + j
		var idx int
		if d.Chains != nil {
			idx = g % d.Chains.Len()
		} else {
			idx = d.index(sh.Step*int64(sh.Batch) + int64(g))
		}
		if _, err := d.draw(j, idx, sh.Rand(g), &d.bufs, nil, nil); err != nil {
			return fmt.Errorf("losses: DSM: %w", err)
		}
	}
	d.pos = (sh.Step + 1) * int64(sh.Batch)
	return d.let()
}

// State is the data position and, with Chains, the chains' state (train.StatefulObjective).
func (d *DSM) State() map[string]string {
	st := map[string]string{"dsm_pos": strconv.FormatInt(d.pos, 10)}
	if d.Chains != nil {
		st["dsm_chains"] = d.Chains.State()
	}
	return st
}

// Restore sets the data position (and the chains' state) from a checkpoint; it changes nothing when any of
// it is invalid.
func (d *DSM) Restore(st map[string]string) error {
	v, ok := st["dsm_pos"]
	if !ok {
		return nil
	}
	p, err := strconv.ParseInt(v, 10, 64)
	if err != nil || p < 0 {
		return fmt.Errorf("losses: DSM: saved data position %q is not a position", v)
	}
	c, has := st["dsm_chains"]
	switch {
	case d.Chains != nil && !has:
		return fmt.Errorf("losses: DSM: the checkpoint holds no HMC chain state (the run was trained on a sample file?)")
	case d.Chains == nil && has:
		return fmt.Errorf("losses: DSM: the checkpoint holds HMC chain state but this run reads a sample file")
	case has:
		if err := d.Chains.Restore(c); err != nil {
			return fmt.Errorf("losses: DSM: %w", err)
		}
	}
	d.pos = p
	return nil
}

// Evaluate estimates the expected loss of any host score on n samples drawn like the training batches
// (data from the epoch order starting at position 0, times and noise from rng): the mean and its standard
// error. It does not move the training position.
func (d *DSM) Evaluate(score diffusion.Score, n int, rng *rand.Rand) (mean, se float64, err error) {
	if err := d.check(); err != nil {
		return 0, 0, err
	}
	if d.Chains != nil || len(d.Data) == 0 {
		return 0, 0, fmt.Errorf("losses: DSM: Evaluate needs samples in Data (not HMC chains)")
	}
	if n < 2 {
		return 0, 0, fmt.Errorf("losses: DSM: Evaluate on %d samples, want ≥ 2", n)
	}
	lat := d.Net.Process().Lattice()
	C, V := d.Net.Channels(), lat.V
	var b dsmBufs
	b.x, b.t, b.w, b.target = make([]float64, C*V), make([]float64, 1), make([]float64, C*V), make([]float64, C*V)
	xt, s, sb, u := make([]float64, C*V), make([]float64, C*V), make([]float64, C*V), make([]float64, V)
	vals := make([]float64, n)
	for i := range n {
		t, err := d.draw(0, d.index(int64(i)), rng, &b, xt, nil)
		if err != nil {
			return 0, 0, err
		}
		if err := score.Score(t, xt, s); err != nil {
			return 0, 0, err
		}
		if r, ok := d.Net.(diffusion.Residual); ok { // the target is the residual's: compare s − base
			if err := r.ResidualBase().Score(t, xt, sb); err != nil {
				return 0, 0, err
			}
			for i := range s {
				s[i] -= sb[i]
			}
		}
		cs, err := d.Net.Scale(t)
		if err != nil {
			return 0, 0, err
		}
		l := 0.0
		for ch := range C {
			lat.ToModes(u, s[ch*V:(ch+1)*V])
			for k := range u {
				w := b.w[ch*V+k] / cs // √λ
				r := w*u[k] - b.target[ch*V+k]
				l += r * r
			}
		}
		vals[i] = l
	}
	mean, se = MeanStdErr(vals)
	return mean, se, nil
}
