package bulk

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"rgflow/layers"
	"rgflow/models"
)

// genStep is one map of the generation pass x = F⁻¹(z), in the order generation applies them.
type genStep struct {
	names   []string           // sub-scope path of the map (the Named wrappers above it)
	block   *layers.BlockLayer // a block layer, or nil for a site-local map
	site    layers.Bijector    // the site-local map (ActNorm) when block is nil
	inverse bool               // apply the map's Inverse (plain generation) or its Forward (under an Invert)
}

// genSteps flattens the bijector b into the maps its generation pass (b.Inverse when inverse, b.Forward
// under an odd number of Invert wrappers) applies, in order. Like layers.BlockSequence it understands
// Chain, Named, Invert, block layers and the site-local ActNorm; any other bijector is an error because
// its locality is unknown.
func genSteps(b layers.Bijector, names []string, inverse bool) ([]genStep, error) {
	switch v := b.(type) {
	case layers.Chain:
		var out []genStep
		for n := range v {
			i := n
			if inverse {
				i = len(v) - 1 - n
			}
			s, err := genSteps(v[i], names, inverse)
			if err != nil {
				return nil, fmt.Errorf("chain link %d: %w", i, err)
			}
			out = append(out, s...)
		}
		return out, nil
	case layers.Named:
		return genSteps(v.Bijector, append(append([]string(nil), names...), v.Name), inverse)
	case *layers.Named:
		return genSteps(*v, names, inverse)
	case layers.Invert:
		return genSteps(v.Bijector, names, !inverse)
	case *layers.Invert:
		return genSteps(*v, names, inverse)
	case *layers.BlockLayer:
		return []genStep{{names: names, block: v, inverse: inverse}}, nil
	case layers.ActNorm, *layers.ActNorm:
		return []genStep{{names: names, site: v, inverse: inverse}}, nil
	default:
		return nil, fmt.Errorf("bulk: %T has unknown locality", b)
	}
}

func (st genStep) scope(root *layers.Scope) *layers.Scope {
	s := root
	for _, n := range st.names {
		s = s.Sub(n)
	}
	return s
}

// ConeDecoder is the generation map x = F⁻¹(z) restricted to the blocks a set of free latents can reach.
// It is built for base latents z₀ and a set of free latents (flat indices into the C·L·L grid); for any z
// that equals z₀ outside the free set it computes exactly F⁻¹(z) and ldj_I(z) = ln|det ∂F⁻¹/∂z|, but runs
// each layer's block bijector only on the blocks whose inputs can differ from those at z₀.
//
// Every layer of a hierarchical flow acts on k×k blocks independently (a block's outputs depend only on its
// inputs). Walking the layers in generation order from the free latents and marking every block that meets
// the marked set gives, per layer, the dirty blocks; every other block sees the same inputs as at z₀ and so
// gives the same outputs. NewConeDecoder decodes z₀ once through the full flow and caches the field after
// every layer. Build then gathers each layer's dirty blocks into one small batch (block b's C·k·k values in
// a column, as the block layer itself lays them out), applies the layer's own block bijector to it (same
// parameters, same graph ops, a narrower batch), and scatters the result over the cached outputs of the
// clean blocks. Site-local maps (ActNorm) are applied to the whole field; they are cheap and their log-det
// does not depend on z. The log-det is ldj_I(z₀) plus the change of the dirty blocks' log-dets:
//
//	ldj_I(z) = ldj_I(z₀) − Σ_dirty ldj_b(z₀) + Σ_dirty ldj_b(z).
//
// The saving is the fraction of blocks that are clean. Note that the causal cone of any region holds latents
// of the top level, whose block covers the whole lattice, so freeing a full cone makes every block of every
// lower layer dirty (the restricted decode is then the full decode); only sets without top-level latents (a
// truncated cone, see Repair.Levels) leave clean blocks.
//
// A window (a set of sites) asks for the decoded values on those sites only. Walking the layers backwards
// from the window (in inference order, marking every block that meets the marked set) gives, per layer,
// the blocks whose outputs can reach the window; Build then runs only the blocks that are both dirty and
// needed. Every needed block's inputs are outputs of needed blocks of the layer before (or latents), so the
// window's values are exact; the values elsewhere are stale and the log-det is not computed (nil). This is
// what makes a repair cheap: its data term restricted to a window around the region needs only the blocks of
// the window's own cone.
//
// The cache is taken with the weights in the store at construction, which must not change afterwards
// (freeze them), and in the store's dtype.
type ConeDecoder struct {
	flow  *models.Flow
	batch int
	steps []genStep
	free  []int
	// per step: dirty and clean block indices into Hier.Blocks (nil for site-local steps)
	dirty, clean [][]int
	// after[t] is the field after step t at z₀ (B·C·L·L values)
	after  [][]float64
	shift  []float64 // per sample, ldj_I(z₀) − Σ_dirty ldj_b(z₀)
	window bool      // decoded values wanted on a window only (no log-det)
	// BlocksRun and BlocksTotal count block evaluations per decode of one sample: restricted and full.
	BlocksRun, BlocksTotal int
}

