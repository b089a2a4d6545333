package diffusion

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"

	"rgflow/layers"
)

// TraceScore is implemented by scores whose weighted Jacobian trace in mode coordinates is known exactly
// (the effective-action score: its Jacobian is minus the Hessian of the action). LogLikelihood and
// SampleLogProb then take the exact divergence of the probability flow instead of Hutchinson's estimate.
type TraceScore interface {
	// WeightedTrace writes Σ_j w_j ∂s_j/∂u_j (w per mode coordinate, length V) for every field of the
	// batch u (mode coordinates, length n·V) into dst (length n).
	WeightedTrace(t float64, u, w, dst []float64) error
}

// EffectiveHostScore runs an EffectiveScore on the host: Score through a NetScore, and the exact weighted
// trace of its Jacobian (TraceScore) from the couplings f(t) alone. With s = −∇S_t and
// S_t = f₁ Σφ² + f₂ Σφ⁴ + f₃ Σ(∇φ)² + f₄ u₀² + f₅ u₀⁴/V, in mode coordinates (orthogonal, so Σφ² = Σ_j u_j²,
// Σ(∇φ)² = Σ_j p̂²_j u_j² and u₀ = Σφ/√V) the diagonal of the Hessian is 2f₁ + 2f₃ p̂²_j (+ 2f₄ + 12 f₅ u₀²/V
// for j = 0) plus, from the local quartic term, 12 f₂ Σ_x φ_x² e_j(x)² with e_j the basis field of
// coordinate j. Hence
//
//	Σ_j w_j ∂s_j/∂u_j = −[ Σ_j w_j (2f₁ + 2f₃ p̂²_j) + (2f₄ + 12 f₅ u₀²/V) w₀ + 12 f₂ Σ_x W(x) φ_x² ],
//
// with W(x) = Σ_j w_j e_j(x)².
//
// A real mode has e_j(x)² = 1/V; the two coordinates of a pair ±k have 2cos²θ/V and 2sin²θ/V (θ = 2πk·x/L),
// so W(x) = Σ_j w_j / V whenever the two coordinates of every pair have the same weight (every process of
// this package: its coefficients depend on p̂² only); otherwise the cos 2θ terms are added site by site.
// The couplings are evaluated by a one-time graph of the MLP (Couplings), cached per t.
type EffectiveHostScore struct {
	*NetScore
	eff   *EffectiveScore
	g     *G.ExprGraph
	vm    G.VM
	tin   *G.Node
	f     *G.Node
	store *layers.Store
	lastT float64
	lastF [NumOperators]float64
	have  bool
	p2    []float64
}

// NewEffectiveHostScore binds e's parameters from store into a forward graph of batch samples (the score)
// and a graph of its couplings.
func NewEffectiveHostScore(e *EffectiveScore, store *layers.Store, batch int) (*EffectiveHostScore, error) {
	ns, err := NewNetScore(e, store, batch)
	if err != nil {
		return nil, err
	}
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	tin := s.Input("couplings/t", 1)
	f, err := e.Couplings(s, tin)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("diffusion: effective score couplings: %w", err)
	}
	vm, err := layers.NewTapeMachine(g)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("diffusion: effective score couplings: %w", err)
	}
	return &EffectiveHostScore{NetScore: ns, eff: e, g: g, vm: vm, tin: tin, f: f, store: store,
		p2: e.SDE.Lattice().P2Modes()}, nil
}

// Close releases both machines.
func (h *EffectiveHostScore) Close() error {
	err := h.NetScore.Close()
	if e := h.vm.Close(); err == nil {
		err = e
	}
	return err
}

// Couplings evaluates (f₁, …, f₅) at t (f₅ = 0 without ZeroQuartic).
func (h *EffectiveHostScore) Couplings(t float64) ([NumOperators]float64, error) {
	if h.have && t == h.lastT {
		return h.lastF, nil
	}
	if err := G.Let(h.tin, layers.NewDense(h.store.Dtype(), []int{1}, []float64{t})); err != nil {
		return h.lastF, err
	}
	defer h.vm.Reset()
	if err := h.vm.RunAll(); err != nil {
		return h.lastF, fmt.Errorf("diffusion: effective score couplings at t=%v: %w", t, err)
	}
	h.lastF = [NumOperators]float64{}
	copy(h.lastF[:], layers.ValueFloats(h.f.Value()))
	h.lastT, h.have = t, true
	return h.lastF, nil
}

// WeightedTrace implements TraceScore (see the type's doc).
func (h *EffectiveHostScore) WeightedTrace(t float64, u, w, dst []float64) error {
	l := h.eff.SDE.Lattice()
	V := l.V
	if len(w) != V || len(u) != len(dst)*V {
		return fmt.Errorf("diffusion: effective score trace: %d weights, %d values for %d fields, want V=%d and n·V", len(w), len(u), len(dst), V)
	}
	f, err := h.Couplings(t)
	if err != nil {
		return err
	}
	var sumW, quad float64
	for j, wj := range w {
		sumW += wj
		quad += wj * (2*f[0] + 2*f[2]*h.p2[j])
	}
	quad += 2 * f[3] * w[0]
	W := siteWeights(l, w)
	x := make([]float64, V)
	for b := range dst {
		var q float64
		if W == nil {
			for _, v := range u[b*V : (b+1)*V] {
				q += v * v
			}
			q *= sumW / float64(V)
		} else {
			l.FromModes(x, u[b*V:(b+1)*V])
			for i, v := range x {
				q += W[i] * v * v
			}
		}
		u0 := u[b*V]
		dst[b] = -(quad + 12*f[1]*q + 12*f[4]*u0*u0*w[0]/float64(V))
	}
	return nil
}

// siteWeights returns W(x) = Σ_j w_j e_j(x)², or nil when it is the constant Σ_j w_j / V (every pair's two
// coordinates weighted alike).
func siteWeights(l *Lattice, w []float64) []float64 {
	uniform := true
	for j := range w {
		if l.part[j] == 1 && w[j] != w[j+1] {
			uniform = false
			break
		}
	}
	if uniform {
		return nil
	}
	V, L := l.V, l.L
	var sum float64
	for _, v := range w {
		sum += v
	}
	W := make([]float64, V)
	for i := range W {
		W[i] = sum / float64(V)
	}
	for j := range w {
		if l.part[j] != 1 || w[j] == w[j+1] {
			continue
		}
		kx, ky, _ := l.Momentum(j)
		d := (w[j] - w[j+1]) / float64(V)
		for x := range L {
			for y := range L {
				th := 2 * math.Pi * float64(kx*x+ky*y) / float64(L)
				W[x*L+y] += d * math.Cos(2*th) // 2cos²θ w_re + 2sin²θ w_im = (w_re + w_im) + (w_re − w_im) cos 2θ
			}
		}
	}
	return W
}
