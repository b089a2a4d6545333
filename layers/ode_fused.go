package layers

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The fused ODE integration of a whole-lattice KernelField (ODE.Fused): the whole fixed-step Runge–Kutta
// integration of dx/dt = v(x, t) with its log-det ∫ div v dt and kinetic energy ∫ Σ v² dt as Gorgonia
// ops with a hand-written backward pass. Unfused, RK4 with 8 steps is 32 field evaluations of a dozen
// graph nodes each (features, reshapes, gathers, an FFT convolution that recomputes the kernels' spectra
// every call), every node allocating its output every run; fused it is one op forward, one backward.
//
// The same numbers as the graph (ODE without Fused, the reference; tests compare values and gradients):
// each stage evaluates the features h_j of the field, their spectra by real 2-D FFTs, v̂_o = Σ_j Ŵ_{o,j}(t)
// ĥ_j and one inverse FFT per channel, the kernels' spectra computed once per run (W(t) = Σ_k b_k(t) W_k
// is linear in the parameters, so Ŵ(t) = Σ_k b_k(t) Ŵ_k); the spectrum of the state itself (the feature
// φ) follows the Runge–Kutta combinations by linearity, Ŷ_i = X̂ + h Σ_j a_ij v̂_j, with no transform.
// Samples evolve independently. On 16×16 and 32×32 lattices the lane engine (ode_fused_lanes.go)
// integrates 32 samples together in the tensors' own precision, every per-site number a vector over the
// samples: lane FFTs (16-point radix-4×4; 32-point, one radix-2 step over two of those) and sincos in
// assembly, full complex spectra of pairs of features, adjoints on the sites. On the other lattices the
// per-sample engine below runs one sample's whole trajectory at a time, in float64 whatever the dtype
// (sines and cosines to ~2e-9 for float32 tensors, to a few ulp for float64); the
// description that follows is the per-sample engine's, the lane engine computes the same numbers.
//
// The backward pass is the discrete adjoint of the unrolled scheme (reverse-mode differentiation of the
// Runge–Kutta stages, not the continuous adjoint ODE), so its gradients are the graph's to rounding. For a
// step X' = X + h Σ_i b_i k_i, k_i = v(Y_i, t + c_i h), Y_i = X + h Σ_{j<i} a_ij k_j, with adjoints X̄'
// and ℓ̄, κ̄ of the log-det and the kinetic energy:
//
//	k̄_i = h b_i X̄' + 2|h| b_i κ̄ k_i + h Σ_{j>i} a_ji Ȳ_j,   Ȳ_i = (∂v/∂Y)ᵀ k̄_i + h b_i ℓ̄ ∂div/∂Y,   X̄ = X̄' + Σ_i Ȳ_i.
//
// The field's vector-Jacobian product in Fourier space: h̄_j = IDFT(Σ_o conj Ŵ_{o,j} ĝ_o) with ĝ the
// spectrum of k̄, Ȳ_c = Σ_f h̄_{(f,c)} h_f′(Y_c) + d̄ Σ_f W_{c,(f,c)}(0, t) h_f″(Y_c), and the kernels'
// gradient Σ_samples ĝ_o conj ĥ_j, accumulated per stage in Fourier space and transformed back once.
// The adjoints X̄, Ȳ_i are kept as spectra (k̄_i is only ever transformed): the part of Ȳ_i from the
// feature φ (h′ = 1) is then Σ_o conj Ŵ_{o,c} ĝ_o itself, and the rest takes one transform per channel.
//
// Everything the backward pass needs travels through the graph; the ops keep no state between runs:
//
//	acts = odeFwdOp(x, w)              [x(t₁) | log-det | kinetic | the stage inputs Y_i (| the k_i) (| sin Y_i, cos Y_i)]
//	out  = odeOutOp(x, w, acts)        [x(t₁) | log-det | kinetic], differentiable in x and w
//	∂    = odeGradOp(x, w, acts, ∂out) [∂x | ∂w] (built by out's SymDiff)
//
// The stage inputs take stages·|x| numbers (32·|x| for 8 RK4 steps; the lane engine rounds the batch up
// to whole blocks of 32 and keeps nothing else but the k_i); the velocities k_i are kept too
// only when the kinetic energy is differentiated, and sin Y_i, cos Y_i (from which the features and their
// derivatives follow by angle addition) when the frequencies are 1, 2, …. The outputs come from the
// scope's arena when it has one (Scope.SetArena). The fused ops are first-order only: the backward op's
// derivative is an error (use the graph for second derivatives).

// odePlan is the static description of one fused integration.
type odePlan struct {
	b, c, h, w int // batch, channels, lattice
	freqs      []float64
	odd        bool
	nf         int   // features per channel
	k          int   // time-basis functions
	np         int   // kernel parameters per (output channel, feature)
	param      []int // lattice offset (row-major) → its parameter index
	steps      int
	t0, t1     float64
	tab        tableau
	kinetic    bool   // keep the k_i: the kinetic energy is differentiable
	lanes      bool   // 16×16 and 32×32 (laneSides): the lane engine (ode_fused_lanes.go), laneN samples at a time
	ar         *Arena // where the ops' outputs come from (nil: allocated afresh)
}

func (p *odePlan) v() int      { return p.h * p.w }
func (p *odePlan) fc() int     { return p.nf * p.c }
func (p *odePlan) stages() int { return p.steps * len(p.tab.c) }
func (p *odePlan) xSize() int  { return p.b * p.c * p.v() }
func (p *odePlan) wSize() int  { return p.k * p.c * p.fc() * p.np }
func (p *odePlan) outSize() int {
	return p.xSize() + 2*p.b
}
func (p *odePlan) actsSize() int {
	if p.lanes {
		return p.laneActsSize()
	}
	return p.trigOff(p.b, 0)
}