// NewConeDecoder prepares the restricted decode of flow (weights in store) around the base latents base
// (B·C·L·L values: a batch of B samples) with the latents at the flat indices free (into one sample's
// C·L·L grid, the same for every sample) allowed to change. window lists the sites (row-major, every
// channel) whose decoded values are wanted; nil means every site (and the log-det).
func NewConeDecoder(flow *models.Flow, store *layers.Store, base []float64, free, window []int) (*ConeDecoder, error) {
	n := flow.Channels * flow.L * flow.L
	if len(base) == 0 || len(base)%n != 0 {
		return nil, fmt.Errorf("bulk: ConeDecoder: %d base latents, want a multiple B·C·L·L of C·L·L = %d", len(base), n)
	}
	v := flow.L * flow.L
	mark := make([]bool, v)
	for _, k := range free {
		if k < 0 || k >= n {
			return nil, fmt.Errorf("bulk: ConeDecoder: free latent %d outside 0 … %d", k, n-1)
		}
		mark[k%v] = true // channels share their sites: a block holds every channel of its sites
	}
	steps, err := genSteps(flow.Bijector, nil, true)
	if err != nil {
		return nil, fmt.Errorf("bulk: ConeDecoder: %w", err)
	}
	d := &ConeDecoder{flow: flow, batch: len(base) / n, steps: steps, free: append([]int(nil), free...), window: window != nil}
	d.dirty, d.clean = make([][]int, len(steps)), make([][]int, len(steps))
	// needed[t][b]: block b of step t can reach the window (all blocks without a window).
	needed := make([][]bool, len(steps))
	want := make([]bool, v)
	for _, s := range window {
		if s < 0 || s >= v {
			return nil, fmt.Errorf("bulk: ConeDecoder: window site %d outside the %d×%d lattice", s, flow.L, flow.L)
		}
		want[s] = true
	}
	for t := len(steps) - 1; t >= 0; t-- {
		st := steps[t]
		if st.block == nil {
			continue
		}
		blocks := flow.Hier.Blocks(st.block.Level, st.block.Decimator)
		needed[t] = make([]bool, len(blocks))
		for b, sites := range blocks {
			if window == nil {
				needed[t][b] = true
				continue
			}
			for _, s := range sites {
				if want[s] {
					needed[t][b] = true
					break
				}
			}
		}
		for b, sites := range blocks {
			if needed[t][b] {
				for _, s := range sites {
					want[s] = true
				}
			}
		}
	}
	for t, st := range steps {
		if st.block == nil {
			continue
		}
		if st.block.Hier != flow.Hier || st.block.Channels != flow.Channels {
			return nil, fmt.Errorf("bulk: ConeDecoder: block layer %s has hierarchy %v and %d channels, the flow %v and %d",
				st.block.Name, st.block.Hier, st.block.Channels, flow.Hier, flow.Channels)
		}
		blocks := flow.Hier.Blocks(st.block.Level, st.block.Decimator)
		var hit []int
		for b, sites := range blocks {
			dirty := false
			for _, s := range sites {
				if mark[s] {
					dirty = true
					break
				}
			}
			switch {
			case dirty:
				hit = append(hit, b)
				if needed[t][b] {
					d.dirty[t] = append(d.dirty[t], b)
				}
			case needed[t][b]:
				d.clean[t] = append(d.clean[t], b)
			}
		}
		for _, b := range hit {
			for _, s := range blocks[b] {
				mark[s] = true
			}
		}
		d.BlocksRun += len(d.dirty[t])
		d.BlocksTotal += len(blocks)
	}
	// The full decode of z₀, layer by layer, through the flow's own maps.
	after, ldj, err := d.fullDecode(store, base)
	if err != nil {
		return nil, err
	}
	d.after = after
	if d.window {
		return d, nil
	}
	// The dirty blocks' log-det at z₀, through the restricted graph.
	dld, err := d.runRestricted(store, base)
	if err != nil {
		return nil, err
	}
	d.shift = make([]float64, d.batch)
	for b := range d.shift {
		d.shift[b] = ldj[b] - dld[b]
	}
	return d, nil
}

