package layers

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Hierarchy is the geometry of an RG stack on an L×L periodic lattice with k×k blocks.
// It has Levels() = log2(L/k)+1 levels ℓ = 0…n−1. At level ℓ a block's sites are spaced by 2^ℓ and blocks
// start every k·2^ℓ sites; the disentangler's blocks start at offset 0 and the decimator's at
// (k/2)·2^ℓ. Latents stay on the L×L grid: site (i, j) belongs to level min(v₂(i), v₂(j)), capped at the
// top level, with v₂(0) = ∞.
type Hierarchy struct {
	L, K int
}

// NewHierarchy validates L (a power of two, 4 … 4096, at least k) and k (2 or 4).
func NewHierarchy(L, k int) (Hierarchy, error) {
	if k != 2 && k != 4 {
		return Hierarchy{}, fmt.Errorf("layers: block size k=%d, want 2 or 4", k)
	}
	if L <= 0 || L&(L-1) != 0 {
		return Hierarchy{}, fmt.Errorf("layers: lattice size L=%d is not a power of two (want 4, 8, 16, …)", L)
	}
	if L < k || L < 4 {
		return Hierarchy{}, fmt.Errorf("layers: lattice size L=%d is smaller than the minimum %d for k=%d", L, max(k, 4), k)
	}
	if L > 4096 {
		return Hierarchy{}, fmt.Errorf("layers: lattice size L=%d exceeds 4096", L)
	}
	return Hierarchy{L: L, K: k}, nil
}

// Levels is the number of RG levels, log2(L/k)+1.
func (h Hierarchy) Levels() int { return log2(h.L/h.K) + 1 }

// Dilation is the spacing of a level-ℓ block's sites, 2^ℓ.
func (h Hierarchy) Dilation(level int) int { return 1 << level }

// Level is the RG level of site (i, j).
func (h Hierarchy) Level(i, j int) int {
	return min(v2(i), v2(j), h.Levels()-1)
}

// LevelMap is the level of every site in row-major order (length L·L).
func (h Hierarchy) LevelMap() []int {
	m := make([]int, h.L*h.L)
	for i := 0; i < h.L; i++ {
		for j := 0; j < h.L; j++ {
			m[i*h.L+j] = h.Level(i, j)
		}
	}
	return m
}

// LevelCounts is the number of sites (per channel) at each level.
func (h Hierarchy) LevelCounts() []int {
	c := make([]int, h.Levels())
	for _, l := range h.LevelMap() {
		c[l]++
	}
	return c
}

// LevelSites lists, for each level, its sites in row-major order.
func (h Hierarchy) LevelSites() [][]int {
	out := make([][]int, h.Levels())
	for s, l := range h.LevelMap() {
		out[l] = append(out[l], s)
	}
	return out
}

// Blocks lists the sites (row-major site indices) of every block of one layer: block b's k·k sites in
// (a, b) order, a the row offset. decimator selects the shifted index set.
func (h Hierarchy) Blocks(level int, decimator bool) [][]int {
	d := h.Dilation(level)
	stride := h.K * d
	off := 0
	if decimator {
		off = h.K / 2 * d
	}
	nb := h.L / stride
	blocks := make([][]int, 0, nb*nb)
	for bi := 0; bi < nb; bi++ {
		for bj := 0; bj < nb; bj++ {
			sites := make([]int, 0, h.K*h.K)
			for a := 0; a < h.K; a++ {
				for b := 0; b < h.K; b++ {
					i := (off + bi*stride + a*d) % h.L
					j := (off + bj*stride + b*d) % h.L
					sites = append(sites, i*h.L+j)
				}
			}
			blocks = append(blocks, sites)
		}
	}
	return blocks
}