// harmonic reports whether the frequencies are 1, 2, …: the features follow from sin y and cos y by angle
// addition, and the forward pass keeps sin Y_i and cos Y_i for the backward one.
func (p *odePlan) harmonic() bool {
	for k, w := range p.freqs {
		if w != float64(k+1) {
			return false
		}
	}
	return len(p.freqs) > 0
}

// trigOff is the offset of sin Y_i, cos Y_i (C·V each) of sample b's stage si (harmonic only).
func (p *odePlan) trigOff(b, si int) int {
	per := 1
	if p.kinetic {
		per = 2
	}
	off := p.outSize() + per*p.stages()*p.xSize()
	if !p.harmonic() {
		return off
	}
	return off + (b*p.stages()+si)*2*p.c*p.v()
}

// Offsets in the activation vector of sample b's stage si: its input Y_i and (kinetic only) its velocity k_i.
func (p *odePlan) stateOff(b, si int) int { return p.outSize() + (b*p.stages()+si)*p.c*p.v() }
func (p *odePlan) velOff(b, si int) int {
	return p.outSize() + (p.b*p.stages()+b*p.stages()+si)*p.c*p.v()
}

func (p *odePlan) hstep() float64 { return (p.t1 - p.t0) / float64(p.steps) }

// stageTime is the time of stage i of step n.
func (p *odePlan) stageTime(n, i int) float64 {
	h := p.hstep()
	return p.t0 + float64(n)*h + p.tab.c[i]*h
}

func (p *odePlan) String() string {
	return fmt.Sprintf("%dx%dx%dx%d/f%v/odd%v/K%d/P%d/%d×%d/%g→%g/kin%v/lanes%v", p.b, p.c, p.h, p.w, p.freqs, p.odd, p.k,
		p.np, p.steps, len(p.tab.c), p.t0, p.t1, p.kinetic, p.lanes)
}

// fusable reports whether the integration can run fused: a whole-lattice KernelField on a power-of-two
// lattice (the FFTs of the fused op), and why not otherwise.
func (o ODE) fusable(x *G.Node) error {
	k, ok := o.Field.(KernelField)
	if !ok {
		return fmt.Errorf("the fused integration needs a KernelField, have %T", o.Field)
	}
	if k.Radius != 0 {
		return fmt.Errorf("the fused integration needs whole-lattice kernels (radius 0), have radius %d", k.Radius)
	}
	if err := k.validate(x); err != nil {
		return err
	}
	if h, w := x.Shape()[2], x.Shape()[3]; !supportedFFT(h, w) {
		return fmt.Errorf("the fused integration needs power-of-two lattice sides ≥ 2, have %d×%d", h, w)
	}
	return nil
}

// integrateFused builds the fused integration of a KernelField (o.fusable).
func (o ODE) integrateFused(s *Scope, x *G.Node, t0, t1 float64, kinetic bool) (xe, ld, kin *G.Node, err error) {
	wrap := func(e error) error { return fmt.Errorf("layers: ODE %s (fused): %w", s.Prefix(), e) }
	p, err := o.fusedPlan(x, t0, t1, kinetic)
	if err != nil {
		return nil, nil, nil, wrap(err)
	}
	// the parameter of KernelField.Velocity: same name, shape and initialisation
	wp := s.Param("w", []int{p.k, p.c, p.fc(), p.np}, Zeros)
	p.ar = s.Arena()
	if xe, ld, kin, err = fusedNodes(p, x, wp); err != nil {
		return nil, nil, nil, wrap(err)
	}
	return xe, ld, kin, nil
}

// fusedPlan checks that the integration can run fused and plans it.
func (o ODE) fusedPlan(x *G.Node, t0, t1 float64, kinetic bool) (*odePlan, error) {
	if err := o.fusable(x); err != nil {
		return nil, err
	}
	k := o.Field.(KernelField)
	sh := []int(x.Shape())
	_, _, param, np := k.kernelGeom(sh[2], sh[3])
	return &odePlan{b: sh[0], c: sh[1], h: sh[2], w: sh[3], freqs: append([]float64(nil), k.freqs()...), odd: k.Odd,
		nf: k.Features(), k: k.timeBasis(), np: np, param: param, steps: o.Steps, t0: t0, t1: t1, tab: o.tableau(),
		kinetic: kinetic, lanes: laneSides(sh[2], sh[3])}, nil
}

// fusedNodes applies the fused ops to x and the kernel parameter wp (K, C, F·C, P) and unpacks x(t₁)
// (x's shape), the log-det (B) and, when p.kinetic, the kinetic energy (B).
func fusedNodes(p *odePlan, x, wp *G.Node) (xe, ld, kin *G.Node, err error) {
	if err := sameDtype("fused ODE", x, wp); err != nil {
		return nil, nil, nil, err
	}
	if err := checkShape("fused ODE", 1, wp.Shape(), []int{p.k, p.c, p.fc(), p.np}); err != nil {
		return nil, nil, nil, err
	}
	acts, err := G.ApplyOp(odeFwdOp{p}, x, wp)
	if err != nil {
		return nil, nil, nil, err
	}
	out, err := G.ApplyOp(odeOutOp{p}, x, wp, acts)
	if err != nil {
		return nil, nil, nil, err
	}
	n := p.xSize()
	if xe, err = narrowIn(p.ar, out, 0, 0, n); err != nil {
		return nil, nil, nil, err
	}
	if xe, err = reshapeIn(p.ar, xe, p.b, p.c, p.h, p.w); err != nil {
		return nil, nil, nil, err
	}
	if ld, err = narrowIn(p.ar, out, 0, n, p.b); err != nil {
		return nil, nil, nil, err
	}
	if p.kinetic {
		if kin, err = narrowIn(p.ar, out, 0, n+p.b, p.b); err != nil {
			return nil, nil, nil, err
		}
	}
	return xe, ld, kin, nil
}

