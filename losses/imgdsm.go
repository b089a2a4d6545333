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

// ImageDSM is denoising score matching for images under an image process (diffusion.ImageProcess) with
// the ε-predicting U-Net of diffusion.ImageScore. For a data image y (uint8 pixels p plus uniform
// dequantisation noise, x_0 = 2(p + u)/256 − 1), a time t uniform in [TMin, 1] and white noise ε (pixel
// space, so its cosine coordinates F ε are white too), the exact transition gives
//
//	x_t = Fᵀ(m(t) ⊙ F x_0 + √q(t) ⊙ F ε)   (m, q per mode; for vp and ve simply m x_0 + √q ε),
//
// and the loss of one image is ‖ε̂(c(t) x_t, t) − ε‖² / D (D = C·H·W: the mean over pixel values, 1 for
// ε̂ = 0), averaged over the batch. In mode coordinates this is DSM with the per-mode variance weighting
// λ_j = q_j (see diffusion.ImageScore), divided by D.
//
// Data order: epochs of permutations drawn from a PCG seeded by (DataSeed, epoch); global sample p of the
// run is image perm_{p/N}[p mod N]. The dequantisation noise, t and ε of a sample come from the Trainer's
// generator (Feed) or the sample's own stream (FeedShard); the position is saved in checkpoints
// (State/Restore), so a resumed run sees the same images in the same order.
type ImageDSM struct {
	Score    *diffusion.ImageScore
	Pixels   []uint8 // N images of C·H·W values
	TMin     float64
	DataSeed uint64

	pos       int64
	batch     int
	dtype     tensor.Dtype
	x, t, eps *G.Node
	bx, bt    []float64
	be        []float64
	perm      []int
	permEpoch int64
}

func (d *ImageDSM) dim() int { return d.Score.Proc.Image().Size() }

func (d *ImageDSM) check() error {
	if d.Score == nil {
		return fmt.Errorf("losses: image DSM needs a score network")
	}
	if !(d.TMin > 0 && d.TMin < 1) {
		return fmt.Errorf("losses: image DSM: t_min=%v, want 0 < t_min < 1", d.TMin)
	}
	if D := d.dim(); len(d.Pixels) == 0 || len(d.Pixels)%D != 0 {
		return fmt.Errorf("losses: image DSM: %d pixel values, want a positive multiple of C·H·W=%d", len(d.Pixels), D)
	}
	return nil
}

// Samples is the number of images.
func (d *ImageDSM) Samples() int { return len(d.Pixels) / d.dim() }

// Build makes the loss graph for a batch: inputs c(t)·x_t (B, C, H, W), t (B) and ε (B, C, H, W).
func (d *ImageDSM) Build(s *layers.Scope, batch int) (*G.Node, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	b := d.Score.Proc.Image()
	d.batch, d.dtype = batch, s.Dtype()
	d.x = s.Input("imgdsm/x", batch, b.C, b.H, b.W)
	d.t = s.Input("imgdsm/t", batch)
	d.eps = s.Input("imgdsm/eps", batch, b.C, b.H, b.W)
	f, err := d.Score.Build(s, d.x, d.t)
	if err != nil {
		return nil, err
	}
	r, err := G.Sub(f, d.eps)
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
	return G.Div(sum, s.Scalar(float64(batch*b.Size())))
}

func (d *ImageDSM) index(p int64) int {
	n := int64(d.Samples())
	ep := p / n
	if d.perm == nil || d.permEpoch != ep {
		d.perm = rand.New(rand.NewPCG(d.DataSeed, uint64(ep))).Perm(int(n))
		d.permEpoch = ep
	}
	return d.perm[p%n]
}

