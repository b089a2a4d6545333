package layers

import (
	"fmt"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
)

// Split partitions the D columns of a block matrix into a conditioning set A and a transformed set B.
// A coupling pair first updates B given A, then A given B.
type Split struct {
	A, B []int
}

// Validate checks that A and B partition 0…dim−1 and are both non-empty.
func (sp Split) Validate(dim int) error {
	if len(sp.A) == 0 || len(sp.B) == 0 {
		return fmt.Errorf("split %v|%v: both halves must be non-empty", sp.A, sp.B)
	}
	seen := make([]bool, dim)
	for _, c := range append(append([]int(nil), sp.A...), sp.B...) {
		if c < 0 || c >= dim {
			return fmt.Errorf("split %v|%v: column %d out of range [0, %d)", sp.A, sp.B, c, dim)
		}
		if seen[c] {
			return fmt.Errorf("split %v|%v: column %d appears twice", sp.A, sp.B, c)
		}
		seen[c] = true
	}
	if len(sp.A)+len(sp.B) != dim {
		return fmt.Errorf("split %v|%v covers %d of %d columns", sp.A, sp.B, len(sp.A)+len(sp.B), dim)
	}
	return nil
}

// RandomHalfSplit draws NeuralRG's random half mask over dim columns (dim/2 conditioning columns).
func RandomHalfSplit(rng *rand.Rand, dim int) Split {
	perm := rng.Perm(dim)
	a := append([]int(nil), perm[:dim/2]...)
	b := append([]int(nil), perm[dim/2:]...)
	sortInts(a)
	sortInts(b)
	return Split{A: a, B: b}
}

// CheckerboardSplit is RG-Flow's mask inside a C×k×k block: column c·k·k + i·k + j is conditioning when
// i+j is even.
func CheckerboardSplit(channels, k int) Split {
	var sp Split
	for c := 0; c < channels; c++ {
		for i := 0; i < k; i++ {
			for j := 0; j < k; j++ {
				col := c*k*k + i*k + j
				if (i+j)%2 == 0 {
					sp.A = append(sp.A, col)
				} else {
					sp.B = append(sp.B, col)
				}
			}
		}
	}
	return sp
}

func sortInts(a []int) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// RealNVP is a stack of affine couplings on a feature-major (D, N) matrix: one row per block site and
// channel, one column per block. Its log-det has one entry per column. Coupling c uses Splits[c/2]: even c updates B given A, odd c updates A given B.
// Each coupling computes
//
//	u' = u ⊙ exp(s) + t,  s = scale ⊙ tanh(S(v)),  t = T(v),  log-det = Σ s,
//
// with v the conditioning half and u the transformed half. scale is a learnable vector that starts at 0 and
// T's last layer starts at 0 (ZeroLast), so every coupling is exactly the identity at initialisation.
// With Joint set, one network S outputs 2|u| columns, the first |u| for s and the rest for t
// (RG-Flow); otherwise S and T are separate networks (NeuralRG).
//
// Within a split the two halves are kept as separate tensors: no masks, no slices in the hot path.
// Parameters: coupling<c>/scale (|u|), coupling<c>/s/…, coupling<c>/t/….
//
// A stack whose S and T are ELU MLPs of equal widths (FusedKernel), or whose joint S is a ResMLP
// (FusedResKernel), runs as fused ops with a hand-written backward pass (nvpfused.go, resmlpfused.go), with
// the same parameters; Unfused forces the graph of elementary ops instead (the reference the fused ops are
// tested against, and the form that supports second derivatives).
type RealNVP struct {
	Dim       int
	Splits    []Split
	Couplings int
	S, T      Conditioner
	Joint     bool
	Unfused   bool

	// chunk, if > 0, is the number of columns the fused kernel processes per pass (tests set it small to
	// exercise several passes); 0 selects fusedChunkBytes worth of one row.
	chunk int
}

// Validate checks the stack's shape: enough splits for the couplings, each a partition of Dim.
func (r *RealNVP) Validate() error {
	if r.Couplings <= 0 {
		return fmt.Errorf("layers: RealNVP: %d couplings, want > 0", r.Couplings)
	}
	if need := (r.Couplings + 1) / 2; len(r.Splits) < need {
		return fmt.Errorf("layers: RealNVP: %d couplings need %d splits, have %d", r.Couplings, need, len(r.Splits))
	}
	for i := 0; i < (r.Couplings+1)/2; i++ {
		if err := r.Splits[i].Validate(r.Dim); err != nil {
			return fmt.Errorf("layers: RealNVP split %d: %w", i, err)
		}
	}
	if r.S == nil || (!r.Joint && r.T == nil) {
		return fmt.Errorf("layers: RealNVP: missing conditioner (S=%v, T=%v, Joint=%v)", r.S != nil, r.T != nil, r.Joint)
	}
	return nil
}

// Forward applies couplings 0…n−1 to x (Dim, N).
func (r *RealNVP) Forward(s *Scope, x *G.Node) (*G.Node, *G.Node, error) {
	return r.apply(s, x, false)
}