// odeFwdOp integrates: inputs x (B, C, H, W) and w (K, C, F·C, P), output the activation vector.
type odeFwdOp struct{ p *odePlan }

func (op odeFwdOp) Arity() int    { return 2 }
func (op odeFwdOp) Type() hm.Type { return fnType(1, 4, 4) }
func (op odeFwdOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	if _, err := nodeShapes(op.String(), 2, ds); err != nil {
		return nil, err
	}
	return tensor.Shape{op.p.actsSize()}, nil
}
func (op odeFwdOp) Do(vals ...G.Value) (G.Value, error) {
	p := op.p
	sizes := []int{p.xSize(), p.wSize()}
	if len(vals) > 0 && is32(vals[0]) {
		in, err := floats[float32](op.String(), vals, sizes)
		if err != nil {
			return nil, err
		}
		res, _, o := newOutIn(p.ar, true, []int{p.actsSize()})
		odeForwardAny(p, in[0], in[1], o)
		return res, nil
	}
	in, err := floats[float64](op.String(), vals, sizes)
	if err != nil {
		return nil, err
	}
	res, o, _ := newOutIn(p.ar, false, []int{p.actsSize()})
	odeForwardAny(p, in[0], in[1], o)
	return res, nil
}
func (op odeFwdOp) ReturnsPtr() bool      { return true }
func (op odeFwdOp) CallsExtern() bool     { return false }
func (op odeFwdOp) OverwritesInput() int  { return -1 }
func (op odeFwdOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "rgflow.odefused|%p", op.p) }
func (op odeFwdOp) Hashcode() uint32      { return hash32(op) }
func (op odeFwdOp) String() string        { return "FusedODE" + op.p.String() }
func (op odeFwdOp) DiffWRT(n int) []bool  { return make([]bool, n) }
func (op odeFwdOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("layers: %s: the activation vector is not differentiable (differentiate its unpacked output)", op)
}

// odeOutOp unpacks [x(t₁) | log-det | kinetic] from the activations (its last input); it is
// differentiable with respect to x and w, its first two inputs.
type odeOutOp struct{ p *odePlan }

func (op odeOutOp) Arity() int    { return 3 }
func (op odeOutOp) Type() hm.Type { return fnType(1, 4, 4, 1) }
func (op odeOutOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	if _, err := nodeShapes(op.String(), 3, ds); err != nil {
		return nil, err
	}
	return tensor.Shape{op.p.outSize()}, nil
}
func (op odeOutOp) Do(vals ...G.Value) (G.Value, error) {
	p := op.p
	if len(vals) != 3 {
		return nil, fmt.Errorf("layers: %s: got %d inputs, want 3", op, len(vals))
	}
	n := p.outSize()
	if is32(vals[2]) {
		in, err := floats[float32](op.String(), vals[2:], []int{p.actsSize()})
		if err != nil {
			return nil, err
		}
		res, _, o := newOutIn(p.ar, true, []int{n})
		copy(o, in[0][:n])
		return res, nil
	}
	in, err := floats[float64](op.String(), vals[2:], []int{p.actsSize()})
	if err != nil {
		return nil, err
	}
	res, o, _ := newOutIn(p.ar, false, []int{n})
	copy(o, in[0][:n])
	return res, nil
}
func (op odeOutOp) ReturnsPtr() bool      { return true }
func (op odeOutOp) CallsExtern() bool     { return false }
func (op odeOutOp) OverwritesInput() int  { return -1 }
func (op odeOutOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "rgflow.odefusedout|%p", op.p) }
func (op odeOutOp) Hashcode() uint32      { return hash32(op) }
func (op odeOutOp) String() string        { return "UnpackFusedODE" + op.p.String() }
func (op odeOutOp) DiffWRT(n int) []bool  { return []bool{true, true, false}[:n] }
func (op odeOutOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	if len(in) != 3 {
		return nil, fmt.Errorf("layers: %s: got %d inputs, want 3", op, len(in))
	}
	p := op.p
	bw, err := G.ApplyOp(odeGradOp{p}, in[0], in[1], in[2], grad)
	if err != nil {
		return nil, err
	}
	total := p.xSize() + p.wSize()
	dx, err := G.ApplyOp(odeSegOp{off: 0, n: p.xSize(), total: total, shape: []int{p.b, p.c, p.h, p.w}, ar: p.ar}, bw)
	if err != nil {
		return nil, err
	}
	dw, err := G.ApplyOp(odeSegOp{off: p.xSize(), n: p.wSize(), total: total, shape: []int{p.k, p.c, p.fc(), p.np}, ar: p.ar}, bw)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dw, nil}, nil
}

// odeGradOp is the backward pass: inputs x, w, the activations and ∂out, output [∂x | ∂w].
type odeGradOp struct{ p *odePlan }

