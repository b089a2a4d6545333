package bulk

import (
	"fmt"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/models"
)

// RepairParam is the name of the trainable latents of a Repair objective.
const RepairParam = "repair/z"

// Repair is error correction as a train.Objective: given a configuration (or a batch of them) whose values on the
// sites Region are corrupted, it makes the latents of Region's causal cone trainable parameters (named
// RepairParam, started from Start), keeps every other latent fixed at Start, and minimises
//
//	loss(z) = Σ_{known values p} (F⁻¹(z)_p − Observed_p)² / (2σ²) − ln p(z),
//
// the negative log-posterior of the latents given the uncorrupted values under Gaussian observation noise σ
// (its minimum is the MAP reconstruction). Latents outside the cone cannot change the region (exactly, by
// the block structure), so only the cone's O(log L) latents per level are touched. The flow's weights must be
// frozen in the store (Store.Freeze of every flow parameter) so that the Trainer moves only RepairParam.
//
// The cone's decode runs through a ConeDecoder: only the blocks the free latents reach are evaluated, over
// a cache of the full decode of Start. Because every cone holds top-level latents, which reach every value,
// that alone saves nothing; it saves when the data term is restricted to a Window around the region (only
// the blocks that reach the window run) or the cone is truncated (Levels).
type Repair struct {
	Flow     *models.Flow
	Observed []float64 // C·L·L values; those at Region's sites are ignored
	Region   []int     // corrupted sites (row-major), in every channel
	Start    []float64 // C·L·L starting latents, e.g. F(Observed)
	// Sigma is the noise scale of the known values; 0 means 0.1.
	Sigma float64
	// All frees every latent instead of the cone's (the baseline the cone is measured against).
	All bool
	// Levels, when > 0, truncates the cone to its latents at RG levels below Levels (a cheaper repair that
	// leaves the coarse latents at Start; see ConeDecoder for why only such sets save decoding work).
	Levels int
	// Window, when not nil, restricts the data term to the known values on these sites (row-major, every
	// channel), e.g. the region and a margin around it. The decode then needs only the blocks that reach the
	// window (ConeDecoder), which is what makes the cone repair cheaper than the all-latent one; values
	// outside the window are no longer held to the observation and may drift.
	Window []int
	// FullDecode decodes the whole field through the flow at every step instead of through the
	// ConeDecoder (the two are equal to rounding; this is the reference the restricted decode is tested
	// and timed against). All always decodes in full.
	FullDecode bool
	// Name is the trainable parameter's name; empty means RepairParam. Repairs of several configurations
	// in one store need distinct names (a store keeps a parameter once created).
	Name string

	// Cone lists the trained latents (flat indices into the C·L·L grid, ascending within each channel),
	// set by Build; with All, every latent.
	Cone []int
	// Decoder is the restricted decoder Build made (nil with All or FullDecode).
	Decoder *ConeDecoder

	base, obs, mask *G.Node
	baseV, obsV, mV *tensor.Dense
}