// SplitLevels splits a latent batch z of shape (B, C, L, L), flattened, into one array per level of
// shape (B, C, n_ℓ), sites in row-major order.
func (h Hierarchy) SplitLevels(z []float64, batch, channels int) ([][]float64, error) {
	v := h.L * h.L
	if len(z) != batch*channels*v {
		return nil, fmt.Errorf("layers: SplitLevels: %d values, want B·C·L·L = %d·%d·%d", len(z), batch, channels, v)
	}
	sites := h.LevelSites()
	out := make([][]float64, len(sites))
	for l, ss := range sites {
		a := make([]float64, 0, batch*channels*len(ss))
		for b := 0; b < batch; b++ {
			for c := 0; c < channels; c++ {
				base := (b*channels + c) * v
				for _, s := range ss {
					a = append(a, z[base+s])
				}
			}
		}
		out[l] = a
	}
	return out, nil
}

// MergeLevels is the inverse of SplitLevels.
func (h Hierarchy) MergeLevels(levels [][]float64, batch, channels int) ([]float64, error) {
	sites := h.LevelSites()
	if len(levels) != len(sites) {
		return nil, fmt.Errorf("layers: MergeLevels: %d levels, want %d", len(levels), len(sites))
	}
	v := h.L * h.L
	z := make([]float64, batch*channels*v)
	for l, ss := range sites {
		if len(levels[l]) != batch*channels*len(ss) {
			return nil, fmt.Errorf("layers: MergeLevels: level %d has %d values, want B·C·n = %d·%d·%d", l, len(levels[l]), batch, channels, len(ss))
		}
		k := 0
		for b := 0; b < batch; b++ {
			for c := 0; c < channels; c++ {
				base := (b*channels + c) * v
				for _, s := range ss {
					z[base+s] = levels[l][k]
					k++
				}
			}
		}
	}
	return z, nil
}

// BlockLayer applies one shared block bijector to every block of one index set of a (B, C, L, L) field.
// A block's channels stay together, so the map is local: it gathers block b's C×k×k values (channel-major,
// then row, then column) into column b of a feature-major (C·k·k, B·blocks) matrix (column index =
// sample·blocks + block), applies Inner to that matrix, scatters the result back, and sums the block
// log-dets per sample. Sites outside the index set pass through unchanged. Inner's parameters are bound
// under the sub-scope Name.
type BlockLayer struct {
	Name      string
	Hier      Hierarchy
	Level     int
	Decimator bool
	Channels  int
	Inner     Bijector
}

// Forward applies Inner.Forward to every block.
func (bl *BlockLayer) Forward(s *Scope, x *G.Node) (*G.Node, *G.Node, error) {
	return bl.apply(s, x, false)
}

// Inverse applies Inner.Inverse to every block.
func (bl *BlockLayer) Inverse(s *Scope, z *G.Node) (*G.Node, *G.Node, error) {
	return bl.apply(s, z, true)
}

func (bl *BlockLayer) apply(s *Scope, x *G.Node, inverse bool) (*G.Node, *G.Node, error) {
	L, c := bl.Hier.L, bl.Channels
	if bl.Level < 0 || bl.Level >= bl.Hier.Levels() {
		return nil, nil, fmt.Errorf("layers: %s: level %d out of range [0, %d)", bl.Name, bl.Level, bl.Hier.Levels())
	}
	sh := x.Shape()
	if x.Dims() != 4 || sh[1] != c || sh[2] != L || sh[3] != L {
		return nil, nil, fmt.Errorf("layers: %s: input shape %v, want (B, %d, %d, %d)", bl.Name, sh, c, L, L)
	}
	batch := sh[0]
	blocks := bl.Hier.Blocks(bl.Level, bl.Decimator)
	nb, kk := len(blocks), bl.Hier.K*bl.Hier.K
	dim := c * kk
	idx := make([]int, batch*nb*dim)
	cols := batch * nb
	for b := 0; b < batch; b++ {
		for bi, sites := range blocks {
			col := b*nb + bi
			for ch := 0; ch < c; ch++ {
				base := (b*c + ch) * L * L
				for si, site := range sites {
					idx[(ch*kk+si)*cols+col] = base + site
				}
			}
		}
	}
	rows, err := gatherIn(s.Arena(), x, idx, dim, cols)
	if err != nil {
		return nil, nil, fmt.Errorf("layers: %s: %w", bl.Name, err)
	}
	inner := s.Sub(bl.Name)
	var y, ld *G.Node
	if inverse {
		y, ld, err = bl.Inner.Inverse(inner, rows)
	} else {
		y, ld, err = bl.Inner.Forward(inner, rows)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("layers: %s: %w", bl.Name, err)
	}
	out, err := scatterReplaceIn(s.Arena(), x, y, idx)
	if err != nil {
		return nil, nil, fmt.Errorf("layers: %s: %w", bl.Name, err)
	}
	perSample, err := rowSums(s.Arena(), ld, batch, nb)
	if err != nil {
		return nil, nil, fmt.Errorf("layers: %s: %w", bl.Name, err)
	}
	return out, perSample, nil
}