// Draw writes one training sample from image idx: c(t)·x_t into x and ε into eps (C·H·W each); it returns t.
func (d *ImageDSM) Draw(idx int, rng *rand.Rand, x, eps []float64) (float64, error) {
	proc := d.Score.Proc
	b := proc.Image()
	D := b.Size()
	t := d.TMin + (1-d.TMin)*rng.Float64()
	m, q := make([]float64, D), make([]float64, D)
	if err := proc.Transition(0, t, m, q); err != nil {
		return 0, err
	}
	c, err := d.Score.Scale(t)
	if err != nil {
		return 0, err
	}
	px := d.Pixels[idx*D : (idx+1)*D]
	for i, p := range px {
		x[i] = 2*(float64(p)+rng.Float64())/256 - 1
	}
	for i := range eps {
		eps[i] = rng.NormFloat64()
	}
	if proc.Kind() == "heat" {
		u, e := make([]float64, D), make([]float64, D)
		b.ToModes(u, x)
		b.ToModes(e, eps)
		for j := range u {
			u[j] = m[j]*u[j] + math.Sqrt(q[j])*e[j]
		}
		b.FromModes(x, u)
	} else { // the same m and q in every mode: no transform needed
		sm, sq := m[0], math.Sqrt(q[0])
		for i := range x {
			x[i] = sm*x[i] + sq*eps[i]
		}
	}
	for i := range x {
		x[i] *= c
	}
	return t, nil
}

func (d *ImageDSM) ensure(n int) {
	D := d.dim()
	if len(d.bt) != n {
		d.bx, d.be, d.bt = make([]float64, n*D), make([]float64, n*D), make([]float64, n)
	}
}

func (d *ImageDSM) let() error {
	b := d.Score.Proc.Image()
	shape := []int{d.batch, b.C, b.H, b.W}
	if err := G.Let(d.x, layers.NewDense(d.dtype, shape, d.bx)); err != nil {
		return err
	}
	if err := G.Let(d.t, layers.NewDense(d.dtype, []int{d.batch}, d.bt)); err != nil {
		return err
	}
	return G.Let(d.eps, layers.NewDense(d.dtype, shape, d.be))
}

// Feed draws the next batch: images in the epoch order from the saved position, dequantisation, times
// and noise from rng.
func (d *ImageDSM) Feed(rng *rand.Rand) error {
	d.ensure(d.batch)
	D := d.dim()
	for j := range d.batch {
		t, err := d.Draw(d.index(d.pos), rng, d.bx[j*D:(j+1)*D], d.be[j*D:(j+1)*D])
		if err != nil {
			return fmt.Errorf("losses: image DSM: %w", err)
		}
		d.bt[j] = t
		d.pos++
	}
	return d.let()
}

// NewShard returns an unbuilt copy sharing the images (train.ShardedObjective).
func (d *ImageDSM) NewShard() (train.ShardedObjective, error) {
	return &ImageDSM{Score: d.Score, Pixels: d.Pixels, TMin: d.TMin, DataSeed: d.DataSeed}, nil
}

// FeedShard feeds the shard's samples: global sample j of step s is data position s·batch + j, with its
// randomness from sh.Rand(j).
func (d *ImageDSM) FeedShard(sh *train.Shard) error {
	d.ensure(sh.Size)
	D := d.dim()
	for j := range sh.Size {
		g := sh.Offset + j
		p := sh.Step*int64(sh.Batch) + int64(g)
		t, err := d.Draw(d.index(p), sh.Rand(g), d.bx[j*D:(j+1)*D], d.be[j*D:(j+1)*D])
		if err != nil {
			return fmt.Errorf("losses: image DSM: %w", err)
		}
		d.bt[j] = t
	}
	d.pos = (sh.Step + 1) * int64(sh.Batch)
	return d.let()
}

// State is the data position (train.StatefulObjective).
func (d *ImageDSM) State() map[string]string {
	return map[string]string{"imgdsm_pos": strconv.FormatInt(d.pos, 10)}
}

// Restore sets the data position from a checkpoint.
func (d *ImageDSM) Restore(st map[string]string) error {
	v, ok := st["imgdsm_pos"]
	if !ok {
		return nil
	}
	p, err := strconv.ParseInt(v, 10, 64)
	if err != nil || p < 0 {
		return fmt.Errorf("losses: image DSM: saved data position %q is not a position", v)
	}
	d.pos = p
	return nil
}