func (op odeGradOp) Arity() int    { return 4 }
func (op odeGradOp) Type() hm.Type { return fnType(1, 4, 4, 1, 1) }
func (op odeGradOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	if _, err := nodeShapes(op.String(), 4, ds); err != nil {
		return nil, err
	}
	return tensor.Shape{op.p.xSize() + op.p.wSize()}, nil
}
func (op odeGradOp) Do(vals ...G.Value) (G.Value, error) {
	p := op.p
	sizes := []int{p.xSize(), p.wSize(), p.actsSize(), p.outSize()}
	n := p.xSize() + p.wSize()
	if len(vals) > 0 && is32(vals[0]) {
		in, err := floats[float32](op.String(), vals, sizes)
		if err != nil {
			return nil, err
		}
		res, _, o := newOutIn(p.ar, true, []int{n})
		if err := odeBackwardAny(p, in[1], in[2], in[3], o); err != nil {
			return nil, fmt.Errorf("layers: %s: %w", op, err)
		}
		return res, nil
	}
	in, err := floats[float64](op.String(), vals, sizes)
	if err != nil {
		return nil, err
	}
	res, o, _ := newOutIn(p.ar, false, []int{n})
	if err := odeBackwardAny(p, in[1], in[2], in[3], o); err != nil {
		return nil, fmt.Errorf("layers: %s: %w", op, err)
	}
	return res, nil
}
func (op odeGradOp) ReturnsPtr() bool      { return true }
func (op odeGradOp) CallsExtern() bool     { return false }
func (op odeGradOp) OverwritesInput() int  { return -1 }
func (op odeGradOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "rgflow.odefusedgrad|%p", op.p) }
func (op odeGradOp) Hashcode() uint32      { return hash32(op) }
func (op odeGradOp) String() string        { return "FusedODEGrad" + op.p.String() }
func (op odeGradOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = true
	}
	return d
}
func (op odeGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("layers: %s is first-order only (integrate without ODE.Fused for second derivatives)", op)
}

// odeSegOp copies one segment of the packed gradient out as a tensor of the given shape; like the
// gradient it comes from, it has no derivative.
type odeSegOp struct {
	off, n, total int
	shape         []int
	ar            *Arena
}

func (op odeSegOp) Arity() int    { return 1 }
func (op odeSegOp) Type() hm.Type { return fnType(len(op.shape), 1) }
func (op odeSegOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	if _, err := nodeShapes(op.String(), 1, ds); err != nil {
		return nil, err
	}
	return tensor.Shape(append([]int(nil), op.shape...)), nil
}
func (op odeSegOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) == 1 && is32(vals[0]) {
		in, err := floats[float32](op.String(), vals, []int{op.total})
		if err != nil {
			return nil, err
		}
		res, _, o := newOutIn(op.ar, true, op.shape)
		copy(o, in[0][op.off:op.off+op.n])
		return res, nil
	}
	in, err := floats[float64](op.String(), vals, []int{op.total})
	if err != nil {
		return nil, err
	}
	res, o, _ := newOutIn(op.ar, false, op.shape)
	copy(o, in[0][op.off:op.off+op.n])
	return res, nil
}
func (op odeSegOp) ReturnsPtr() bool     { return true }
func (op odeSegOp) CallsExtern() bool    { return false }
func (op odeSegOp) OverwritesInput() int { return -1 }
func (op odeSegOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.odeseg|%d|%d|%d|%v", op.off, op.n, op.total, op.shape)
}
func (op odeSegOp) Hashcode() uint32 { return hash32(op) }
func (op odeSegOp) String() string {
	return fmt.Sprintf("FusedODEGradSegment[%d:%d]", op.off, op.off+op.n)
}
func (op odeSegOp) DiffWRT(n int) []bool { return []bool{true}[:n] }
func (op odeSegOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("layers: %s: the fused ODE's gradient is first-order only (integrate without ODE.Fused for second derivatives)", op)
}

// odeWork holds one run's kernel spectra and per-sample scratch (all float64 / complex128).
type odeWork struct {
	p        *odePlan
	fft      *realFFT2
	nh       int          // half-spectrum size h·(w/2+1)
	what     []complex128 // per stage: Ŵ_{o,j}(t_i), (stages, C, F·C, nh)
	centre   []float64    // per stage: W_{o,(f,o)}(0, t_i), (stages, C, F)
	harmonic bool         // freqs are 1, 2, … (odePlan.harmonic)
	fast     bool         // float32 tensors: the cheaper sincos
	feat     []float64    // (F·C, V) features h_j (not f = 0: the state itself)
	spec     []complex128 // (F·C, nh)
	vspec    []complex128 // (C, nh)
	plane    []float64    // (V)
	cosk     []float64    // (C, |freqs|, V) cos ωφ
	arg      []float64    // (V) ωφ
	dsum     []float64    // (F·C) Σ_x h_j′
	trig     []float64    // (2, C, V) sin y, cos y kept by the forward pass, or nil: compute them
	tmp      []complex128 // (nh)
}

func newODEWork[T float](p *odePlan, wp []T) *odeWork {
	v, fc := p.v(), p.fc()
	fft := newRealFFT2(p.h, p.w)
	nh := p.h * fft.wh
	var zero T
	_, is32 := any(zero).(float32)
	ow := &odeWork{p: p, fft: fft, nh: nh, fast: is32, harmonic: p.harmonic(),
		feat: make([]float64, fc*v),
		spec: make([]complex128, fc*nh), vspec: make([]complex128, p.c*nh), plane: make([]float64, v),
		cosk: make([]float64, p.c*len(p.freqs)*v), arg: make([]float64, v), dsum: make([]float64, fc), tmp: make([]complex128, nh)}
	// the spectra of the K basis kernels, then their combinations at every stage time
	oj := p.c * fc
	base := make([]complex128, p.k*oj*nh)
	for k := 0; k < p.k; k++ {
		for q := 0; q < oj; q++ {
			src := wp[(k*oj+q)*p.np : (k*oj+q+1)*p.np]
			for r, pi := range p.param {
				ow.plane[r] = float64(src[pi])
			}
			fft.forward(ow.plane, base[(k*oj+q)*nh:(k*oj+q+1)*nh])
		}
	}
	ns := p.stages()
	ow.what = make([]complex128, ns*oj*nh)
	ow.centre = make([]float64, ns*p.c*p.nf)
	for n := 0; n < p.steps; n++ {
		for i := range p.tab.c {
			si := n*len(p.tab.c) + i
			bt := TimeBasis(p.k, p.stageTime(n, i))
			dst := ow.what[si*oj*nh : (si+1)*oj*nh]
			for k, c := range bt {
				src := base[k*oj*nh : (k+1)*oj*nh]
				cc := complex(c, 0)
				for e, s := range src {
					dst[e] += cc * s
				}
			}
			for o := 0; o < p.c; o++ {
				for f := 0; f < p.nf; f++ {
					j := f*p.c + o
					var s float64
					for k, c := range bt {
						s += c * float64(wp[((k*p.c+o)*fc+j)*p.np+p.param[0]])
					}
					ow.centre[(si*p.c+o)*p.nf+f] = s
				}
			}
		}
	}
	return ow
}

