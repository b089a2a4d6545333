package layers

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
)

// ActNorm is a per-feature affine map y = (x + bias) ⊙ exp(logscale). On a feature-major (D, N) matrix the
// features are the D rows and the log-det has one entry per column; on a (B, C, L, L) field they are the C
// channels, shared over sites (or, with PerSite, every one of the C·L·L values has its own), and the log-det
// has one entry per sample. Parameters "bias" and "logscale" start at 0 (the identity); InitFromData sets
// them so that a batch comes out with zero mean and unit variance per feature (Glow's data-dependent
// initialisation).
type ActNorm struct {
	PerSite bool
}

// Forward computes y = (x + bias) ⊙ exp(logscale).
func (a ActNorm) Forward(s *Scope, x *G.Node) (*G.Node, *G.Node, error) {
	return a.apply(s, x, false)
}

// Inverse computes x = y ⊙ exp(−logscale) − bias.
func (a ActNorm) Inverse(s *Scope, z *G.Node) (*G.Node, *G.Node, error) {
	return a.apply(s, z, true)
}

// InitFromData sets the ActNorm parameters under prefix so that the given samples (each a vector of the
// features) are standardised per feature.
func (ActNorm) InitFromData(store *Store, prefix string, samples [][]float64) error {
	if len(samples) < 2 {
		return fmt.Errorf("layers: ActNorm %s: data-dependent init needs at least 2 samples, got %d", prefix, len(samples))
	}
	d := len(samples[0])
	bias, logs := make([]float64, d), make([]float64, d)
	for j := 0; j < d; j++ {
		var m, m2 float64
		for _, r := range samples {
			m += r[j]
		}
		m /= float64(len(samples))
		for _, r := range samples {
			m2 += (r[j] - m) * (r[j] - m)
		}
		sd := math.Sqrt(m2/float64(len(samples))) + 1e-6
		bias[j], logs[j] = -m, -math.Log(sd)
	}
	join := func(n string) string {
		if prefix == "" {
			return n
		}
		return prefix + "/" + n
	}
	if err := store.Set(join("bias"), []int{d}, bias); err != nil {
		return err
	}
	return store.Set(join("logscale"), []int{d}, logs)
}

func (a ActNorm) apply(s *Scope, x *G.Node, inverse bool) (*G.Node, *G.Node, error) {
	switch {
	case x.Dims() == 2:
		return actNormRows(s, x, inverse, x.Shape()[1], 1)
	case x.Dims() == 4 && a.PerSite:
		sh := x.Shape()
		b, d := sh[0], sh[1]*sh[2]*sh[3]
		flat, err := Reshape(x, b, d)
		if err != nil {
			return nil, nil, err
		}
		rows, err := G.Transpose(flat, 1, 0)
		if err != nil {
			return nil, nil, err
		}
		y, ld, err := actNormRows(s, rows, inverse, b, 1)
		if err != nil {
			return nil, nil, err
		}
		if y, err = G.Transpose(y, 1, 0); err != nil {
			return nil, nil, err
		}
		y, err = Reshape(y, sh...)
		return y, ld, err
	case x.Dims() == 4:
		sh := x.Shape()
		b, c, h, w := sh[0], sh[1], sh[2], sh[3]
		t, err := G.Transpose(x, 1, 0, 2, 3)
		if err != nil {
			return nil, nil, err
		}
		rows, err := Reshape(t, c, b*h*w)
		if err != nil {
			return nil, nil, err
		}
		y, ld, err := actNormRows(s, rows, inverse, b, h*w)
		if err != nil {
			return nil, nil, err
		}
		if y, err = Reshape(y, c, b, h, w); err != nil {
			return nil, nil, err
		}
		if y, err = G.Transpose(y, 1, 0, 2, 3); err != nil {
			return nil, nil, err
		}
		return y, ld, nil
	default:
		return nil, nil, fmt.Errorf("layers: ActNorm %s: input shape %v, want (D, N) or (B, C, L, L)", s.Prefix(), x.Shape())
	}
}

// actNormRows applies the map to the rows of a (D, ·) matrix; the log-det has n entries, each
// sites·Σ logscale.
func actNormRows(s *Scope, x *G.Node, inverse bool, n, sites int) (*G.Node, *G.Node, error) {
	d := x.Shape()[0]
	bias := s.Param("bias", []int{d}, Zeros)
	logs := s.Param("logscale", []int{d}, Zeros)
	total, err := G.Sum(logs)
	if err != nil {
		return nil, nil, err
	}
	ones := G.NewConstant(onesOf(s, n), G.In(s.Graph()), G.WithName(fmt.Sprintf("%s/ones%d", s.Prefix(), n)))
	ld, err := G.Mul(ones, total)
	if err != nil {
		return nil, nil, err
	}
	if sites != 1 {
		if ld, err = G.Mul(ld, s.Scalar(float64(sites))); err != nil {
			return nil, nil, err
		}
	}
	if !inverse {
		xb, err := RowBias(x, bias)
		if err != nil {
			return nil, nil, err
		}
		e, err := G.Exp(logs)
		if err != nil {
			return nil, nil, err
		}
		y, err := RowScale(xb, e)
		return y, ld, err
	}
	nl, err := G.Neg(logs)
	if err != nil {
		return nil, nil, err
	}
	e, err := G.Exp(nl)
	if err != nil {
		return nil, nil, err
	}
	y, err := RowScale(x, e)
	if err != nil {
		return nil, nil, err
	}
	nb, err := G.Neg(bias)
	if err != nil {
		return nil, nil, err
	}
	if y, err = RowBias(y, nb); err != nil {
		return nil, nil, err
	}
	nld, err := G.Neg(ld)
	return y, nld, err
}

// Columns adapts a bijector on feature-major (D, N) matrices to sample-major (N, D) input, the shape the
// rest of the world uses for a batch of vectors: it transposes in and out.
type Columns struct{ Inner Bijector }

// Forward applies Inner.Forward to xᵀ.
func (c Columns) Forward(s *Scope, x *G.Node) (*G.Node, *G.Node, error) { return c.apply(s, x, false) }

// Inverse applies Inner.Inverse to zᵀ.
func (c Columns) Inverse(s *Scope, z *G.Node) (*G.Node, *G.Node, error) { return c.apply(s, z, true) }

func (c Columns) apply(s *Scope, x *G.Node, inverse bool) (*G.Node, *G.Node, error) {
	if x.Dims() != 2 {
		return nil, nil, fmt.Errorf("layers: Columns: input shape %v, want (N, D)", x.Shape())
	}
	xt, err := G.Transpose(x, 1, 0)
	if err != nil {
		return nil, nil, err
	}
	var y, ld *G.Node
	if inverse {
		y, ld, err = c.Inner.Inverse(s, xt)
	} else {
		y, ld, err = c.Inner.Forward(s, xt)
	}
	if err != nil {
		return nil, nil, err
	}
	yt, err := G.Transpose(y, 1, 0)
	return yt, ld, err
}
