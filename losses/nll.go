package losses

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/datasets/images"
	"rgflow/layers"
	"rgflow/models"
)

// Keys of NLL.State, for a trainer checkpoint's Extra map.
const (
	ExtraDataPosition = "data_position" // images handed out so far (the data order's whole state)
	ExtraDataSeed     = "data_seed"     // the order's seed, checked on restore
	ExtraDataLen      = "data_len"      // the training split's size, checked on restore
)

// NLL is maximum likelihood on 8-bit images with a flow: for a batch of images x,
//
//	loss = mean_b −[ln q(y_b) + Σ ln|dy/dx̃|_b]   (nats per image; y = logit of the dequantised x̃, see Preprocess)
//
// and Metrics reports it in bits per real pixel value and per canvas value (see the package doc:
// "bits_per_dim" divides the canvas's code length by the data's RealDim, "bits_per_dim_canvas" by
// D = C·L·L; they are equal unless the images were padded).
//
// Data order: images are drawn epoch by epoch in the permutations of an images.Order seeded by DataSeed, so
// the order depends on DataSeed and the data position only. Dequantisation noise and (with Flip) the
// horizontal flips are drawn from the rng that Feed is given (the trainer's, which its checkpoints save).
// A resumed run is therefore bit-for-bit the uninterrupted one when the data position is restored too:
// State and Restore carry it as strings for a checkpoint's Extra map.
type NLL struct {
	Flow *models.Flow
	// Data is the training split; its images must be C×L×L with the flow's C and L.
	Data *images.Dataset
	// Pre is the dequantisation and logit transform (zero value: u ~ U[0,1), α = 0.05).
	Pre Preprocess
	// Flip mirrors each image left–right with probability ½ (drawn from Feed's rng).
	Flip bool
	// DataSeed seeds the data order.
	DataSeed uint64

	order   *images.Order
	pendPos int64 // a position set before Build
	batch   int
	dim     int // canvas values per image, C·L·L
	realDim int // of which come from the data (the rest is padding)
	dtype   tensor.Dtype

	y, ldj       *G.Node
	yVal, ldjVal *tensor.Dense
	idx          []int
	flips        []bool
	pix          []uint8
	yBuf, ldBuf  []float64
	fedLD        []float64 // the preprocessing log-dets of the batch last fed
	globalIdx    []int     // the step's global batch of image indices (FeedShard)
	logqV        G.Value
}

// Build makes the loss graph for a batch: inputs "nll/y" (B, C, L, L) and "nll/logdet" (B).
func (n *NLL) Build(s *layers.Scope, batch int) (*G.Node, error) {
	if n.Flow == nil || n.Data == nil {
		return nil, fmt.Errorf("losses: NLL needs a Flow and a Dataset")
	}
	if err := n.Pre.Validate(); err != nil {
		return nil, err
	}
	if n.Data.Channels() != n.Flow.Channels || n.Data.Side() != n.Flow.L {
		return nil, fmt.Errorf("losses: NLL: the data are %d×%d×%d images, the flow wants %d×%d×%d",
			n.Data.Channels(), n.Data.Side(), n.Data.Side(), n.Flow.Channels, n.Flow.L, n.Flow.L)
	}
	if batch < 1 {
		return nil, fmt.Errorf("losses: NLL: batch %d, want ≥ 1", batch)
	}
	if err := n.ensureOrder(); err != nil {
		return nil, err
	}
	n.batch, n.dim, n.realDim, n.dtype = batch, n.Data.Dim(), n.Data.RealDim(), s.Dtype()
	n.y = s.Input("nll/y", n.Flow.Shape(batch)...)
	n.ldj = s.Input("nll/logdet", batch)
	n.yVal = layers.NewDense(s.Dtype(), n.Flow.Shape(batch), nil)
	n.ldjVal = layers.NewDense(s.Dtype(), []int{batch}, nil)
	n.idx = make([]int, batch)
	n.flips = make([]bool, batch)
	n.pix = make([]uint8, batch*n.dim)
	n.yBuf = make([]float64, batch*n.dim)
	n.ldBuf = make([]float64, batch)
	n.fedLD = make([]float64, batch)
	logq, _, err := n.Flow.LogProb(s, n.y)
	if err != nil {
		return nil, err
	}
	per, err := G.Add(logq, n.ldj)
	if err != nil {
		return nil, err
	}
	G.Read(logq, &n.logqV)
	m, err := G.Mean(per)
	if err != nil {
		return nil, err
	}
	return G.Neg(m)
}

func (n *NLL) ensureOrder() error {
	if n.order != nil {
		return nil
	}
	if n.Data == nil {
		return fmt.Errorf("losses: NLL has no Dataset")
	}
	o, err := images.NewOrder(n.Data.Len(), n.DataSeed)
	if err != nil {
		return err
	}
	if err := o.SetPosition(n.pendPos); err != nil {
		return err
	}
	n.order = o
	return nil
}