// features evaluates the features of the state y (C, V) of one sample: the planes f ≥ 1 of feat (plane
// f = 0 is y itself), cos ω_k y of every channel and frequency in cosk (the derivatives: h′ = ω cos ωy,
// h″ = −ω² sin ωy for the sine features, −ω sin ωy and −ω² cos ωy for the cosine ones) and, when sums,
// Σ_x h_j′ in dsum. One sincos per site and frequency, or per site when the frequencies are 1, 2, …
// (angle addition), in streaming loops over the sites.
func (ow *odeWork) features(y []float64, sums bool) {
	p := ow.p
	v, n := p.v(), len(p.freqs)
	for c := 0; c < p.c; c++ {
		ys := y[c*v : (c+1)*v]
		plane := func(f int) []float64 { return ow.feat[(f*p.c+c)*v : (f*p.c+c+1)*v] }
		ow.dsum[c] = float64(v)
		var s1, c1 []float64
		for k, w := range p.freqs {
			sk, ck := plane(1+k), ow.cosPlane(c, k)
			var ss, cs float64 // Σ sin, Σ cos (the derivative sums)
			switch {
			case !ow.harmonic:
				for i, x := range ys {
					ow.arg[i] = w * x
				}
				sincosSlice(ow.arg[:v], sk, ck, ow.fast)
				if sums {
					ss, cs = sum2(sk, ck)
				}
			case k == 0:
				if ow.trig != nil { // kept by the forward pass
					copy(sk, ow.trig[c*v:(c+1)*v])
					copy(ck, ow.trig[(p.c+c)*v:(p.c+c+1)*v])
				} else {
					sincosSlice(ys, sk, ck, ow.fast)
				}
				s1, c1 = sk, ck
				if sums {
					ss, cs = sum2(sk, ck)
				}
			default: // sin(k+1)x = sin kx cos x + cos kx sin x; cos(k+1)x = cos kx cos x − sin kx sin x
				sp, cp := plane(k), ow.cosPlane(c, k-1)
				sp, cp, s1, c1 = sp[:v], cp[:v], s1[:v], c1[:v]
				sk, ck = sk[:v], ck[:v]
				for i := range sk {
					sn, cn := sp[i]*c1[i]+cp[i]*s1[i], cp[i]*c1[i]-sp[i]*s1[i]
					sk[i], ck[i] = sn, cn
					ss += sn
					cs += cn
				}
			}
			if !p.odd {
				copy(plane(1+n+k), ck)
			}
			if sums {
				ow.dsum[(1+k)*p.c+c] = w * cs
				if !p.odd {
					ow.dsum[(1+n+k)*p.c+c] = -w * ss
				}
			}
		}
	}
}

// sum2 returns Σ a and Σ b.
func sum2(a, b []float64) (sa, sb float64) {
	b = b[:len(a)]
	for i, x := range a {
		sa += x
		sb += b[i]
	}
	return sa, sb
}

// cosPlane is cos ω_k y of channel c (after features).
func (ow *odeWork) cosPlane(c, k int) []float64 {
	v := ow.p.v()
	i := c*len(ow.p.freqs) + k
	return ow.cosk[i*v : (i+1)*v]
}

// sincosSlice sets s[i], c[i] to sin x[i], cos x[i]: sincos32 (fast) or sincos64, bit for bit, with the
// quadrant rotation done on the bits instead of by branches (the quadrants of a field's values are
// random, which defeats branch prediction).
func sincosSlice(x, s, c []float64, fast bool) {
	s, c = s[:len(x)], c[:len(x)]
	const sign = 1 << 63
	for i, xv := range x {
		if !(math.Abs(xv) < 1<<20) {
			s[i], c[i] = math.Sincos(xv)
			continue
		}
		k := math.Round(xv * (2 / math.Pi))
		var sr, cr float64
		if fast {
			r := xv - k*(math.Pi/2)
			r2 := r * r
			sr = r * (1 + r2*(-1.0/6+r2*(1.0/120+r2*(-1.0/5040+r2*(1.0/362880)))))
			cr = 1 + r2*(-0.5+r2*(1.0/24+r2*(-1.0/720+r2*(1.0/40320+r2*(-1.0/3628800)))))
		} else {
			const pio2a, pio2b, pio2c = 2 * 7.85398125648498535156e-1, 2 * 3.77489470793079817668e-8, 2 * 2.69515142907905952645e-15
			r := ((xv - k*pio2a) - k*pio2b) - k*pio2c
			r2 := r * r
			sr = r * (1 + r2*(-1.0/6+r2*(1.0/120+r2*(-1.0/5040+r2*(1.0/362880+r2*(-1.0/39916800+r2*(1.0/6227020800+r2*(-1.0/1307674368000+r2*(1.0/355687428096000)))))))))
			cr = 1 + r2*(-0.5+r2*(1.0/24+r2*(-1.0/720+r2*(1.0/40320+r2*(-1.0/3628800+r2*(1.0/479001600+r2*(-1.0/87178291200+r2*(1.0/20922789888000+r2*(-1.0/6402373705728000)))))))))
		}
		// quadrant q: odd q swaps (sin, cos) → (cos, −sin); q & 2 negates both
		q := uint64(int64(k))
		odd := -(q & 1)
		neg := (q & 2) << 62
		sb, cb := math.Float64bits(sr), math.Float64bits(cr)
		s[i] = math.Float64frombits((sb&^odd | cb&odd) ^ neg)
		c[i] = math.Float64frombits((cb&^odd | (sb^sign)&odd) ^ neg)
	}
}

