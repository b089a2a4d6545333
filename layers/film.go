package layers

import (
	"fmt"

	G "gorgonia.org/gorgonia"
)

// FiLM (feature-wise linear modulation, Perez et al. 2018) conditions a feature map h, (B, C, H, W) or
// (B, C), on a per-sample embedding emb (B, E):
//
//	[γ; β] = W·emb_b + b   (a Linear map E → 2C, parameters "w" (2C, E) and "b" (2C) under s),
//	out[b, c, …] = h[b, c, …]·(1 + γ[b, c]) + β[b, c].
//
// W and b start at zero, so γ = β = 0 and FiLM is exactly the identity at initialisation (while the
// gradient with respect to W is not zero, so it trains). Every op is a kit op or Gorgonia's Add, so the
// gradient differentiates again.
func FiLM(s *Scope, h, emb *G.Node) (*G.Node, error) {
	gamma, beta, err := filmParams(s, h, emb)
	if err != nil {
		return nil, err
	}
	y, err := modulate(h, gamma, beta)
	if err != nil {
		return nil, fmt.Errorf("layers: FiLM %s: %w", s.Prefix(), err)
	}
	return y, nil
}

// FiLMELU is ELU(FiLM(s, h, emb)) (the same parameters) with the modulation and the activation fused
// into one op (ModulateELU): one pass over h instead of two, and one stored map less.
func FiLMELU(s *Scope, h, emb *G.Node) (*G.Node, error) {
	gamma, beta, err := filmParams(s, h, emb)
	if err != nil {
		return nil, err
	}
	g1, err := G.Add(gamma, scalarLike(h, 1))
	if err != nil {
		return nil, err
	}
	y, err := rowAffineELU(h, g1, beta)
	if err != nil {
		return nil, fmt.Errorf("layers: FiLM %s: %w", s.Prefix(), err)
	}
	return y, nil
}

// filmParams builds FiLM's linear map of the embedding and returns γ and β as flat (B·C) vectors,
// sample-major.
func filmParams(s *Scope, h, emb *G.Node) (gamma, beta *G.Node, err error) {
	if err := checkNode("FiLM", h, 2); err != nil {
		return nil, nil, err
	}
	if err := checkNode("FiLM", emb, 2); err != nil {
		return nil, nil, err
	}
	hs, es := []int(h.Shape()), []int(emb.Shape())
	if emb.Dims() != 2 || es[0] != hs[0] {
		return nil, nil, fmt.Errorf("layers: FiLM %s: embedding has shape %s, want (B, E) with B = %d (the features' batch)", s.Prefix(), shapeStr(es), hs[0])
	}
	b, c, e := hs[0], hs[1], es[1]
	// The embedding feature-major, (E, B), for Linear.
	tIdx := make([]int, e*b)
	for i := 0; i < e; i++ {
		for j := 0; j < b; j++ {
			tIdx[i*b+j] = j*e + i
		}
	}
	et, err := Gather(emb, tIdx, e, b)
	if err != nil {
		return nil, nil, err
	}
	gb, err := Linear(s, et, 2*c, true, false) // (2C, B)
	if err != nil {
		return nil, nil, err
	}
	// γ and β sample-major, (B·C) each: γ[b·C + c] = gb[c, b], β[b·C + c] = gb[C + c, b].
	gi, bi := make([]int, b*c), make([]int, b*c)
	for j := 0; j < b; j++ {
		for k := 0; k < c; k++ {
			gi[j*c+k] = k*b + j
			bi[j*c+k] = (c+k)*b + j
		}
	}
	if gamma, err = Gather(gb, gi, b*c); err != nil {
		return nil, nil, err
	}
	if beta, err = Gather(gb, bi, b*c); err != nil {
		return nil, nil, err
	}
	return gamma, beta, nil
}

// Modulate is FiLM with explicit modulation: h·(1 + γ) + β for h (B, C, …) and γ, β (B, C), broadcast over
// the positions of each channel.
func Modulate(h, gamma, beta *G.Node) (*G.Node, error) {
	for _, n := range []*G.Node{h, gamma, beta} {
		if err := checkNode("Modulate", n, 2); err != nil {
			return nil, err
		}
	}
	if err := sameDtype("Modulate", h, gamma, beta); err != nil {
		return nil, err
	}
	hs := []int(h.Shape())
	for i, n := range []*G.Node{gamma, beta} {
		if s := n.Shape(); n.Dims() != 2 || s[0] != hs[0] || s[1] != hs[1] {
			return nil, fmt.Errorf("layers: Modulate: %s has shape %s, want (%d, %d) for features %s",
				[]string{"γ", "β"}[i], shapeStr(s), hs[0], hs[1], shapeStr(hs))
		}
	}
	bc := hs[0] * hs[1]
	g, err := Reshape(gamma, bc)
	if err != nil {
		return nil, err
	}
	b, err := Reshape(beta, bc)
	if err != nil {
		return nil, err
	}
	return modulate(h, g, b)
}

// ModulateELU is ELU(Modulate(h, γ, β)) as one fused op: h (B, C, …), γ, β (B, C).
func ModulateELU(h, gamma, beta *G.Node) (*G.Node, error) {
	for _, n := range []*G.Node{h, gamma, beta} {
		if err := checkNode("ModulateELU", n, 2); err != nil {
			return nil, err
		}
	}
	hs := []int(h.Shape())
	for i, n := range []*G.Node{gamma, beta} {
		if s := n.Shape(); n.Dims() != 2 || s[0] != hs[0] || s[1] != hs[1] {
			return nil, fmt.Errorf("layers: ModulateELU: %s has shape %s, want (%d, %d) for features %s",
				[]string{"γ", "β"}[i], shapeStr(s), hs[0], hs[1], shapeStr(hs))
		}
	}
	g, err := Reshape(gamma, hs[0]*hs[1])
	if err != nil {
		return nil, err
	}
	b, err := Reshape(beta, hs[0]*hs[1])
	if err != nil {
		return nil, err
	}
	g1, err := G.Add(g, scalarLike(h, 1))
	if err != nil {
		return nil, err
	}
	return rowAffineELU(h, g1, b)
}

// modulate applies h·(1 + γ) + β with γ, β flat (B·C) vectors, sample-major: one rowAffine pass over h
// in its own shape (no reshape copies).
func modulate(h, gamma, beta *G.Node) (*G.Node, error) {
	g1, err := G.Add(gamma, scalarLike(h, 1))
	if err != nil {
		return nil, err
	}
	return rowAffine(h, g1, beta)
}