// Build binds the objective for batch configurations (Observed and Start hold batch·C·L·L values; every
// configuration has the same Region and Window, and the loss is the sum of their losses, so with Adam,
// which scales every parameter separately, and no gradient clipping they are repaired independently).
func (r *Repair) Build(s *layers.Scope, batch int) (*G.Node, error) {
	f := r.Flow
	n := f.Channels * f.L * f.L
	if batch < 1 {
		return nil, fmt.Errorf("bulk: Repair: batch %d", batch)
	}
	if len(r.Observed) != batch*n || len(r.Start) != batch*n {
		return nil, fmt.Errorf("bulk: Repair: %d observed values and %d starting latents, want B·C·L·L = %d·%d", len(r.Observed), len(r.Start), batch, n)
	}
	if len(r.Region) == 0 {
		return nil, fmt.Errorf("bulk: Repair: empty region")
	}
	sigma := r.Sigma
	if sigma == 0 {
		sigma = 0.1
	}
	if !(sigma > 0) {
		return nil, fmt.Errorf("bulk: Repair: σ = %v, want > 0", sigma)
	}
	seq, err := layers.BlockSequence(f.Bijector)
	if err != nil {
		return nil, fmt.Errorf("bulk: Repair: %w", err)
	}
	cone, err := f.Hier.Cone(r.Region, seq)
	if err != nil {
		return nil, fmt.Errorf("bulk: Repair: %w", err)
	}
	if r.Levels < 0 || (r.All && r.Levels > 0) {
		return nil, fmt.Errorf("bulk: Repair: Levels = %d with All = %v, want Levels ≥ 0 and no truncation of All", r.Levels, r.All)
	}
	if r.Levels > 0 {
		cone = cone[:min(r.Levels, len(cone))]
	}
	v := f.L * f.L
	r.Cone = r.Cone[:0]
	r.Decoder = nil
	if r.All {
		for k := range n {
			r.Cone = append(r.Cone, k)
		}
	} else {
		for ch := 0; ch < f.Channels; ch++ {
			for _, lv := range cone {
				for _, site := range lv {
					r.Cone = append(r.Cone, ch*v+site)
				}
			}
		}
	}
	nc := len(r.Cone)
	init := make([]float64, batch*nc)
	scatter := make([]int, batch*nc)
	for b := range batch {
		for i, k := range r.Cone {
			init[b*nc+i] = r.Start[b*n+k]
			scatter[b*nc+i] = b*n + k
		}
	}
	zc := s.Param(r.param(), []int{batch * nc}, func(_ *rand.Rand, _ []int, data []float64) { copy(data, init) })
	shape := f.Shape(batch)
	r.base, r.obs, r.mask = s.Input("repair/base", shape...), s.Input("repair/observed", shape...), s.Input("repair/known", shape...)
	known := make([]float64, n)
	if r.Window == nil {
		for i := range known {
			known[i] = 1
		}
	} else {
		for ch := 0; ch < f.Channels; ch++ {
			for _, site := range r.Window {
				if site < 0 || site >= v {
					return nil, fmt.Errorf("bulk: Repair: window site %d outside the %d×%d lattice", site, f.L, f.L)
				}
				known[ch*v+site] = 1
			}
		}
	}
	for ch := 0; ch < f.Channels; ch++ {
		for _, site := range r.Region {
			known[ch*v+site] = 0
		}
	}
	for b := 1; b < batch; b++ {
		known = append(known, known[:n]...)
	}
	dt := s.Dtype()
	r.baseV, r.obsV, r.mV = layers.NewDense(dt, shape, r.Start), layers.NewDense(dt, shape, r.Observed), layers.NewDense(dt, shape, known)
	wrap := func(err error) error { return fmt.Errorf("bulk: Repair: %w", err) }
	z, err := layers.ScatterReplace(r.base, zc, scatter)
	if err != nil {
		return nil, wrap(err)
	}
	var x *G.Node
	if r.All || r.FullDecode {
		x, _, err = f.Bijector.Inverse(s, z)
	} else {
		if r.Decoder, err = NewConeDecoder(f, s.Store(), r.Start, r.Cone, r.Window); err != nil {
			return nil, wrap(err)
		}
		x, _, err = r.Decoder.Build(s, z)
	}
	if err != nil {
		return nil, wrap(err)
	}
	d, err := G.Sub(x, r.obs)
	if err != nil {
		return nil, wrap(err)
	}
	if d, err = G.HadamardProd(d, r.mask); err != nil {
		return nil, wrap(err)
	}
	sq, err := G.Square(d)
	if err != nil {
		return nil, wrap(err)
	}
	data, err := G.Sum(sq)
	if err != nil {
		return nil, wrap(err)
	}
	if data, err = G.Mul(data, s.Scalar(1/(2*sigma*sigma))); err != nil {
		return nil, wrap(err)
	}
	lp, err := f.Prior.LogProb(s, z)
	if err != nil {
		return nil, wrap(err)
	}
	lps, err := G.Sum(lp)
	if err != nil {
		return nil, wrap(err)
	}
	loss, err := G.Sub(data, lps)
	if err != nil {
		return nil, wrap(err)
	}
	return loss, nil
}

func (r *Repair) param() string {
	if r.Name == "" {
		return RepairParam
	}
	return r.Name
}

// Feed binds the fixed latents, the observation and the mask of known values.
func (r *Repair) Feed(*rand.Rand) error {
	for _, p := range []struct {
		n *G.Node
		v *tensor.Dense
	}{{r.base, r.baseV}, {r.obs, r.obsV}, {r.mask, r.mV}} {
		if err := G.Let(p.n, p.v); err != nil {
			return fmt.Errorf("bulk: Repair: %w", err)
		}
	}
	return nil
}

// Latents returns Start (every configuration of the batch) with the cone's latents replaced by the values
// of the trained parameter in store.
func (r *Repair) Latents(store *layers.Store) ([]float64, error) {
	t, ok := store.Get(r.param())
	if !ok {
		return nil, fmt.Errorf("bulk: Repair: no %s in the store (Build first)", r.param())
	}
	zc := layers.Float64s(t)
	z := append([]float64(nil), r.Start...)
	n := r.Flow.Channels * r.Flow.L * r.Flow.L
	nc := len(r.Cone)
	if len(zc) != len(z)/n*nc {
		return nil, fmt.Errorf("bulk: Repair: %s holds %d values, want %d", r.param(), len(zc), len(z)/n*nc)
	}
	for b := range len(z) / n {
		for i, k := range r.Cone {
			z[b*n+k] = zc[b*nc+i]
		}
	}
	return z, nil
}