// rowSums sums a (batch·n) vector over consecutive groups of n.
func rowSums(ar *Arena, v *G.Node, batch, n int) (*G.Node, error) {
	if n == 1 {
		return v, nil
	}
	m, err := reshapeIn(ar, v, batch, n)
	if err != nil {
		return nil, err
	}
	return G.Sum(m, 1)
}

func v2(i int) int {
	if i == 0 {
		return 1 << 30
	}
	n := 0
	for i%2 == 0 {
		i /= 2
		n++
	}
	return n
}

func log2(n int) int {
	l := 0
	for n > 1 {
		n >>= 1
		l++
	}
	return l
}

// onesOf is a vector of n ones in the scope's dtype.
func onesOf(s *Scope, n int) *tensor.Dense {
	t := tensor.New(tensor.WithShape(n), tensor.Of(s.Dtype()))
	data := make([]float64, n)
	for i := range data {
		data[i] = 1
	}
	SetData(t, data)
	return t
}

// String describes the hierarchy, e.g. "L=8 k=2, 3 levels".
func (h Hierarchy) String() string {
	return fmt.Sprintf("L=%d k=%d, %d levels", h.L, h.K, h.Levels())
}

// LayerSpec names one block layer of a hierarchy: its level and whether it is the decimator (shifted
// index set) or the disentangler.
type LayerSpec struct {
	Level     int
	Decimator bool
}

// Sequence is the block layers of a standard RG stack in inference order: for every level ℓ = 0 … n−1 and
// every one of repeat repetitions, the disentangler then the decimator.
func (h Hierarchy) Sequence(repeat int) []LayerSpec {
	var seq []LayerSpec
	for l := 0; l < h.Levels(); l++ {
		for r := 0; r < repeat; r++ {
			seq = append(seq, LayerSpec{l, false}, LayerSpec{l, true})
		}
	}
	return seq
}

// BlockSequence reads the block layers of a bijector in inference order (the order Forward applies them),
// so that causal cones follow the flow actually built rather than an assumed layout. It understands Chain,
// Named, Invert and *BlockLayer; site-local bijectors (ActNorm) mix no sites and are skipped. Any other
// bijector is an error, because its locality is unknown. An Invert reverses its contents, which are then
// applied by the inverse block maps; those mix the same sites, so only the order changes.
func BlockSequence(b Bijector) ([]LayerSpec, error) {
	switch v := b.(type) {
	case Chain:
		var seq []LayerSpec
		for i, link := range v {
			s, err := BlockSequence(link)
			if err != nil {
				return nil, fmt.Errorf("chain link %d: %w", i, err)
			}
			seq = append(seq, s...)
		}
		return seq, nil
	case Named:
		s, err := BlockSequence(v.Bijector)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", v.Name, err)
		}
		return s, nil
	case *Named:
		return BlockSequence(*v)
	case Invert:
		s, err := BlockSequence(v.Bijector)
		if err != nil {
			return nil, err
		}
		for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
			s[i], s[j] = s[j], s[i]
		}
		return s, nil
	case *BlockLayer:
		return []LayerSpec{{v.Level, v.Decimator}}, nil
	case ActNorm, *ActNorm:
		return nil, nil
	default:
		return nil, fmt.Errorf("layers: BlockSequence: %T has unknown locality", b)
	}
}