// fullDecode runs every step on the whole field at z and returns the field after each step and ldj_I(z)
// per sample.
func (d *ConeDecoder) fullDecode(store *layers.Store, z []float64) ([][]float64, []float64, error) {
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	shape := d.flow.Shape(d.batch)
	in := s.Input("z", shape...)
	x := in
	vals := make([]G.Value, len(d.steps))
	var total *G.Node
	for t, st := range d.steps {
		sc := st.scope(s)
		var m layers.Bijector = st.site
		if st.block != nil {
			m = st.block
		}
		var ld *G.Node
		var err error
		if st.inverse {
			x, ld, err = m.Inverse(sc, x)
		} else {
			x, ld, err = m.Forward(sc, x)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("bulk: ConeDecoder: step %d: %w", t, err)
		}
		G.Read(x, &vals[t])
		if total == nil {
			total = ld
		} else if total, err = G.Add(total, ld); err != nil {
			return nil, nil, fmt.Errorf("bulk: ConeDecoder: %w", err)
		}
	}
	var ldv G.Value
	G.Read(total, &ldv)
	m, err := layers.NewTapeMachine(g)
	if err != nil {
		return nil, nil, fmt.Errorf("bulk: ConeDecoder: %w", err)
	}
	defer m.Close()
	if err := G.Let(in, layers.NewDense(store.Dtype(), shape, z)); err != nil {
		return nil, nil, fmt.Errorf("bulk: ConeDecoder: %w", err)
	}
	if err := m.RunAll(); err != nil {
		return nil, nil, fmt.Errorf("bulk: ConeDecoder: full decode: %w", err)
	}
	out := make([][]float64, len(vals))
	for t, v := range vals {
		out[t] = layers.ValueFloats(v)
	}
	return out, layers.ValueFloats(ldv), nil
}

// runRestricted evaluates the restricted graph's dirty log-det sums (per sample) at z.
func (d *ConeDecoder) runRestricted(store *layers.Store, z []float64) ([]float64, error) {
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	shape := d.flow.Shape(d.batch)
	in := s.Input("z", shape...)
	_, dld, err := d.build(s, in)
	if err != nil {
		return nil, err
	}
	var v G.Value
	G.Read(dld, &v)
	m, err := layers.NewTapeMachine(g)
	if err != nil {
		return nil, fmt.Errorf("bulk: ConeDecoder: %w", err)
	}
	defer m.Close()
	if err := G.Let(in, layers.NewDense(store.Dtype(), shape, z)); err != nil {
		return nil, fmt.Errorf("bulk: ConeDecoder: %w", err)
	}
	if err := m.RunAll(); err != nil {
		return nil, fmt.Errorf("bulk: ConeDecoder: restricted decode: %w", err)
	}
	return layers.ValueFloats(v), nil
}

// Build binds the restricted decode of z, a (B, C, L, L) node whose values must equal the base latents
// outside the free set (nothing checks this: off the free set the cache is used). It returns x = F⁻¹(z),
// shape (B, C, L, L), and ldj_I(z), shape (B). With a window x is exact on the window only and ldj is nil.
func (d *ConeDecoder) Build(s *layers.Scope, z *G.Node) (x, ldj *G.Node, err error) {
	x, dld, err := d.build(s, z)
	if err != nil || d.window {
		return x, nil, err
	}
	c := G.NewConstant(layers.NewDense(s.Dtype(), []int{d.batch}, d.shift), G.In(s.Graph()),
		G.WithName(fmt.Sprintf("cone/ldjshift/%p", d)))
	if ldj, err = G.Add(dld, c); err != nil {
		return nil, nil, fmt.Errorf("bulk: ConeDecoder: %w", err)
	}
	return x, ldj, nil
}

