package models

import (
	"fmt"
	"math"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
)

// Prior is the latent distribution of a flow.
type Prior interface {
	// LogProb is log p(z) per sample for z (B, C, L, L) (or (B, D)); shape (B).
	LogProb(s *layers.Scope, z *G.Node) (*G.Node, error)
	// Sample fills dst (B, C, L, L) with independent draws.
	Sample(rng *rand.Rand, dst *tensor.Dense) error
}

// Temperatures sets a prior's scale per site. With LevelT nil every site has temperature T. Otherwise
// site s of every channel gets temperature LevelT[level(s)], with levels from Hier (RG-Flow samples
// with T = 0.2 at level 0 and 0.8 above).
type Temperatures struct {
	T      float64
	LevelT []float64
	Hier   layers.Hierarchy
}

// siteT returns the temperature of every feature of a (C, L, L) sample (length C·L·L), or nil when all
// features share T.
func (t Temperatures) siteT(features int) ([]float64, error) {
	if !(t.T > 0) && t.LevelT == nil {
		return nil, fmt.Errorf("models: prior temperature T=%g, want > 0", t.T)
	}
	if t.LevelT == nil {
		return nil, nil
	}
	if len(t.LevelT) != t.Hier.Levels() {
		return nil, fmt.Errorf("models: %d level temperatures for %d RG levels", len(t.LevelT), t.Hier.Levels())
	}
	for l, v := range t.LevelT {
		if !(v > 0) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("models: level %d temperature %g, want a positive finite number", l, v)
		}
	}
	v := t.Hier.L * t.Hier.L
	if features%v != 0 {
		return nil, fmt.Errorf("models: %d features per sample is not a multiple of L·L = %d", features, v)
	}
	lm := t.Hier.LevelMap()
	out := make([]float64, features)
	for i := range out {
		out[i] = t.LevelT[lm[i%v]]
	}
	return out, nil
}

// Gaussian is N(0, T²) per latent (standard normal at T = 1), the prior of the lattice presets.
type Gaussian struct{ Temperatures }

// Laplace has density exp(−|z|/b)/(2b) per latent with scale b = T/√2 (unit variance at T = 1), RG-Flow's
// sparse prior.
type Laplace struct{ Temperatures }

// LogProb is Σ −z²/(2σ²) − ln σ − ½ ln 2π with σ = T per site.
func (p Gaussian) LogProb(s *layers.Scope, z *G.Node) (*G.Node, error) {
	return logProb(s, z, p.Temperatures, func(t float64) float64 { return t }, true)
}

// Sample draws σ·N(0, 1).
func (p Gaussian) Sample(rng *rand.Rand, dst *tensor.Dense) error {
	return sample(rng, dst, p.Temperatures, func(t float64) float64 { return t }, rng.NormFloat64)
}

// LogProb is Σ −|z|/b − ln 2b with b = T/√2 per site.
func (p Laplace) LogProb(s *layers.Scope, z *G.Node) (*G.Node, error) {
	return logProb(s, z, p.Temperatures, laplaceScale, false)
}

// Sample draws b·(±Exp(1)).
func (p Laplace) Sample(rng *rand.Rand, dst *tensor.Dense) error {
	unit := func() float64 {
		e := rng.ExpFloat64()
		if rng.Uint64()&1 == 1 {
			return -e
		}
		return e
	}
	return sample(rng, dst, p.Temperatures, laplaceScale, unit)
}

func laplaceScale(t float64) float64 { return t / math.Sqrt2 }

// logProb computes the per-sample log-density of a factorised Gaussian (gauss) or Laplace prior whose
// per-site scale is scaleOf(T_site).
func logProb(s *layers.Scope, z *G.Node, temps Temperatures, scaleOf func(float64) float64, gauss bool) (*G.Node, error) {
	sh := z.Shape()
	if z.Dims() < 2 {
		return nil, fmt.Errorf("models: prior: latent shape %v, want (B, …)", sh)
	}
	batch := sh[0]
	feat := sh.TotalSize() / batch
	siteT, err := temps.siteT(feat)
	if err != nil {
		return nil, err
	}
	flat, err := layers.Reshape(z, batch, feat)
	if err != nil {
		return nil, err
	}
	// Normalised latent u = z/scale and the constant Σ log-normaliser.
	var u *G.Node
	var logNorm float64
	if siteT == nil {
		sc := scaleOf(temps.T)
		if u, err = G.Mul(flat, s.Scalar(1/sc)); err != nil {
			return nil, err
		}
		logNorm = float64(feat) * math.Log(sc)
	} else {
		inv := make([]float64, feat)
		for i, t := range siteT {
			sc := scaleOf(t)
			inv[i] = 1 / sc
			logNorm += math.Log(sc)
		}
		it := tensor.New(tensor.WithShape(feat), tensor.Of(s.Dtype()))
		layers.SetData(it, inv)
		c := G.NewConstant(it, G.In(s.Graph()), G.WithName(fmt.Sprintf("prior/invscale/%p", it)))
		if u, err = G.BroadcastHadamardProd(flat, c, nil, []byte{0}); err != nil {
			return nil, err
		}
	}
	var per *G.Node
	if gauss {
		sq, err := G.Square(u)
		if err != nil {
			return nil, err
		}
		if per, err = G.Sum(sq, 1); err != nil {
			return nil, err
		}
		if per, err = G.Mul(per, s.Scalar(-0.5)); err != nil {
			return nil, err
		}
		logNorm += 0.5 * float64(feat) * math.Log(2*math.Pi)
	} else {
		a, err := G.Abs(u)
		if err != nil {
			return nil, err
		}
		if per, err = G.Sum(a, 1); err != nil {
			return nil, err
		}
		if per, err = G.Neg(per); err != nil {
			return nil, err
		}
		logNorm += float64(feat) * math.Ln2
	}
	return G.Sub(per, s.Scalar(logNorm))
}

func sample(rng *rand.Rand, dst *tensor.Dense, temps Temperatures, scaleOf func(float64) float64, unit func() float64) error {
	sh := dst.Shape()
	if len(sh) < 2 {
		return fmt.Errorf("models: prior sample: destination shape %v, want (B, …)", sh)
	}
	feat := sh.TotalSize() / sh[0]
	siteT, err := temps.siteT(feat)
	if err != nil {
		return err
	}
	vals := make([]float64, sh.TotalSize())
	sc := scaleOf(temps.T)
	for i := range vals {
		if siteT != nil {
			sc = scaleOf(siteT[i%feat])
		}
		vals[i] = sc * unit()
	}
	layers.SetData(dst, vals)
	return nil
}
