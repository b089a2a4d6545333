package diffusion

import (
	"fmt"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"

	"rgflow/layers"
)

// GraphScore is a score network built as a Gorgonia graph, trainable by losses.DSM and evaluated on the
// host by NetScore: s(x, t) = Scale(t) · f(Input(Scale(t)·x), t) with f = Build.
type GraphScore interface {
	Process() SDE
	Channels() int
	// InputChannels is the number of channels of Build's input (Input writes them).
	InputChannels() int
	Scale(t float64) (float64, error)
	Input(dst, x []float64)
	// Build builds f on xin (B, InputChannels, L, L) and t (B); the result is (B, Channels, L, L).
	Build(s *layers.Scope, xin, t *G.Node) (*G.Node, error)
}

// Process, Channels and InputChannels make CNNScore a GraphScore.
func (c *CNNScore) Process() SDE        { return c.SDE }
func (c *CNNScore) Channels() int       { return c.C }
func (c *CNNScore) InputChannels() int  { return c.In() }
func (e *EffectiveScore) Process() SDE  { return e.SDE }
func (e *EffectiveScore) Channels() int { return e.C }

// EffectiveScore is the score of a learned local effective action, s_t(φ) = −∇_φ S_t(φ) with
//
//	S_t(φ) = f₁(t) Σ_x φ_x² + f₂(t) Σ_x φ_x⁴ + f₃(t) Σ_{x,μ} (φ_{x+μ} − φ_x)² + f₄(t) (Σ_x φ_x)²/V
//	         + f₅(t) (Σ_x φ_x)⁴/V³
//
// (summed over channels too; φ_x⁴ and (Σφ)⁴ are per component). The last operator is the zero mode's square u₀²: it is
// not local, but the heat flow with a zero-mode regulator μ² ≠ 0 damps the zero mode at its own rate, so
// the exact Gaussian action at t > 0 has a zero-mode term that no local operator gives (at t → ∞ the
// action is Σ_{k≠0} p̂²_k |φ̃_k|²/Ω plus μ² u₀²/Ω). (f₁, raw, f₃, f₄) = MLP(emb(t/T)) and
// f₂ = softplus(raw) ≥ 0: a sinusoidal embedding, one tanh hidden layer of Hidden units and a linear output. The gradient is taken inside the
// graph with layers.Grad, so the DSM loss, which depends on it, can be differentiated again with respect to
// the MLP's weights. The output starts at f = (m²/2, softplus(−4) ≈ 0.018, 1/2) with m² = M2Init: nearly
// the free action of mass² M2Init. The score is not rescaled (Scale is 1). Parameters under "score/": mlp/w1 (Hidden, E), mlp/b1,
// mlp/w2 (Hidden, K) (zero at the start), mlp/b2 (K), K = 4, or 5 with ZeroQuartic.
//
// The last operator, the zero-mode quartic (Σφ)⁴/V³ = V M⁴ with M = Σφ/V the magnetisation, is there with
// ZeroQuartic (f₅ = softplus(raw₅) ≥ 0, starting at softplus(−4) like f₂; without it f₅ ≡ 0 and the MLP has
// four outputs, the layout of older runs). The normalisation V⁻³ makes f₅ an O(1) number on the scale of
// f₂: for a constant field φ_x = M both operators equal V M⁴. It lets the zero mode keep a non-Gaussian
// distribution as the local fluctuations are smoothed away: the heat flow damps Σφ⁴ towards (Σφ)⁴/V³, so
// without it the only quartic of the zero mode is the local one, which the flow sends to zero. In mode
// coordinates (u₀ = Σφ/√V) it is u₀⁴/V.
type EffectiveScore struct {
	SDE    SDE
	C      int
	Emb    layers.SinusoidalEmbedding
	Hidden int
	M2Init float64
	// ZeroQuartic adds the operator (Σφ)⁴/V³ with a learned f₅ ≥ 0 (set it before the first Build).
	ZeroQuartic bool
	// Residual starts the couplings at (0, softplus(−4), 0, 0[, softplus(−4)]) instead of the free action:
	// for an action that is a correction on top of an exact Gaussian part (GaussianResidual). Set it
	// before the first Build.
	Residual bool
}

// outputs is the number of learned couplings (the MLP's width): 4, or 5 with ZeroQuartic.
func (e *EffectiveScore) outputs() int {
	if e.ZeroQuartic {
		return NumOperators
	}
	return NumOperators - 1
}