// build returns the decoded field and Σ_dirty ldj_b(z) per sample, shape (B).
func (d *ConeDecoder) build(s *layers.Scope, z *G.Node) (*G.Node, *G.Node, error) {
	f := d.flow
	B, C, v := d.batch, f.Channels, f.L*f.L
	n := C * v
	if sh := z.Shape(); z.Dims() != 4 || sh[0] != B || sh[1] != C || sh[2] != f.L || sh[3] != f.L {
		return nil, nil, fmt.Errorf("bulk: ConeDecoder: latent shape %v, want (%d, %d, %d, %d)", z.Shape(), B, C, f.L, f.L)
	}
	wrap := func(t int, err error) error { return fmt.Errorf("bulk: ConeDecoder: step %d: %w", t, err) }
	x := z
	var lds []*G.Node
	for t, st := range d.steps {
		sc := st.scope(s)
		if st.block == nil {
			var err error
			if st.inverse {
				x, _, err = st.site.Inverse(sc, x)
			} else {
				x, _, err = st.site.Forward(sc, x)
			}
			if err != nil {
				return nil, nil, wrap(t, err)
			}
			continue
		}
		bl := st.block
		blocks := f.Hier.Blocks(bl.Level, bl.Decimator)
		kk := f.Hier.K * f.Hier.K
		dim := C * kk
		// The clean blocks' outputs, from the cache.
		var next *G.Node = x
		if cl := d.clean[t]; len(cl) > 0 {
			idx := make([]int, 0, B*len(cl)*dim)
			vals := make([]float64, 0, B*len(cl)*dim)
			for smp := range B {
				for _, b := range cl {
					for ch := range C {
						for _, site := range blocks[b] {
							k := smp*n + ch*v + site
							idx = append(idx, k)
							vals = append(vals, d.after[t][k])
						}
					}
				}
			}
			c := G.NewConstant(layers.NewDense(s.Dtype(), []int{len(vals)}, vals), G.In(s.Graph()),
				G.WithName(fmt.Sprintf("cone/clean%d/%p", t, d)))
			var err error
			if next, err = layers.ScatterReplace(x, c, idx); err != nil {
				return nil, nil, wrap(t, err)
			}
		}
		if dl := d.dirty[t]; len(dl) > 0 {
			nd := len(dl)
			cols := B * nd // column smp·nd + j: dirty block j of sample smp
			idx := make([]int, dim*cols)
			for smp := range B {
				for j, b := range dl {
					for ch := range C {
						for si, site := range blocks[b] {
							idx[(ch*kk+si)*cols+smp*nd+j] = smp*n + ch*v + site
						}
					}
				}
			}
			rows, err := layers.Gather(x, idx, dim, cols)
			if err != nil {
				return nil, nil, wrap(t, err)
			}
			inner := sc.Sub(bl.Name)
			var y, ld *G.Node
			if st.inverse {
				y, ld, err = bl.Inner.Inverse(inner, rows)
			} else {
				y, ld, err = bl.Inner.Forward(inner, rows)
			}
			if err != nil {
				return nil, nil, wrap(t, err)
			}
			if next, err = layers.ScatterReplace(next, y, idx); err != nil {
				return nil, nil, wrap(t, err)
			}
			m, err := layers.Reshape(ld, B, nd)
			if err != nil {
				return nil, nil, wrap(t, err)
			}
			if ld, err = G.Sum(m, 1); err != nil {
				return nil, nil, wrap(t, err)
			}
			lds = append(lds, ld)
		}
		x = next
	}
	if len(lds) == 0 {
		dld := G.NewConstant(layers.NewDense(s.Dtype(), []int{B}, nil), G.In(s.Graph()),
			G.WithName(fmt.Sprintf("cone/noblocks/%p", d)))
		return x, dld, nil
	}
	dld := lds[0]
	for _, ld := range lds[1:] {
		var err error
		if dld, err = G.Add(dld, ld); err != nil {
			return nil, nil, fmt.Errorf("bulk: ConeDecoder: %w", err)
		}
	}
	return x, dld, nil
}

// Fraction is the share of block evaluations the restricted decode runs (1 when every block is dirty).
func (d *ConeDecoder) Fraction() float64 {
	if d.BlocksTotal == 0 {
		return 1
	}
	return float64(d.BlocksRun) / float64(d.BlocksTotal)
}
