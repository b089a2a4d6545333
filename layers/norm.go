package layers

import (
	"fmt"

	G "gorgonia.org/gorgonia"
)

// DefaultGroupNormEps is the ε of GroupNorm when none is given (PyTorch's default).
const DefaultGroupNormEps = 1e-5

// GroupNorm normalises a (B, C, H, W) or (B, C) input per sample over groups of C/Groups consecutive
// channels (and all spatial positions), then applies a learnable per-channel affine map:
//
//	y[b,c,…] = scale[c] · (x[b,c,…] − μ[b,g]) / √(σ²[b,g] + ε) + bias[c],   g = c / (C/Groups),
//
// with μ and σ² the mean and the biased (1/M) variance of the M = (C/Groups)·H·W entries of group g of
// sample b (PyTorch's GroupNorm). Groups = 1 is LayerNorm over (C, H, W); Groups = C is InstanceNorm.
// Parameters: "scale" (C), starting at 1, and "bias" (C), starting at 0, under the scope given to Apply.
// Each sample is normalised on its own, so the result does not depend on the batch.
//
// It is built from kit ops (Reshape, SumAxis, RowBias, RowScale, Gather) and Gorgonia's Square, Add, Neg,
// Sqrt and Inverse, so its gradient differentiates again (second-order checked).
type GroupNorm struct {
	Groups int
	Eps    float64 // 0 means DefaultGroupNormEps
}

// Apply normalises x with the parameters bound under s.
func (gn GroupNorm) Apply(s *Scope, x *G.Node) (*G.Node, error) {
	if x == nil || (x.Dims() != 2 && x.Dims() != 4) {
		return nil, fmt.Errorf("layers: GroupNorm %s: input must be (B, C) or (B, C, H, W)", s.Prefix())
	}
	c := x.Shape()[1]
	scale := s.Param("scale", []int{c}, Constant(1))
	bias := s.Param("bias", []int{c}, Zeros)
	y, err := GroupNormalize(x, gn.Groups, gn.Eps, scale, bias)
	if err != nil {
		return nil, fmt.Errorf("layers: GroupNorm %s: %w", s.Prefix(), err)
	}
	return y, nil
}

// GroupNormalize is GroupNorm with explicit parameter nodes: x is (B, C) or (B, C, H, W), scale and bias
// are (C) nodes or nil (no scaling, no shift). eps = 0 selects DefaultGroupNormEps; a negative eps is an
// error, and so is a group of a single value (it would normalise to 0).
func GroupNormalize(x *G.Node, groups int, eps float64, scale, bias *G.Node) (*G.Node, error) {
	const op = "GroupNorm"
	if err := checkNode(op, x, 2); err != nil {
		return nil, err
	}
	shape := []int(x.Shape())
	if len(shape) != 2 && len(shape) != 4 {
		return nil, fmt.Errorf("layers: %s: input has shape %s, want (B, C) or (B, C, H, W)", op, shapeStr(shape))
	}
	b, c := shape[0], shape[1]
	hw := prod(shape[2:])
	if groups <= 0 || c%groups != 0 {
		return nil, fmt.Errorf("layers: %s: %d groups do not divide %d channels", op, groups, c)
	}
	if eps < 0 {
		return nil, fmt.Errorf("layers: %s: eps %g, want ≥ 0 (0 selects %g)", op, eps, DefaultGroupNormEps)
	}
	if eps == 0 {
		eps = DefaultGroupNormEps
	}
	m := c / groups * hw
	if m < 2 {
		return nil, fmt.Errorf("layers: %s: a group of input %s with %d groups holds %d value; normalising it gives 0 (use fewer groups)",
			op, shapeStr(shape), groups, m)
	}
	for i, p := range []*G.Node{scale, bias} {
		if p == nil {
			continue
		}
		if err := sameDtype(op, x, p); err != nil {
			return nil, err
		}
		if p.Dims() != 1 || p.Shape()[0] != c {
			return nil, fmt.Errorf("layers: %s: %s has shape %s, want (%d)", op, []string{"scale", "bias"}[i], shapeStr(p.Shape()), c)
		}
	}

	// One row per (sample, group): the group's channels are consecutive, so its values are contiguous.
	r, err := Reshape(x, b*groups, m)
	if err != nil {
		return nil, err
	}
	invM := scalarLike(x, 1/float64(m))
	sum, err := SumAxis(r, 1)
	if err != nil {
		return nil, err
	}
	mean, err := G.Mul(sum, invM)
	if err != nil {
		return nil, err
	}
	negMean, err := G.Neg(mean)
	if err != nil {
		return nil, err
	}
	centred, err := RowBias(r, negMean)
	if err != nil {
		return nil, err
	}
	sq, err := G.Square(centred)
	if err != nil {
		return nil, err
	}
	ss, err := SumAxis(sq, 1)
	if err != nil {
		return nil, err
	}
	variance, err := G.Mul(ss, invM)
	if err != nil {
		return nil, err
	}
	ve, err := G.Add(variance, scalarLike(x, eps))
	if err != nil {
		return nil, err
	}
	// 1/√v as Inverse(Sqrt(v)): G.InverseSqrt's gradient is −g/(2y³) instead of −g·y³/2 (pinned by
	// TestGorgoniaInverseSqrtGradBroken).
	sd, err := G.Sqrt(ve)
	if err != nil {
		return nil, err
	}
	inv, err := G.Inverse(sd)
	if err != nil {
		return nil, err
	}
	y, err := RowScale(centred, inv)
	if err != nil {
		return nil, err
	}
	if scale == nil && bias == nil {
		return Reshape(y, shape...)
	}
	// One row per (sample, channel) for the per-channel affine map.
	if y, err = Reshape(y, b*c, hw); err != nil {
		return nil, err
	}
	if scale != nil {
		sc, err := tileChannels(scale, b)
		if err != nil {
			return nil, err
		}
		if y, err = RowScale(y, sc); err != nil {
			return nil, err
		}
	}
	if bias != nil {
		bi, err := tileChannels(bias, b)
		if err != nil {
			return nil, err
		}
		if y, err = RowBias(y, bi); err != nil {
			return nil, err
		}
	}
	return Reshape(y, shape...)
}

// tileChannels repeats a (C) vector b times: out[i·C + c] = v[c], a (b·C) vector.
func tileChannels(v *G.Node, b int) (*G.Node, error) {
	c := v.Shape()[0]
	idx := make([]int, b*c)
	for i := range idx {
		idx[i] = i % c
	}
	return Gather(v, idx, b*c)
}
