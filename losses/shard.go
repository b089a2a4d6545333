package losses

import (
	"fmt"

	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/train"
)

// Both objectives split over the Trainer's workers (train.ShardedObjective): a copy per worker builds the
// graph of its shard, and FeedShard draws every sample from that sample's own stream (train.Shard.Rand), so
// the content of a step's global batch is the same whatever the number of workers or processes.

var (
	_ train.ShardedObjective = (*ReverseKL)(nil)
	_ train.SampleReporter   = (*ReverseKL)(nil)
	_ train.ShardedObjective = (*NLL)(nil)
	_ train.SampleReporter   = (*NLL)(nil)
)

// NewShard returns an unbuilt copy with the same flow, action and annealing, at the same step.
func (r *ReverseKL) NewShard() (train.ShardedObjective, error) {
	return &ReverseKL{Flow: r.Flow, Action: r.Action, Symmetrize: r.Symmetrize, BetaStart: r.BetaStart,
		BetaSteps: r.BetaSteps, step: r.step}, nil
}

// FeedShard draws the latents of samples sh.Offset … sh.Offset+sh.Size−1, sample j from sh.Rand(j), and
// sets β for step sh.Step.
func (r *ReverseKL) FeedShard(sh *train.Shard) error {
	if r.z == nil {
		return fmt.Errorf("losses: ReverseKL.FeedShard before Build")
	}
	if sh.Size != r.batch {
		return fmt.Errorf("losses: ReverseKL: a shard of %d samples for a graph built for %d", sh.Size, r.batch)
	}
	if r.zOne == nil {
		r.zOne = layers.NewDense(r.dtype, r.Flow.Shape(1), nil)
	}
	for k := range sh.Size {
		rng := sh.Rand(sh.Offset + k)
		if err := r.Flow.Prior.Sample(rng, r.zOne); err != nil {
			return fmt.Errorf("losses: ReverseKL: sample %d: %w", sh.Offset+k, err)
		}
		copyRow(r.zVal, r.zOne, k)
		r.noise.fillRow(rng, k) // the sample's probes continue its own stream
	}
	r.step = sh.Step
	return r.letZBeta()
}

// copyRow copies the single-sample tensor one into row k of dst (same dtype).
func copyRow(dst, one *tensor.Dense, k int) {
	switch d := dst.Data().(type) {
	case []float64:
		o := one.Float64s()
		copy(d[k*len(o):], o)
	case []float32:
		o := one.Float32s()
		copy(d[k*len(o):], o)
	}
}

// SampleValues are the shard's log q(x) ("logq") and action S(x) ("action") per sample.
func (r *ReverseKL) SampleValues() map[string][]float64 {
	if r.logqV == nil || r.actV == nil {
		return nil
	}
	return map[string][]float64{
		"logq":   layers.Float64s(r.logqV.(tensor.Tensor)),
		"action": layers.Float64s(r.actV.(tensor.Tensor)),
	}
}

// MetricsOf is Metrics for a whole batch given its per-sample log q and S.
func (r *ReverseKL) MetricsOf(v map[string][]float64) map[string]float64 {
	return r.metricsOf(v["logq"], v["action"])
}

// NewShard returns an unbuilt copy over the same data, preprocessing and data order, at the same data
// position.
func (n *NLL) NewShard() (train.ShardedObjective, error) {
	return &NLL{Flow: n.Flow, Data: n.Data, Pre: n.Pre, Flip: n.Flip, DataSeed: n.DataSeed,
		pendPos: n.DataPosition()}, nil
}

// FeedShard takes the step's global batch of sh.Batch images from the data order (every shard advances
// the order by the whole batch, so all copies stay at the same position) and feeds images sh.Offset … of
// it; image j's flip and dequantisation noise come from sh.Rand(j).
func (n *NLL) FeedShard(sh *train.Shard) error {
	if n.y == nil {
		return fmt.Errorf("losses: NLL.FeedShard before Build")
	}
	if sh.Size != n.batch {
		return fmt.Errorf("losses: NLL: a shard of %d images for a graph built for %d", sh.Size, n.batch)
	}
	if len(n.globalIdx) != sh.Batch {
		n.globalIdx = make([]int, sh.Batch)
	}
	n.order.Next(n.globalIdx)
	d := n.dim
	for k := range sh.Size {
		j := sh.Offset + k
		rng := sh.Rand(j)
		var flip []bool
		if n.Flip {
			n.flips[k] = rng.Uint64()&1 == 1
			flip = n.flips[k : k+1]
		}
		pix := n.pix[k*d : (k+1)*d]
		if err := n.Data.Batch(pix, n.globalIdx[j:j+1], flip); err != nil {
			return err
		}
		if err := n.Pre.Apply(rng, pix, d, n.yBuf[k*d:(k+1)*d], n.ldBuf[k:k+1]); err != nil {
			return err
		}
	}
	return n.letBatch()
}

// SampleValues is the shard's negative log-likelihood per image, in nats ("nll").
func (n *NLL) SampleValues() map[string][]float64 {
	if n.logqV == nil {
		return nil
	}
	return map[string][]float64{"nll": n.nllPerImage()}
}

// MetricsOf is Metrics for a whole batch given its per-image negative log-likelihoods.
func (n *NLL) MetricsOf(v map[string][]float64) map[string]float64 {
	return n.metricsOf(v["nll"])
}

// nllPerImage is −(ln q(y) + ln|dy/dx̃|) of each image last run.
func (n *NLL) nllPerImage() []float64 {
	lq := layers.ValueFloats(n.logqV)
	nll := make([]float64, len(lq))
	for i, v := range lq {
		nll[i] = -(v + n.fedLD[i])
	}
	return nll
}