// Feed draws the next batch in the data order, flips (if asked) and dequantises it with rng, and Lets y and
// the preprocessing log-Jacobians into the graph.
func (n *NLL) Feed(rng *rand.Rand) error {
	if n.y == nil {
		return fmt.Errorf("losses: NLL.Feed before Build")
	}
	n.order.Next(n.idx)
	var flips []bool
	if n.Flip {
		for k := range n.flips {
			n.flips[k] = rng.Uint64()&1 == 1
		}
		flips = n.flips
	}
	if err := n.Data.Batch(n.pix, n.idx, flips); err != nil {
		return err
	}
	if err := n.Pre.Apply(rng, n.pix, n.dim, n.yBuf, n.ldBuf); err != nil {
		return err
	}
	return n.letBatch()
}

// letBatch lets the preprocessed batch in yBuf/ldBuf into the graph.
func (n *NLL) letBatch() error {
	copy(n.fedLD, n.ldBuf)
	layers.SetData(n.yVal, n.yBuf)
	layers.SetData(n.ldjVal, n.ldBuf)
	if err := G.Let(n.y, n.yVal); err != nil {
		return err
	}
	return G.Let(n.ldj, n.ldjVal)
}

// Metrics reports, for the batch just run, the negative log-likelihood in nats per image ("nll"), in bits
// per real pixel value ("bits_per_dim") and in bits per canvas value ("bits_per_dim_canvas"), each with its
// standard error over the batch ("…_err"), and the epoch (as a fraction: data position / N).
func (n *NLL) Metrics() map[string]float64 {
	if n.logqV == nil {
		return nil
	}
	return n.metricsOf(n.nllPerImage())
}

// metricsOf computes Metrics from per-image negative log-likelihoods.
func (n *NLL) metricsOf(nll []float64) map[string]float64 {
	m, se := MeanStdErr(nll)
	return map[string]float64{
		"nll": m, "nll_err": se,
		"bits_per_dim": BitsPerRealDim(m, n.dim, n.realDim), "bits_per_dim_err": se / (float64(n.realDim) * math.Ln2),
		"bits_per_dim_canvas": BitsPerDim(m, n.dim), "bits_per_dim_canvas_err": se / (float64(n.dim) * math.Ln2),
		"epoch": float64(n.order.Position()) / float64(n.Data.Len()),
	}
}

// DataPosition is the number of images handed out so far (0 before the first Feed).
func (n *NLL) DataPosition() int64 {
	if n.order == nil {
		return n.pendPos
	}
	return n.order.Position()
}

// SetDataPosition continues the data order from position p (e.g. a checkpoint's), before or after Build.
func (n *NLL) SetDataPosition(p int64) error {
	if p < 0 {
		return fmt.Errorf("losses: NLL: data position %d, want ≥ 0", p)
	}
	if n.order == nil {
		n.pendPos = p
		return nil
	}
	return n.order.SetPosition(p)
}

// State is the objective's resumable state, for a checkpoint's Extra map: the data position, and the seed
// and split size that Restore checks.
func (n *NLL) State() map[string]string {
	size := 0
	if n.Data != nil {
		size = n.Data.Len()
	}
	return map[string]string{
		ExtraDataPosition: strconv.FormatInt(n.DataPosition(), 10),
		ExtraDataSeed:     strconv.FormatUint(n.DataSeed, 10),
		ExtraDataLen:      strconv.Itoa(size),
	}
}

// Restore sets the data position from a State map, after checking that it was written for the same data
// seed and split size (a different data set or seed would make "position" meaningless). A map without
// ExtraDataPosition is an error.
func (n *NLL) Restore(extra map[string]string) error {
	ps, ok := extra[ExtraDataPosition]
	if !ok {
		return fmt.Errorf("losses: NLL: the checkpoint has no %s", ExtraDataPosition)
	}
	p, err := strconv.ParseInt(ps, 10, 64)
	if err != nil {
		return fmt.Errorf("losses: NLL: %s = %q: %w", ExtraDataPosition, ps, err)
	}
	if s, ok := extra[ExtraDataSeed]; ok && s != strconv.FormatUint(n.DataSeed, 10) {
		return fmt.Errorf("losses: NLL: the checkpoint's data seed is %s, this run's is %d", s, n.DataSeed)
	}
	if s, ok := extra[ExtraDataLen]; ok && n.Data != nil && s != strconv.Itoa(n.Data.Len()) {
		return fmt.Errorf("losses: NLL: the checkpoint was trained on %s images, this data set has %d", s, n.Data.Len())
	}
	return n.SetDataPosition(p)
}

// Eval is a likelihood evaluation over a whole split (see the package doc for the two bits/dim figures).
type Eval struct {
	N                                     int     // images evaluated
	Dim, RealDim                          int     // canvas values per image, and of those the data's own
	NLL, NLLErr                           float64 // nats per image, mean and standard error over images
	BitsPerDim, BitsPerDimErr             float64 // bits per real pixel value, mean and standard error
	BitsPerDimCanvas, BitsPerDimCanvasErr float64 // bits per canvas value (padding included), mean and error
}

