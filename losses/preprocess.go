package losses

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// DefaultLogitAlpha is the logit transform's squeeze α (RealNVP, RG-Flow): y = logit(α + (1−2α)·x̃).
const DefaultLogitAlpha = 0.05

// Preprocess maps 8-bit pixels to the real-valued inputs of an image flow and back.
//
// Forward, per pixel value x ∈ {0, …, 255}:
//
//	x̃ = (x + u)/256                    uniform dequantisation, u ~ U[0, 1) (or the fixed U)
//	p = α + (1 − 2α)·x̃                 squeeze into [α, 1 − α) (α = 0.05: p = 0.05 + 0.9·x̃)
//	y = logit(p) = ln p − ln(1 − p)
//	ln|dy/dx̃| = ln(1 − 2α) − ln p − ln(1 − p)
//
// The log-Jacobian is summed over an image's D = C·H·W values, so that with the flow's density q(y)
//
//	ln p(x̃) = ln q(y) + Σ ln|dy/dx̃|                    (the density of the dequantised image on [0, 1)^D)
//	bits/dim = (−ln p(x̃)/D + ln 256)/ln 2              (the code length of the 8-bit image x)
//
// Inverse (for display): x̃ = (sigmoid(y) − α)/(1 − 2α) and pixel = ⌊256·x̃⌋ clamped to 0…255, which
// returns x for any u in [0, 1) (in floating point, a u within about 1e-12 of 0 can land in the bin below).
type Preprocess struct {
	// Alpha is the squeeze α in (0, ½); 0 means DefaultLogitAlpha.
	Alpha float64
	// Fixed uses u = U for every pixel instead of drawing u from the rng (deterministic evaluation and
	// tests; U = 0.5 dequantises to the bin centres).
	Fixed bool
	U     float64
}

func (p Preprocess) alpha() float64 {
	if p.Alpha == 0 {
		return DefaultLogitAlpha
	}
	return p.Alpha
}

// Validate checks α and the fixed u.
func (p Preprocess) Validate() error {
	if a := p.alpha(); !(a > 0 && a < 0.5) {
		return fmt.Errorf("losses: logit squeeze α = %g, want 0 < α < ½", a)
	}
	if p.Fixed && !(p.U >= 0 && p.U < 1) {
		return fmt.Errorf("losses: fixed dequantisation noise u = %g, want 0 ≤ u < 1", p.U)
	}
	return nil
}

// Logit maps one dequantised value x̃ ∈ [0, 1) to y and returns ln|dy/dx̃|.
func (p Preprocess) Logit(xt float64) (y, logDet float64) {
	a := p.alpha()
	q := a + (1-2*a)*xt
	lp, l1p := math.Log(q), math.Log1p(-q)
	return lp - l1p, math.Log1p(-2*a) - lp - l1p
}

// Dequantised is the inverse of Logit: x̃ = (sigmoid(y) − α)/(1 − 2α).
func (p Preprocess) Dequantised(y float64) float64 {
	a := p.alpha()
	var s float64
	if y >= 0 {
		s = 1 / (1 + math.Exp(-y))
	} else {
		e := math.Exp(y)
		s = e / (1 + e)
	}
	return (s - a) / (1 - 2*a)
}

// Pixel maps y back to the 8-bit value ⌊256·x̃⌋, clamped to 0…255 (NaN maps to 0).
func (p Preprocess) Pixel(y float64) uint8 {
	v := math.Floor(256 * p.Dequantised(y))
	switch {
	case v >= 255:
		return 255
	case v >= 0:
		return uint8(v)
	}
	return 0
}

// Apply dequantises and logit-transforms pixels, writing y (same length as pix) and, per image of perImage
// values, the summed log-Jacobian Σ ln|dy/dx̃| into logDet (len(pix)/perImage values). u is drawn from rng in
// pixel order (rng.Float64(), one per value) unless Fixed; rng may be nil when Fixed.
func (p Preprocess) Apply(rng *rand.Rand, pix []uint8, perImage int, y, logDet []float64) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if perImage < 1 || len(pix)%perImage != 0 || len(y) != len(pix) || len(logDet) != len(pix)/perImage {
		return fmt.Errorf("losses: preprocess: %d pixels, %d per image, %d outputs and %d log-dets don't fit", len(pix), perImage, len(y), len(logDet))
	}
	if !p.Fixed && rng == nil {
		return fmt.Errorf("losses: preprocess: random dequantisation needs an rng")
	}
	for b := range logDet {
		var s float64
		for i := b * perImage; i < (b+1)*perImage; i++ {
			u := p.U
			if !p.Fixed {
				u = rng.Float64()
			}
			v, ld := p.Logit((float64(pix[i]) + u) / 256)
			y[i] = v
			s += ld
		}
		logDet[b] = s
	}
	return nil
}

// Pixels maps y values back to 8-bit pixels (see Pixel); dst and y have the same length.
func (p Preprocess) Pixels(dst []uint8, y []float64) {
	for i, v := range y {
		dst[i] = p.Pixel(v)
	}
}

// BitsPerDim converts a negative log-likelihood of the dequantised data, in nats per image, to bits per
// dimension of the 8-bit data: (nll/D + ln 256)/ln 2. On padded images this is the canvas figure.
func BitsPerDim(nll float64, dim int) float64 {
	return (nll/float64(dim) + 8*math.Ln2) / math.Ln2
}

// CodeLengthBits is the code length in bits of one 8-bit image of dim values whose dequantised form has
// negative log-likelihood nll (nats): (nll + dim·ln 256)/ln 2.
func CodeLengthBits(nll float64, dim int) float64 {
	return (nll + float64(dim)*8*math.Ln2) / math.Ln2
}

// BitsPerRealDim is the code length of the whole dim-value canvas (padding included) per real pixel value:
// CodeLengthBits(nll, dim)/realDim (see the package doc). With realDim = dim it is BitsPerDim.
func BitsPerRealDim(nll float64, dim, realDim int) float64 {
	return CodeLengthBits(nll, dim) / float64(realDim)
}