// NewEffectiveScore returns an effective-action score with an MLP of hidden units.
func NewEffectiveScore(sde SDE, channels, hidden int, m2Init float64) (*EffectiveScore, error) {
	if channels < 1 || hidden < 1 {
		return nil, fmt.Errorf("diffusion: effective score: %d channels and %d hidden units, want both ≥ 1", channels, hidden)
	}
	return &EffectiveScore{SDE: sde, C: channels, Emb: layers.SinusoidalEmbedding{Dim: 32, Scale: 1000 / sde.T()},
		Hidden: hidden, M2Init: m2Init}, nil
}

func (e *EffectiveScore) InputChannels() int             { return e.C }
func (e *EffectiveScore) Scale(float64) (float64, error) { return 1, nil }
func (e *EffectiveScore) Input(dst, x []float64)         { copy(dst, x) }

// Couplings builds the learned couplings for t (B): a (B, K) node, (f₁, f₂, f₃, f₄) and f₅ with ZeroQuartic.
func (e *EffectiveScore) Couplings(s *layers.Scope, t *G.Node) (*G.Node, error) {
	emb, err := e.Emb.Apply(t)
	if err != nil {
		return nil, err
	}
	s = s.Sub("score").Sub("mlp")
	E := e.Emb.Dim
	w1 := s.Param("w1", []int{E, e.Hidden}, layers.GlorotUniform(1))
	b1 := s.Param("b1", []int{e.Hidden}, layers.Zeros)
	K := e.outputs()
	w2 := s.Param("w2", []int{e.Hidden, K}, layers.Zeros)
	m2, grad := e.M2Init/2, 0.5
	if e.Residual {
		m2, grad = 0, 0
	}
	b2 := s.Param("b2", []int{K}, func(_ *rand.Rand, _ []int, d []float64) {
		d[0], d[1], d[2], d[3] = m2, quarticInit, grad, 0
		if len(d) > 4 {
			d[4] = quarticInit
		}
	})
	h, err := G.Mul(emb, w1)
	if err != nil {
		return nil, err
	}
	if h, err = G.BroadcastAdd(h, b1, nil, []byte{0}); err != nil {
		return nil, err
	}
	if h, err = G.Tanh(h); err != nil {
		return nil, err
	}
	if h, err = G.Mul(h, w2); err != nil {
		return nil, err
	}
	if h, err = G.BroadcastAdd(h, b2, nil, []byte{0}); err != nil {
		return nil, err
	}
	// f₂, f₅ = softplus(raw) ≥ 0: a negative quartic term makes the action unbounded below and the
	// reverse process runs away.
	cols := make([]*G.Node, K)
	for i := range K {
		if cols[i], err = layers.Narrow(h, 1, i, 1); err != nil {
			return nil, err
		}
	}
	if cols[1], err = G.Softplus(cols[1]); err != nil {
		return nil, err
	}
	if e.ZeroQuartic {
		if cols[4], err = G.Softplus(cols[4]); err != nil {
			return nil, err
		}
	}
	return G.Concat(1, cols[:K]...)
}

// NumOperators is the number of operators of the effective action (φ², φ⁴, (∇φ)², zero mode², zero
// mode⁴).
const NumOperators = 5

// quarticInit is the starting raw value of f₂: softplus(−4) ≈ 0.018.
const quarticInit = -4