// Inverse applies the inverse couplings n−1…0 to z (Dim, N).
func (r *RealNVP) Inverse(s *Scope, z *G.Node) (*G.Node, *G.Node, error) {
	return r.apply(s, z, true)
}

func (r *RealNVP) apply(s *Scope, x *G.Node, inverse bool) (*G.Node, *G.Node, error) {
	if err := r.Validate(); err != nil {
		return nil, nil, err
	}
	if x.Dims() != 2 || x.Shape()[0] != r.Dim {
		return nil, nil, fmt.Errorf("layers: RealNVP %s: input shape %v, want (%d, N)", s.Prefix(), x.Shape(), r.Dim)
	}
	if r.fusable() {
		return r.applyFused(s, x, inverse)
	}
	if r.resFusable() {
		return r.applyResFused(s, x, inverse)
	}
	n := x.Shape()[1]
	nSplits := (r.Couplings + 1) / 2
	var logDet *G.Node
	for k := 0; k < nSplits; k++ {
		si := k
		if inverse {
			si = nSplits - 1 - k
		}
		sp := r.Splits[si]
		first, last := 2*si, min(2*si+1, r.Couplings-1)
		a, err := Gather(x, rowIndex(n, sp.A), len(sp.A), n)
		if err != nil {
			return nil, nil, err
		}
		b, err := Gather(x, rowIndex(n, sp.B), len(sp.B), n)
		if err != nil {
			return nil, nil, err
		}
		for j := 0; j <= last-first; j++ {
			c := first + j
			if inverse {
				c = last - j
			}
			var ld *G.Node
			if c%2 == 0 {
				b, ld, err = r.couple(s.Sub(fmt.Sprintf("coupling%d", c)), a, b, inverse)
			} else {
				a, ld, err = r.couple(s.Sub(fmt.Sprintf("coupling%d", c)), b, a, inverse)
			}
			if err != nil {
				return nil, nil, err
			}
			if logDet == nil {
				logDet = ld
			} else if logDet, err = G.Add(logDet, ld); err != nil {
				return nil, nil, err
			}
		}
		cat, err := G.Concat(0, a, b)
		if err != nil {
			return nil, nil, err
		}
		perm := make([]int, r.Dim) // row j of x sits at row perm[j] of cat
		for p, row := range append(append([]int(nil), sp.A...), sp.B...) {
			perm[row] = p
		}
		if x, err = Gather(cat, rowIndex(n, perm), r.Dim, n); err != nil {
			return nil, nil, err
		}
	}
	return x, logDet, nil
}

// couple transforms u given v with the coupling bound under s; it returns u' and the per-row log-det of
// the map computed (negative for the inverse).
func (r *RealNVP) couple(s *Scope, v, u *G.Node, inverse bool) (*G.Node, *G.Node, error) {
	du := u.Shape()[0]
	var pre, t *G.Node
	var err error
	if r.Joint {
		out, err := r.S.Apply(s.Sub("s"), v, 2*du)
		if err != nil {
			return nil, nil, err
		}
		if pre, err = Narrow(out, 0, 0, du); err != nil {
			return nil, nil, err
		}
		if t, err = Narrow(out, 0, du, du); err != nil {
			return nil, nil, err
		}
	} else {
		if pre, err = r.S.Apply(s.Sub("s"), v, du); err != nil {
			return nil, nil, err
		}
		if t, err = r.T.Apply(s.Sub("t"), v, du); err != nil {
			return nil, nil, err
		}
	}
	scale := s.Param("scale", []int{du}, Zeros)
	th, err := G.Tanh(pre)
	if err != nil {
		return nil, nil, err
	}
	logScale, err := RowScale(th, scale)
	if err != nil {
		return nil, nil, err
	}
	ld, err := SumAxis(logScale, 0)
	if err != nil {
		return nil, nil, err
	}
	if !inverse {
		e, err := G.Exp(logScale)
		if err != nil {
			return nil, nil, err
		}
		ue, err := G.HadamardProd(u, e)
		if err != nil {
			return nil, nil, err
		}
		out, err := G.Add(ue, t)
		return out, ld, err
	}
	neg, err := G.Neg(logScale)
	if err != nil {
		return nil, nil, err
	}
	e, err := G.Exp(neg)
	if err != nil {
		return nil, nil, err
	}
	ut, err := G.Sub(u, t)
	if err != nil {
		return nil, nil, err
	}
	out, err := G.HadamardProd(ut, e)
	if err != nil {
		return nil, nil, err
	}
	nld, err := G.Neg(ld)
	return out, nld, err
}

// rowIndex gives the flat indices of the listed rows of a (·, n) matrix, row after row.
func rowIndex(n int, rows []int) []int {
	idx := make([]int, 0, n*len(rows))
	for _, r := range rows {
		for j := 0; j < n; j++ {
			idx = append(idx, r*n+j)
		}
	}
	return idx
}