// field evaluates v (C, V) and div v at the state y (C, V) of one sample, stage si, given the spectrum
// of y in yspec (C·nh; the features f = 0); it leaves the spectrum of v in vspec.
func (ow *odeWork) field(y []float64, yspec []complex128, si int, v []float64) (div float64) {
	p := ow.p
	nv, fc, nh := p.v(), p.fc(), ow.nh
	ow.features(y, true)
	copy(ow.spec, yspec[:p.c*nh])
	for j := p.c; j < fc; j++ {
		ow.fft.forward(ow.feat[j*nv:(j+1)*nv], ow.spec[j*nh:(j+1)*nh])
	}
	wt := ow.what[si*p.c*fc*nh:]
	for o := 0; o < p.c; o++ {
		dst := ow.vspec[o*nh : (o+1)*nh]
		cmulSet(dst, wt[o*fc*nh:(o*fc+1)*nh], ow.spec[:nh])
		for j := 1; j < fc; j++ {
			cmulAdd(dst, wt[(o*fc+j)*nh:(o*fc+j+1)*nh], ow.spec[j*nh:(j+1)*nh])
		}
		copy(ow.tmp, dst)
		ow.fft.inverse(ow.tmp, v[o*nv:(o+1)*nv])
	}
	scale := 1 / float64(nv)
	for i := range v[:p.c*nv] {
		v[i] *= scale
	}
	for o := 0; o < p.c; o++ {
		for f := 0; f < p.nf; f++ {
			div += ow.centre[(si*p.c+o)*p.nf+f] * ow.dsum[f*p.c+o]
		}
	}
	return div
}

// cmulSet sets dst = a ⊙ b.
func cmulSet(dst, a, b []complex128) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i, x := range a {
		y := b[i]
		dst[i] = complex(real(x)*real(y)-imag(x)*imag(y), real(x)*imag(y)+imag(x)*real(y))
	}
}

// cmulConjSet sets dst = conj(a) ⊙ b.
func cmulConjSet(dst, a, b []complex128) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i, x := range a {
		y := b[i]
		dst[i] = complex(real(x)*real(y)+imag(x)*imag(y), real(x)*imag(y)-imag(x)*real(y))
	}
}

// caxpy does y += a·x for a real a.
func caxpy(y, x []complex128, a float64) {
	x = x[:len(y)]
	for i, e := range x {
		y[i] += complex(a*real(e), a*imag(e))
	}
}

// cmulAdd does dst += a ⊙ b.
func cmulAdd(dst, a, b []complex128) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i, x := range a {
		y := b[i]
		dst[i] += complex(real(x)*real(y)-imag(x)*imag(y), real(x)*imag(y)+imag(x)*real(y))
	}
}

// cmulConjAdd does dst += conj(a) ⊙ b.
func cmulConjAdd(dst, a, b []complex128) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i, x := range a {
		y := b[i]
		dst[i] += complex(real(x)*real(y)+imag(x)*imag(y), real(x)*imag(y)-imag(x)*real(y))
	}
}

// odeForwardAny runs the plan's engine forward.
func odeForwardAny[T float](p *odePlan, x, wp, acts []T) {
	if p.lanes {
		odeForwardLanes(p, x, wp, acts)
		return
	}
	odeForward(p, x, wp, acts)
}

// odeBackwardAny runs the plan's engine backward.
func odeBackwardAny[T float](p *odePlan, wp, acts, gout []T, out []T) error {
	if p.lanes {
		return odeBackwardLanes(p, wp, acts, gout, out)
	}
	return odeBackward(p, wp, acts, gout, out)
}