// checkSites validates site indices for the cone methods.
func (h Hierarchy) checkSites(what string, sites []int, seq []LayerSpec) error {
	for _, s := range sites {
		if s < 0 || s >= h.L*h.L {
			return fmt.Errorf("layers: %s: site %d outside the %d×%d lattice", what, s, h.L, h.L)
		}
	}
	for i, sp := range seq {
		if sp.Level < 0 || sp.Level >= h.Levels() {
			return fmt.Errorf("layers: %s: layer %d has level %d, want 0 … %d", what, i, sp.Level, h.Levels()-1)
		}
	}
	return nil
}

// spread applies one layer's dependency pattern to a set of sites: every block that contains a marked
// site gets all of its sites marked (a block's outputs depend on all of its inputs, both ways).
func (h Hierarchy) spread(mark []bool, sp LayerSpec) {
	for _, blk := range h.Blocks(sp.Level, sp.Decimator) {
		hit := false
		for _, s := range blk {
			if mark[s] {
				hit = true
				break
			}
		}
		if hit {
			for _, s := range blk {
				mark[s] = true
			}
		}
	}
}

// Cone is the causal cone of a set of data sites (row-major indices) for a flow whose block layers are
// seq in inference order: the latent sites, per RG level (row-major within a level), whose value can change
// any of the given sites through the generation map F⁻¹. It is exact for the block structure: generation
// applies the layers in reverse, each block's outputs depend on all of its inputs, so a site depends on
// exactly the latents reached by walking the layers in inference order from the data side and marking
// every block that meets the marked set. Channels share their sites, so the cone holds for every channel.
func (h Hierarchy) Cone(sites []int, seq []LayerSpec) ([][]int, error) {
	if err := h.checkSites("Cone", sites, seq); err != nil {
		return nil, err
	}
	mark := make([]bool, h.L*h.L)
	for _, s := range sites {
		mark[s] = true
	}
	for _, sp := range seq {
		h.spread(mark, sp)
	}
	return h.byLevel(mark), nil
}

// Influence is the set of data sites (row-major) that the latent at site latent can change through F⁻¹:
// the layers in generation order (seq reversed), marking every block that meets the marked set.
func (h Hierarchy) Influence(latent int, seq []LayerSpec) ([]int, error) {
	if err := h.checkSites("Influence", []int{latent}, seq); err != nil {
		return nil, err
	}
	mark := make([]bool, h.L*h.L)
	mark[latent] = true
	for i := len(seq) - 1; i >= 0; i-- {
		h.spread(mark, seq[i])
	}
	var out []int
	for s, m := range mark {
		if m {
			out = append(out, s)
		}
	}
	return out, nil
}

// byLevel lists the marked sites per RG level.
func (h Hierarchy) byLevel(mark []bool) [][]int {
	out := make([][]int, h.Levels())
	for s, l := range h.LevelMap() {
		if mark[s] {
			out[l] = append(out[l], s)
		}
	}
	return out
}

// Extent is the side of the smallest periodic square window (rows × columns, each the shortest arc of the
// L-cycle covering the given coordinates) that holds every given site: the width of a receptive field.
// It returns the row and column extents.
func (h Hierarchy) Extent(sites []int) (rows, cols int) {
	ri := make([]bool, h.L)
	ci := make([]bool, h.L)
	for _, s := range sites {
		ri[s/h.L] = true
		ci[s%h.L] = true
	}
	return arcCover(ri), arcCover(ci)
}

// arcCover is the length of the shortest arc of the cycle 0 … n−1 that covers every marked point: n minus
// the longest run of unmarked points (cyclically); 0 when nothing is marked.
func arcCover(m []bool) int {
	n := len(m)
	any := false
	for _, v := range m {
		any = any || v
	}
	if !any {
		return 0
	}
	gap, run := 0, 0
	for i := 0; i < 2*n; i++ {
		if m[i%n] {
			run = 0
		} else {
			run++
			gap = max(gap, min(run, n))
		}
	}
	return n - gap
}
