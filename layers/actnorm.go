package layers

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
)

// ActNorm is a per-feature affine map y = (x + bias) ⊙ exp(logScale). On an (N, D) matrix the features are
// the D columns; on a (B, C, L, L) field they are the C channels, shared over sites. Parameters "bias" and
// "logscale" start at 0 (the identity); InitFromData sets them so that a batch comes out with zero mean and
// unit variance per feature (Glow's data-dependent initialisation). The log-det per row (matrix) or per
// sample (field) is the sum of logScale over the features it touches.
type ActNorm struct{}

// Forward computes y = (x + bias) ⊙ exp(logscale).
func (ActNorm) Forward(s *Scope, x *G.Node) (*G.Node, *G.Node, error) {
	return actNorm(s, x, false)
}

// Inverse computes x = y ⊙ exp(−logscale) − bias.
func (ActNorm) Inverse(s *Scope, z *G.Node) (*G.Node, *G.Node, error) {
	return actNorm(s, z, true)
}

// InitFromData sets the ActNorm parameters under prefix so that the given batch (rows of length features)
// is standardised per feature.
func (ActNorm) InitFromData(store *Store, prefix string, rows [][]float64) error {
	if len(rows) < 2 {
		return fmt.Errorf("layers: ActNorm %s: data-dependent init needs at least 2 rows, got %d", prefix, len(rows))
	}
	d := len(rows[0])
	bias, logs := make([]float64, d), make([]float64, d)
	for j := 0; j < d; j++ {
		var m, m2 float64
		for _, r := range rows {
			m += r[j]
		}
		m /= float64(len(rows))
		for _, r := range rows {
			m2 += (r[j] - m) * (r[j] - m)
		}
		sd := math.Sqrt(m2/float64(len(rows))) + 1e-6
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

func actNorm(s *Scope, x *G.Node, inverse bool) (*G.Node, *G.Node, error) {
	switch x.Dims() {
	case 2:
		return actNormRows(s, x, inverse, 1)
	case 4:
		sh := x.Shape()
		b, c, h, w := sh[0], sh[1], sh[2], sh[3]
		t, err := G.Transpose(x, 0, 2, 3, 1)
		if err != nil {
			return nil, nil, err
		}
		rows, err := Reshape(t, b*h*w, c)
		if err != nil {
			return nil, nil, err
		}
		y, ld, err := actNormRows(s, rows, inverse, h*w)
		if err != nil {
			return nil, nil, err
		}
		if y, err = Reshape(y, b, h, w, c); err != nil {
			return nil, nil, err
		}
		if y, err = G.Transpose(y, 0, 3, 1, 2); err != nil {
			return nil, nil, err
		}
		// ld has one entry per row; rows of one sample share it, keep the first b entries scaled by h·w.
		ldb, err := Narrow(ld, 0, 0, b)
		if err != nil {
			return nil, nil, err
		}
		return y, ldb, nil
	default:
		return nil, nil, fmt.Errorf("layers: ActNorm %s: input shape %v, want (N, D) or (B, C, L, L)", s.Prefix(), x.Shape())
	}
}

// actNormRows applies the map to an (N, D) matrix; the returned log-det has N entries, each
// sites·Σ logscale.
func actNormRows(s *Scope, x *G.Node, inverse bool, sites int) (*G.Node, *G.Node, error) {
	n, d := x.Shape()[0], x.Shape()[1]
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
		xb, err := BiasAdd(x, bias)
		if err != nil {
			return nil, nil, err
		}
		e, err := G.Exp(logs)
		if err != nil {
			return nil, nil, err
		}
		y, err := G.BroadcastHadamardProd(xb, e, nil, []byte{0})
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
	y, err := G.BroadcastHadamardProd(x, e, nil, []byte{0})
	if err != nil {
		return nil, nil, err
	}
	nb, err := G.Neg(bias)
	if err != nil {
		return nil, nil, err
	}
	if y, err = BiasAdd(y, nb); err != nil {
		return nil, nil, err
	}
	nld, err := G.Neg(ld)
	return y, nld, err
}