// odeForward integrates every sample and fills the activations.
func odeForward[T float](p *odePlan, x, wp, acts []T) {
	ow := newODEWork(p, wp)
	cv, ns, S := p.c*p.v(), p.stages(), len(p.tab.c)
	h := p.hstep()
	xe, ld, kin := acts[:p.xSize()], acts[p.xSize():p.xSize()+p.b], acts[p.xSize()+p.b:p.outSize()]
	states := acts[p.outSize():]
	// The states' spectra (the features f = 0) follow the steps by linearity: Ŷ_i = X̂ + h Σ_j a_ij v̂_j.
	nh, c := ow.nh, p.c
	cur := make([]float64, cv)
	y := make([]float64, cv)
	ks := make([]float64, S*cv)
	dx := make([]float64, cv)
	curSpec, ySpec, dxSpec := make([]complex128, c*nh), make([]complex128, c*nh), make([]complex128, c*nh)
	kSpec := make([]complex128, S*c*nh)
	for b := 0; b < p.b; b++ {
		for i, e := range x[b*cv : (b+1)*cv] {
			cur[i] = float64(e)
		}
		for o := 0; o < c; o++ {
			ow.fft.forward(cur[o*p.v():(o+1)*p.v()], curSpec[o*nh:(o+1)*nh])
		}
		var l, kn float64
		for n := 0; n < p.steps; n++ {
			clear(dx)
			clear(dxSpec)
			var dl, dk float64
			for i := 0; i < S; i++ {
				copy(y, cur)
				copy(ySpec, curSpec)
				for j, a := range p.tab.a[i] {
					if a != 0 {
						axpy(y, ks[j*cv:(j+1)*cv], h*a)
						caxpy(ySpec, kSpec[j*c*nh:(j+1)*c*nh], h*a)
					}
				}
				si := n*S + i
				st := states[(b*ns+si)*cv : (b*ns+si+1)*cv]
				for e, val := range y {
					st[e] = T(val)
				}
				k := ks[i*cv : (i+1)*cv]
				d := ow.field(y, ySpec, si, k)
				copy(kSpec[i*c*nh:(i+1)*c*nh], ow.vspec)
				if ow.harmonic {
					tr := acts[p.trigOff(b, si):][:2*cv]
					for o := 0; o < c; o++ {
						for e, val := range ow.feat[(c+o)*p.v() : (c+o+1)*p.v()] { // the plane f = 1: sin y
							tr[o*p.v()+e] = T(val)
						}
						for e, val := range ow.cosPlane(o, 0) {
							tr[(c+o)*p.v()+e] = T(val)
						}
					}
				}
				if p.kinetic {
					kst := states[(p.b*ns+b*ns+si)*cv : (p.b*ns+b*ns+si+1)*cv]
					for e, val := range k {
						kst[e] = T(val)
					}
				}
				if bi := p.tab.b[i]; bi != 0 {
					axpy(dx, k, h*bi)
					caxpy(dxSpec, kSpec[i*c*nh:(i+1)*c*nh], h*bi)
					dl += h * bi * d
					var e2 float64
					for _, val := range k {
						e2 += val * val
					}
					dk += math.Abs(h) * bi * e2
				}
			}
			for e := range cur {
				cur[e] += dx[e]
			}
			for e := range curSpec {
				curSpec[e] += dxSpec[e]
			}
			l += dl
			kn += dk
		}
		for i, val := range cur {
			xe[b*cv+i] = T(val)
		}
		ld[b], kin[b] = T(l), T(kn)
	}
}

// axpy does y += a·x.
func axpy(y, x []float64, a float64) {
	x = x[:len(y)]
	for i, e := range x {
		y[i] += a * e
	}
}

