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
// is linear in the parameters, so Ŵ(t) = Σ_k b_k(t) Ŵ_k). Samples evolve independently, so the op runs
// one sample's whole trajectory at a time, in float64 whatever the dtype (sines and cosines to ~2e-9 for
// float32 tensors, to a few ulp for float64).
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
//
// Everything the backward pass needs travels through the graph; the ops keep no state between runs:
//
//	acts = odeFwdOp(x, w)              [x(t₁) | log-det | kinetic | the stage inputs Y_i (| the k_i)]
//	out  = odeOutOp(x, w, acts)        [x(t₁) | log-det | kinetic], differentiable in x and w
//	∂    = odeGradOp(x, w, acts, ∂out) [∂x | ∂w] (built by out's SymDiff)
//
// The stage inputs take stages·|x| numbers (32·|x| for 8 RK4 steps); the velocities k_i are kept too
// only when the kinetic energy is differentiated. The fused ops are first-order only: the backward op's
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
	kinetic    bool // keep the k_i: the kinetic energy is differentiable
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
	per := 1
	if p.kinetic {
		per = 2
	}
	return p.outSize() + per*p.stages()*p.xSize()
}
func (p *odePlan) hstep() float64 { return (p.t1 - p.t0) / float64(p.steps) }

// stageTime is the time of stage i of step n.
func (p *odePlan) stageTime(n, i int) float64 {
	h := p.hstep()
	return p.t0 + float64(n)*h + p.tab.c[i]*h
}

func (p *odePlan) String() string {
	return fmt.Sprintf("%dx%dx%dx%d/f%v/odd%v/K%d/P%d/%d×%d/%g→%g/kin%v", p.b, p.c, p.h, p.w, p.freqs, p.odd, p.k, p.np,
		p.steps, len(p.tab.c), p.t0, p.t1, p.kinetic)
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
		kinetic: kinetic}, nil
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
	if xe, err = Narrow(out, 0, 0, n); err != nil {
		return nil, nil, nil, err
	}
	if xe, err = Reshape(xe, p.b, p.c, p.h, p.w); err != nil {
		return nil, nil, nil, err
	}
	if ld, err = Narrow(out, 0, n, p.b); err != nil {
		return nil, nil, nil, err
	}
	if p.kinetic {
		if kin, err = Narrow(out, 0, n+p.b, p.b); err != nil {
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
		res, _, o := newOut(true, []int{p.actsSize()})
		odeForward(p, in[0], in[1], o)
		return res, nil
	}
	in, err := floats[float64](op.String(), vals, sizes)
	if err != nil {
		return nil, err
	}
	res, o, _ := newOut(false, []int{p.actsSize()})
	odeForward(p, in[0], in[1], o)
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
		res, _, o := newOut(true, []int{n})
		copy(o, in[0][:n])
		return res, nil
	}
	in, err := floats[float64](op.String(), vals[2:], []int{p.actsSize()})
	if err != nil {
		return nil, err
	}
	res, o, _ := newOut(false, []int{n})
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
	dx, err := G.ApplyOp(odeSegOp{off: 0, n: p.xSize(), total: total, shape: []int{p.b, p.c, p.h, p.w}}, bw)
	if err != nil {
		return nil, err
	}
	dw, err := G.ApplyOp(odeSegOp{off: p.xSize(), n: p.wSize(), total: total, shape: []int{p.k, p.c, p.fc(), p.np}}, bw)
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
		res, _, o := newOut(true, []int{n})
		if err := odeBackward(p, in[1], in[2], in[3], o); err != nil {
			return nil, fmt.Errorf("layers: %s: %w", op, err)
		}
		return res, nil
	}
	in, err := floats[float64](op.String(), vals, sizes)
	if err != nil {
		return nil, err
	}
	res, o, _ := newOut(false, []int{n})
	if err := odeBackward(p, in[1], in[2], in[3], o); err != nil {
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
		res, _, o := newOut(true, op.shape)
		copy(o, in[0][op.off:op.off+op.n])
		return res, nil
	}
	in, err := floats[float64](op.String(), vals, []int{op.total})
	if err != nil {
		return nil, err
	}
	res, o, _ := newOut(false, op.shape)
	copy(o, in[0][op.off:op.off+op.n])
	return res, nil
}
func (op odeSegOp) ReturnsPtr() bool     { return true }
func (op odeSegOp) CallsExtern() bool    { return false }
func (op odeSegOp) OverwritesInput() int { return -1 }
func (op odeSegOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.odeseg|%d|%d|%d|%v", op.off, op.n, op.total, op.shape)
}
func (op odeSegOp) Hashcode() uint32     { return hash32(op) }
func (op odeSegOp) String() string       { return fmt.Sprintf("FusedODEGradSegment[%d:%d]", op.off, op.off+op.n) }
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
	harmonic bool         // freqs are 1, 2, …: sin kx, cos kx by angle addition
	fast     bool         // float32 tensors: the cheaper sincos
	feat     []float64    // (F·C, V) features h_j
	dfeat    []float64    // (F·C, V) h_j′
	ddfeat   []float64    // (F·C, V) h_j″ (backward)
	spec     []complex128 // (F·C, nh)
	vspec    []complex128 // (C, nh)
	plane    []float64    // (V)
}