// EvalBitsPerDim evaluates −ln p(x̃) of every image of data (in index order, no flips) with the flow's
// weights in store, running an Encoder of the given batch (the last partial batch is padded with image 0,
// whose extra results are dropped). Dequantisation noise comes from rng unless pre.Fixed. The standard
// errors are over images (the spread of the data, not Monte Carlo error of the noise alone).
func EvalBitsPerDim(flow *models.Flow, store *layers.Store, data *images.Dataset, batch int, pre Preprocess, rng *rand.Rand) (Eval, error) {
	return evalBitsPerDim(flow, store, data, batch, 0, pre, rng)
}

// EvalBitsPerDimWorkers is EvalBitsPerDim on workers goroutines (≥ 1), each with its own Encoder. The images
// are cut into chunks of batch, and chunk k's dequantisation noise comes from its own stream, a PCG seeded
// with (s, k) where s = rng.Uint64() is drawn once: the result depends on rng and batch, bit for bit, not on
// workers (it differs from EvalBitsPerDim's single stream only by the noise drawn).
func EvalBitsPerDimWorkers(flow *models.Flow, store *layers.Store, data *images.Dataset, batch, workers int, pre Preprocess, rng *rand.Rand) (Eval, error) {
	if workers < 1 {
		return Eval{}, fmt.Errorf("losses: eval: %d workers, want ≥ 1", workers)
	}
	return evalBitsPerDim(flow, store, data, batch, workers, pre, rng)
}

// evalBitsPerDim runs both: workers = 0 is the single-stream loop.
func evalBitsPerDim(flow *models.Flow, store *layers.Store, data *images.Dataset, batch, workers int, pre Preprocess, rng *rand.Rand) (Eval, error) {
	if data.Channels() != flow.Channels || data.Side() != flow.L {
		return Eval{}, fmt.Errorf("losses: eval: the data are %d×%d×%d images, the flow wants %d×%d×%d",
			data.Channels(), data.Side(), data.Side(), flow.Channels, flow.L, flow.L)
	}
	if batch < 1 {
		return Eval{}, fmt.Errorf("losses: eval: batch %d, want ≥ 1", batch)
	}
	batch = min(batch, data.Len())
	dim := data.Dim()
	chunks := (data.Len() + batch - 1) / batch
	nw := max(1, min(workers, chunks))
	// The encoders are built one after the other (building binds the store's tensors), then run in parallel.
	encs := make([]*evalWorker, nw)
	for w := range encs {
		enc, err := models.NewEncoder(flow, store, batch)
		if err != nil {
			return Eval{}, err
		}
		defer enc.Close()
		encs[w] = &evalWorker{enc: enc, idx: make([]int, batch), pix: make([]uint8, batch*dim),
			y: make([]float64, batch*dim), ld: make([]float64, batch)}
	}
	nll := make([]float64, data.Len())
	chunk := func(ew *evalWorker, k int, rng *rand.Rand) error {
		start := k * batch
		valid := min(batch, data.Len()-start)
		for i := range ew.idx {
			ew.idx[i] = 0
			if i < valid {
				ew.idx[i] = start + i
			}
		}
		if err := data.Batch(ew.pix, ew.idx, nil); err != nil {
			return err
		}
		if err := pre.Apply(rng, ew.pix, dim, ew.y, ew.ld); err != nil {
			return err
		}
		_, logq, err := ew.enc.Encode(ew.y)
		if err != nil {
			return fmt.Errorf("losses: eval: images %d…%d: %w", start, start+valid-1, err)
		}
		for i := 0; i < valid; i++ {
			nll[start+i] = -(logq[i] + ew.ld[i])
		}
		return nil
	}
	if workers == 0 {
		for k := range chunks {
			if err := chunk(encs[0], k, rng); err != nil {
				return Eval{}, err
			}
		}
	} else {
		base := rng.Uint64()
		var next atomic.Int64
		errs := make([]error, nw)
		var wg sync.WaitGroup
		for w, ew := range encs {
			wg.Go(func() {
				for k := int(next.Add(1) - 1); k < chunks; k = int(next.Add(1) - 1) {
					if errs[w] = chunk(ew, k, rand.New(rand.NewPCG(base, uint64(k)))); errs[w] != nil {
						return
					}
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return Eval{}, err
			}
		}
	}
	m, se := MeanStdErr(nll)
	real := data.RealDim()
	return Eval{N: len(nll), Dim: dim, RealDim: real, NLL: m, NLLErr: se,
		BitsPerDim: BitsPerRealDim(m, dim, real), BitsPerDimErr: se / (float64(real) * math.Ln2),
		BitsPerDimCanvas: BitsPerDim(m, dim), BitsPerDimCanvasErr: se / (float64(dim) * math.Ln2)}, nil
}

// evalWorker is one goroutine's encoder and buffers.
type evalWorker struct {
	enc   *models.Encoder
	idx   []int
	pix   []uint8
	y, ld []float64
}