// odeBackward computes [∂x | ∂w] from the activations and the output gradient gout.
func odeBackward[T float](p *odePlan, wp, acts, gout []T, out []T) error {
	ow := newODEWork(p, wp)
	nv, cv, fc, nh, ns, S := p.v(), p.c*p.v(), p.fc(), ow.nh, p.stages(), len(p.tab.c)
	h := p.hstep()
	gx, gld, gkin := gout[:p.xSize()], gout[p.xSize():p.xSize()+p.b], gout[p.xSize()+p.b:]
	if !p.kinetic {
		for b, g := range gkin {
			if g != 0 {
				return fmt.Errorf("sample %d: the kinetic energy has a gradient but was not kept differentiable", b)
			}
		}
	}
	oj := p.c * fc
	acc := make([]complex128, ns*oj*nh)  // per stage: Σ_samples ĝ_o conj ĥ_j
	dacc := make([]float64, ns*p.c*p.nf) // per stage: Σ_samples d̄ Σ_x h_f′(Y_o)
	// The adjoints X̄, Ȳ_i and k̄_i are kept as spectra (k̄_i is only ever transformed): Ȳ_i's part from
	// the feature f = 0 (h′ = 1) is then Σ_o conj Ŵ_{o,c} ĝ_o with no transform, and the rest, computed on
	// the sites, takes one transform per channel.
	cnh := p.c * nh
	xbarS := make([]complex128, cnh)
	ybarS := make([]complex128, S*cnh)
	gspec := make([]complex128, cnh)
	kspec := make([]complex128, cnh)
	rest := make([]float64, cv)
	trig := make([]float64, 2*cv)
	y := make([]float64, cv)
	kv := make([]float64, cv)
	hb := make([]float64, nv)
	scale := 1 / float64(nv)
	for b := 0; b < p.b; b++ {
		for o := 0; o < p.c; o++ {
			for i, e := range gx[b*cv+o*nv : b*cv+(o+1)*nv] {
				kv[i] = float64(e)
			}
			ow.fft.forward(kv[:nv], xbarS[o*nh:(o+1)*nh])
		}
		lbar, kbarE := float64(gld[b]), float64(gkin[b])
		for n := p.steps - 1; n >= 0; n-- {
			for i := S - 1; i >= 0; i-- {
				si := n*S + i
				// k̄_i = h b_i X̄' + 2|h| b_i κ̄ k_i + h Σ_{j>i} a_ji Ȳ_j, as ĝ
				clear(gspec)
				bi := p.tab.b[i]
				if bi != 0 {
					caxpy(gspec, xbarS, h*bi)
					if kbarE != 0 {
						for e, val := range acts[p.velOff(b, si):][:cv] {
							kv[e] = float64(val)
						}
						for o := 0; o < p.c; o++ {
							ow.fft.forward(kv[o*nv:(o+1)*nv], kspec[o*nh:(o+1)*nh])
						}
						caxpy(gspec, kspec, 2*math.Abs(h)*bi*kbarE)
					}
				}
				for j := i + 1; j < S; j++ {
					if a := p.tab.a[j][i]; a != 0 {
						caxpy(gspec, ybarS[j*cnh:(j+1)*cnh], h*a)
					}
				}
				dbar := h * bi * lbar
				ybs := ybarS[i*cnh : (i+1)*cnh]
				clear(rest)
				for e, val := range acts[p.stateOff(b, si):][:cv] {
					y[e] = float64(val)
				}
				if ow.harmonic {
					for e, val := range acts[p.trigOff(b, si):][:2*cv] {
						trig[e] = float64(val)
					}
					ow.trig = trig
				}
				ow.features(y, false)
				// the field's vector-Jacobian product at Y_i
				wt := ow.what[si*oj*nh:]
				ac := acc[si*oj*nh:]
				for j := 0; j < fc; j++ {
					f, c := j/p.c, j%p.c
					hs := ow.spec[j*nh : (j+1)*nh]
					if f == 0 {
						ow.fft.forward(y[c*nv:(c+1)*nv], hs)
					} else {
						ow.fft.forward(ow.feat[j*nv:(j+1)*nv], hs)
					}
					for o := 0; o < p.c; o++ {
						cmulConjAdd(ac[(o*fc+j)*nh:(o*fc+j+1)*nh], hs, gspec[o*nh:(o+1)*nh])
					}
					// ĥ̄_j = Σ_o conj Ŵ_{o,j} ĝ_o; Ȳ_c += h̄_j h_f′(Y_c) (+ d̄ W_{c,j}(0) h_f″(Y_c))
					if f == 0 { // h′ = 1, h″ = 0: straight into the spectrum of Ȳ_c
						dst := ybs[c*nh : (c+1)*nh]
						for o := 0; o < p.c; o++ {
							cmulConjAdd(dst, wt[(o*fc+j)*nh:(o*fc+j+1)*nh], gspec[o*nh:(o+1)*nh])
						}
						if dbar != 0 {
							dacc[(si*p.c+c)*p.nf] += dbar * float64(nv)
						}
						continue
					}
					hbs := ow.vspec[:nh]
					cmulConjSet(hbs, wt[j*nh:(j+1)*nh], gspec[:nh])
					for o := 1; o < p.c; o++ {
						cmulConjAdd(hbs, wt[(o*fc+j)*nh:(o*fc+j+1)*nh], gspec[o*nh:(o+1)*nh])
					}
					ow.fft.inverse(hbs, hb)
					dst := rest[c*nv : (c+1)*nv]
					dst = dst[:len(hb)]
					// h′ = a·u, h″ = −ω²·u′ with (u, u′, a) = (cos, sin, ω) for sin ωy, (sin, cos, −ω) for cos ωy
					k, isCos := f-1, false
					if k >= len(p.freqs) {
						k, isCos = k-len(p.freqs), true
					}
					w := p.freqs[k]
					u, u2, a := ow.cosPlane(c, k), ow.feat[((1+k)*p.c+c)*nv:((1+k)*p.c+c+1)*nv], w
					if isCos {
						u, u2, a = u2, u, -w
					}
					u, u2 = u[:len(hb)], u2[:len(hb)]
					ga := scale * a
					if dbar == 0 {
						for e, g := range hb {
							dst[e] += ga * g * u[e]
						}
						continue
					}
					wc := -dbar * ow.centre[(si*p.c+c)*p.nf+f] * w * w
					var sum float64
					for e, g := range hb {
						dst[e] += ga*g*u[e] + wc*u2[e]
						sum += u[e]
					}
					dacc[(si*p.c+c)*p.nf+f] += dbar * a * sum
				}
				for c := 0; c < p.c; c++ {
					ow.fft.forward(rest[c*nv:(c+1)*nv], kspec[c*nh:(c+1)*nh])
					caxpy(ybs[c*nh:(c+1)*nh], kspec[c*nh:(c+1)*nh], 1)
				}
			}
			for i := 0; i < S; i++ {
				caxpy(xbarS, ybarS[i*cnh:(i+1)*cnh], 1)
				clear(ybarS[i*cnh : (i+1)*cnh])
			}
		}
		for o := 0; o < p.c; o++ {
			ow.fft.inverse(xbarS[o*nh:(o+1)*nh], kv[:nv])
			for i, val := range kv[:nv] {
				out[b*cv+o*nv+i] = T(scale * val)
			}
		}
	}
	// ∂w[k] = Σ_stages b_k(t_i) (the inverse transform of acc_i / N, summed over each parameter's offsets),
	// plus the centre taps' divergence terms.
	dw := out[p.xSize():]
	spec := make([]complex128, oj*nh)
	grad := make([]float64, nv)

	for k := 0; k < p.k; k++ {
		clear(spec)
		cen := make([]float64, p.c*p.nf)
		for n := 0; n < p.steps; n++ {
			for i := 0; i < S; i++ {
				si := n*S + i
				bk := TimeBasis(p.k, p.stageTime(n, i))[k]
				if bk == 0 {
					continue
				}
				cb := complex(bk, 0)
				for e, s := range acc[si*oj*nh : (si+1)*oj*nh] {
					spec[e] += cb * s
				}
				for e, s := range dacc[si*p.c*p.nf : (si+1)*p.c*p.nf] {
					cen[e] += bk * s
				}
			}
		}
		for q := 0; q < oj; q++ {
			ow.fft.inverse(spec[q*nh:(q+1)*nh], grad)
			dst := dw[(k*oj+q)*p.np : (k*oj+q+1)*p.np]
			sums := make([]float64, p.np)
			for r, pi := range p.param {
				sums[pi] += scale * grad[r]
			}
			o, j := q/fc, q%fc
			if j%p.c == o {
				sums[p.param[0]] += cen[o*p.nf+j/p.c]
			}
			for pi, s := range sums {
				dst[pi] = T(s)
			}
		}
	}
	return nil
}
