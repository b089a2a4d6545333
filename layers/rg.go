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
	rows, err := Gather(x, idx, dim, cols)
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
	out, err := ScatterReplace(x, y, idx)
	if err != nil {
		return nil, nil, fmt.Errorf("layers: %s: %w", bl.Name, err)
	}
	perSample, err := rowSums(ld, batch, nb)
	if err != nil {
		return nil, nil, fmt.Errorf("layers: %s: %w", bl.Name, err)
	}
	return out, perSample, nil
}

// rowSums sums a (batch·n) vector over consecutive groups of n.
func rowSums(v *G.Node, batch, n int) (*G.Node, error) {
	if n == 1 {
		return v, nil
	}
	m, err := Reshape(v, batch, n)
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