// Build builds −∇_x S_t(x) for xin (B, C, L, L), t (B).
func (e *EffectiveScore) Build(s *layers.Scope, xin, t *G.Node) (*G.Node, error) {
	f, err := e.Couplings(s, t)
	if err != nil {
		return nil, err
	}
	B := xin.Shape()[0]
	sumSites := func(n *G.Node) (*G.Node, error) { return G.Sum(n, 1, 2, 3) }
	x2, err := G.Square(xin)
	if err != nil {
		return nil, err
	}
	g1, err := sumSites(x2)
	if err != nil {
		return nil, err
	}
	x4, err := G.Square(x2)
	if err != nil {
		return nil, err
	}
	g2, err := sumSites(x4)
	if err != nil {
		return nil, err
	}
	var g3 *G.Node
	for axis := 2; axis <= 3; axis++ {
		r, err := layers.Roll(xin, axis, 1)
		if err != nil {
			return nil, err
		}
		d, err := G.Sub(r, xin)
		if err != nil {
			return nil, err
		}
		if d, err = G.Square(d); err != nil {
			return nil, err
		}
		sd, err := sumSites(d)
		if err != nil {
			return nil, err
		}
		if g3 == nil {
			g3 = sd
		} else if g3, err = G.Add(g3, sd); err != nil {
			return nil, err
		}
	}
	// Σ_x φ per sample and channel, (B, C). Summed one axis at a time: the derivative of Sum over the two
	// axes (2, 3) of a (B, C, L, L) node is wrong for C > 1 in this Gorgonia (it broadcasts the incoming
	// (B, C) gradient onto the wrong channel; TestEffectiveScoreIsMinusGradAction with C = 2 catches it).
	sum, err := G.Sum(xin, 3)
	if err != nil {
		return nil, err
	}
	if sum, err = G.Sum(sum, 2); err != nil {
		return nil, err
	}
	M2, err := G.Square(sum)
	if err != nil {
		return nil, err
	}
	sum2, err := G.Sum(M2, 1)
	if err != nil {
		return nil, err
	}
	V := float64(xin.Shape()[2] * xin.Shape()[3])
	g4, err := G.Div(sum2, s.Scalar(V))
	if err != nil {
		return nil, err
	}
	ops := []*G.Node{g1, g2, g3, g4}
	if e.ZeroQuartic {
		M4, err := G.Square(M2)
		if err != nil {
			return nil, err
		}
		if M4, err = G.Sum(M4, 1); err != nil {
			return nil, err
		}
		g5, err := G.Div(M4, s.Scalar(V*V*V))
		if err != nil {
			return nil, err
		}
		ops = append(ops, g5)
	}
	cols := make([]*G.Node, len(ops))
	for i, gi := range ops {
		if cols[i], err = layers.Reshape(gi, B, 1); err != nil {
			return nil, err
		}
	}
	g, err := G.Concat(1, cols...)
	if err != nil {
		return nil, err
	}
	fg, err := G.HadamardProd(f, g)
	if err != nil {
		return nil, err
	}
	S, err := G.Sum(fg)
	if err != nil {
		return nil, err
	}
	grads, err := layers.Grad(S, xin)
	if err != nil {
		return nil, fmt.Errorf("diffusion: effective score: %w", err)
	}
	return G.Neg(grads[0])
}

// CouplingsAt evaluates the learned (f₁, …, f₅) at the times ts with the weights in store (f₅ = 0 without
// ZeroQuartic).
func (e *EffectiveScore) CouplingsAt(store *layers.Store, ts []float64) ([][NumOperators]float64, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	t := s.Input("couplings/t", len(ts))
	f, err := e.Couplings(s, t)
	if err != nil {
		return nil, err
	}
	vm, err := layers.NewTapeMachine(g)
	if err != nil {
		return nil, err
	}
	defer vm.Close()
	if err := G.Let(t, layers.NewDense(store.Dtype(), []int{len(ts)}, ts)); err != nil {
		return nil, err
	}
	if err := vm.RunAll(); err != nil {
		return nil, fmt.Errorf("diffusion: effective score couplings: %w", err)
	}
	v := layers.ValueFloats(f.Value())
	K := e.outputs()
	out := make([][NumOperators]float64, len(ts))
	for i := range out {
		copy(out[i][:], v[K*i:K*(i+1)])
	}
	return out, nil
}

// GaussianCouplings projects the exact action of a mode-diagonal Gaussian at time t, ½ Σ_j u_j²/v_j(t)
// (v_j(t) the marginal variance of a start v0), onto the operators of EffectiveScore: the least-squares fit
// of 1/(2 v_j(t)) ≈ f₁ + f₃ p̂²_j over the mode coordinates j ≠ 0 (Σφ² = Σ u², Σ(∇φ)² = Σ p̂² u²), and f₄ =
// 1/(2 v_0) − f₁ for the zero mode (the operator (Σφ)²/V is u₀²); f₂ = 0. At t = 0 for a free field of mass²
// m² it is exact: f₁ = m²/2, f₃ = 1/2, f₄ = 0. A Gaussian has no quartic: its f₂ and f₅ are 0.
func GaussianCouplings(sde SDE, v0 []float64, t float64) (f1, f3, f4 float64, err error) {
	v := make([]float64, len(v0))
	if err := MarginalVariance(sde, t, v0, v); err != nil {
		return 0, 0, 0, err
	}
	p2 := sde.Lattice().P2Modes()
	var n, sx, sy, sxx, sxy float64
	for j, vj := range v {
		if j == 0 {
			continue
		}
		y := 1 / (2 * vj)
		x := p2[j]
		n++
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	f3 = (n*sxy - sx*sy) / (n*sxx - sx*sx)
	f1 = (sy - f3*sx) / n
	return f1, f3, 1/(2*v[0]) - f1, nil
}