func newODEWork[T float](p *odePlan, wp []T) *odeWork {
	v, fc := p.v(), p.fc()
	fft := newRealFFT2(p.h, p.w)
	nh := p.h * fft.wh
	var zero T
	_, is32 := any(zero).(float32)
	ow := &odeWork{p: p, fft: fft, nh: nh, fast: is32, harmonic: true,
		feat: make([]float64, fc*v), dfeat: make([]float64, fc*v), ddfeat: make([]float64, fc*v),
		spec: make([]complex128, fc*nh), vspec: make([]complex128, p.c*nh), plane: make([]float64, v)}
	for k, w := range p.freqs {
		ow.harmonic = ow.harmonic && w == float64(k+1)
	}
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

// features fills feat (and dfeat, and ddfeat when second) from the state y (C, V) of one sample.
func (ow *odeWork) features(y []float64, second bool) {
	p := ow.p
	v, n := p.v(), len(p.freqs)
	sincos := sincos64
	if ow.fast {
		sincos = sincos32
	}
	for c := 0; c < p.c; c++ {
		ys := y[c*v : (c+1)*v]
		plane := func(f int) int { return (f*p.c + c) * v }
		copy(ow.feat[plane(0):plane(0)+v], ys)
		d0 := ow.dfeat[plane(0) : plane(0)+v]
		for i := range d0 {
			d0[i] = 1
		}
		if second {
			clear(ow.ddfeat[plane(0) : plane(0)+v])
		}
		for i, x := range ys {
			var s1, c1, s, c float64
			if ow.harmonic {
				s1, c1 = sincos(x)
			}
			for k, w := range p.freqs {
				switch {
				case !ow.harmonic:
					s, c = sincos(w * x)
				case k == 0:
					s, c = s1, c1
				default: // sin(k+1)x = sin kx cos x + cos kx sin x; cos(k+1)x = cos kx cos x − sin kx sin x
					s, c = s*c1+c*s1, c*c1-s*s1
				}
				ps := plane(1+k) + i
				ow.feat[ps], ow.dfeat[ps] = s, w*c
				if second {
					ow.ddfeat[ps] = -w * w * s
				}
				if !p.odd {
					pc := plane(1+n+k) + i
					ow.feat[pc], ow.dfeat[pc] = c, -w*s
					if second {
						ow.ddfeat[pc] = -w * w * c
					}
				}
			}
		}
	}
}

// field evaluates v (C, V) and div v at the state y (C, V) of one sample, stage si.
func (ow *odeWork) field(y []float64, si int, v []float64) (div float64) {
	p := ow.p
	nv, fc, nh := p.v(), p.fc(), ow.nh
	ow.features(y, false)
	for j := 0; j < fc; j++ {
		ow.fft.forward(ow.feat[j*nv:(j+1)*nv], ow.spec[j*nh:(j+1)*nh])
	}
	wt := ow.what[si*p.c*fc*nh:]
	for o := 0; o < p.c; o++ {
		dst := ow.vspec[o*nh : (o+1)*nh]
		clear(dst)
		for j := 0; j < fc; j++ {
			cmulAdd(dst, wt[(o*fc+j)*nh:(o*fc+j+1)*nh], ow.spec[j*nh:(j+1)*nh])
		}
		ow.fft.inverse(dst, v[o*nv:(o+1)*nv])
	}
	scale := 1 / float64(nv)
	for i := range v[:p.c*nv] {
		v[i] *= scale
	}
	for o := 0; o < p.c; o++ {
		for f := 0; f < p.nf; f++ {
			var s float64
			for _, d := range ow.dfeat[(f*p.c+o)*nv : (f*p.c+o+1)*nv] {
				s += d
			}
			div += ow.centre[(si*p.c+o)*p.nf+f] * s
		}
	}
	return div
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

// odeForward integrates every sample and fills the activations.
func odeForward[T float](p *odePlan, x, wp, acts []T) {
	ow := newODEWork(p, wp)
	cv, ns, S := p.c*p.v(), p.stages(), len(p.tab.c)
	h := p.hstep()
	xe, ld, kin := acts[:p.xSize()], acts[p.xSize():p.xSize()+p.b], acts[p.xSize()+p.b:p.outSize()]
	states := acts[p.outSize():]
	cur := make([]float64, cv)
	y := make([]float64, cv)
	ks := make([]float64, S*cv)
	dx := make([]float64, cv)
	for b := 0; b < p.b; b++ {
		for i, e := range x[b*cv : (b+1)*cv] {
			cur[i] = float64(e)
		}
		var l, kn float64
		for n := 0; n < p.steps; n++ {
			clear(dx)
			var dl, dk float64
			for i := 0; i < S; i++ {
				copy(y, cur)
				for j, a := range p.tab.a[i] {
					if a != 0 {
						axpy(y, ks[j*cv:(j+1)*cv], h*a)
					}
				}
				si := n*S + i
				st := states[(b*ns+si)*cv : (b*ns+si+1)*cv]
				for e, val := range y {
					st[e] = T(val)
				}
				k := ks[i*cv : (i+1)*cv]
				d := ow.field(y, si, k)
				if p.kinetic {
					kst := states[(p.b*ns+b*ns+si)*cv : (p.b*ns+b*ns+si+1)*cv]
					for e, val := range k {
						kst[e] = T(val)
					}
				}
				if bi := p.tab.b[i]; bi != 0 {
					axpy(dx, k, h*bi)
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
	states := acts[p.outSize():]
	if !p.kinetic {
		for b, g := range gkin {
			if g != 0 {
				return fmt.Errorf("sample %d: the kinetic energy has a gradient but was not kept differentiable", b)
			}
		}
	}
	oj := p.c * fc
	acc := make([]complex128, ns*oj*nh) // per stage: Σ_samples ĝ_o conj ĥ_j
	dacc := make([]float64, ns*p.c*p.nf) // per stage: Σ_samples d̄ Σ_x h_f′(Y_o)
	xbar := make([]float64, cv)
	ybar := make([]float64, S*cv)
	kbar := make([]float64, cv)
	y := make([]float64, cv)
	kv := make([]float64, cv)
	gspec := make([]complex128, p.c*nh)
	hb := make([]float64, nv)
	for b := 0; b < p.b; b++ {
		for i, e := range gx[b*cv : (b+1)*cv] {
			xbar[i] = float64(e)
		}
		lbar, kbarE := float64(gld[b]), float64(gkin[b])
		for n := p.steps - 1; n >= 0; n-- {
			for i := S - 1; i >= 0; i-- {
				si := n*S + i
				// k̄_i = h b_i X̄' + 2|h| b_i κ̄ k_i + h Σ_{j>i} a_ji Ȳ_j
				clear(kbar)
				bi := p.tab.b[i]
				if bi != 0 {
					axpy(kbar, xbar, h*bi)
					if kbarE != 0 {
						ks := states[(p.b*ns+b*ns+si)*cv : (p.b*ns+b*ns+si+1)*cv]
						for e, val := range ks {
							kv[e] = float64(val)
						}
						axpy(kbar, kv, 2*math.Abs(h)*bi*kbarE)
					}
				}
				for j := i + 1; j < S; j++ {
					if a := p.tab.a[j][i]; a != 0 {
						axpy(kbar, ybar[j*cv:(j+1)*cv], h*a)
					}
				}
				dbar := h * bi * lbar
				yb := ybar[i*cv : (i+1)*cv]
				clear(yb)
				for e, val := range states[(b*ns+si)*cv : (b*ns+si+1)*cv] {
					y[e] = float64(val)
				}
				ow.features(y, dbar != 0)
				// the field's vector-Jacobian product at Y_i
				for o := 0; o < p.c; o++ {
					ow.fft.forward(kbar[o*nv:(o+1)*nv], gspec[o*nh:(o+1)*nh])
				}
				wt := ow.what[si*oj*nh:]
				ac := acc[si*oj*nh:]
				scale := 1 / float64(nv)
				for j := 0; j < fc; j++ {
					hs := ow.spec[j*nh : (j+1)*nh]
					ow.fft.forward(ow.feat[j*nv:(j+1)*nv], hs)
					for o := 0; o < p.c; o++ {
						cmulConjAdd(ac[(o*fc+j)*nh:(o*fc+j+1)*nh], hs, gspec[o*nh:(o+1)*nh])
					}
					// h̄_j = IDFT(Σ_o conj Ŵ_{o,j} ĝ_o), then Ȳ_c += h̄_j h_f′(Y_c) for j = (f, c)
					hbs := ow.vspec[:nh]
					clear(hbs)
					for o := 0; o < p.c; o++ {
						cmulConjAdd(hbs, wt[(o*fc+j)*nh:(o*fc+j+1)*nh], gspec[o*nh:(o+1)*nh])
					}
					ow.fft.inverse(hbs, hb)
					c := j % p.c
					dst := yb[c*nv : (c+1)*nv]
					dh := ow.dfeat[j*nv : (j+1)*nv]
					for e, g := range hb {
						dst[e] += scale * g * dh[e]
					}
				}
				if dbar != 0 {
					for c := 0; c < p.c; c++ {
						dst := yb[c*nv : (c+1)*nv]
						for f := 0; f < p.nf; f++ {
							j := f*p.c + c
							wc := dbar * ow.centre[(si*p.c+c)*p.nf+f]
							var s float64
							for e, d2 := range ow.ddfeat[j*nv : (j+1)*nv] {
								dst[e] += wc * d2
							}
							for _, d := range ow.dfeat[j*nv : (j+1)*nv] {
								s += d
							}
							dacc[(si*p.c+c)*p.nf+f] += dbar * s
						}
					}
				}
			}
			for i := 0; i < S; i++ {
				axpy(xbar, ybar[i*cv:(i+1)*cv], 1)
			}
		}
		for i, val := range xbar {
			out[b*cv+i] = T(val)
		}
	}
	// ∂w[k] = Σ_stages b_k(t_i) (the inverse transform of acc_i / N, summed over each parameter's offsets),
	// plus the centre taps' divergence terms.
	dw := out[p.xSize():]
	spec := make([]complex128, oj*nh)
	grad := make([]float64, nv)
	scale := 1 / float64(nv)
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
