package layers

import (
	"fmt"
	"hash"
	"math"
	"unsafe"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The fused RG-Flow block bijector: a stack of affine couplings whose conditioner is one residual MLP
// (ResMLP, Joint) giving s and t, as Gorgonia ops with a hand-written backward pass. The layout and the
// life of the activations are those of the fused NeuralRG stack (nvpfused.go):
//
//	acts = resOp(x, params…)           (rows, n): [y; log-det; activations; scratch]
//	out  = resOutOp(x, params…, acts)  (dim+1, n): the first dim+1 rows of acts
//	∂    = resGradOp(params…, acts, ∂out)          (the gradient of out, built by out's SymDiff)
//
// Each coupling computes, on the columns of a block of columns at a time (feature-major, every column on
// its own),
//
//	h = W_in·v + b_in;  per residual block: h ← (h + W₁·swish(W₀·swish(h) + b₀) + b₁)/√2;
//	[s̃; t] = W_out·swish(h) + b_out;  s = scale ⊙ tanh(s̃);  u' = u ⊙ e^{s} + t  (inverse: (u − t) ⊙ e^{−s}),
//
// with each W either a plain weight "w" or, with weight normalisation, diag(g/‖v_row‖)·v computed from the
// parameters "v" and "g" at the start of every forward and backward run (cheap: a few thousand weights). For
// every swish the forward pass stores the activation a = swish(z) and its derivative swish'(z); the backward
// pass needs nothing else from the hidden layers (the residual sums need no values). The op writes into a
// buffer of its own workspace (leasePool), recycled after every reader of a run has read it, and the unpacked
// output and the gradients come from the scope's Arena when it has one, so a training step allocates
// nothing per step in the steady state. The fused op is first-order only:
// its backward node has no derivative of its own, and Grad refuses a cost that depends on it.

// resFusable reports whether the stack runs as the fused residual-MLP op.
func (r *RealNVP) resFusable() bool {
	return !r.Unfused && r.Joint && FusedResKernel(r.S)
}

// FusedResKernel reports whether a RealNVP whose one joint conditioner is s (Joint set) has a fused kernel: an
// unconditioned ResMLP (a Conditioned one runs on the graph).
func FusedResKernel(s Conditioner) bool {
	m, ok := s.(ResMLP)
	return ok && m.Width > 0 && m.Blocks >= 0
}

// HasFusedKernel reports whether a RealNVP with conditioners s, t (t unused when joint) runs fused unless
// Unfused is set: ELU MLPs of equal widths (separate s and t) or a ResMLP (joint).
func HasFusedKernel(s, t Conditioner, joint bool) bool {
	if joint {
		return FusedResKernel(s)
	}
	return FusedKernel(s, t)
}

// resLayer is one linear map of a coupling's net: the indices (among the op's parameter inputs, x
// excluded) of its weight ("w", or "v" with weight norm), gain ("g"; −1 without) and bias, and its shape.
type resLayer struct {
	w, g, b int
	out, in int
}

// resCoupling is one coupling of a fused plan.
type resCoupling struct {
	v, u   []int      // conditioning and transformed rows
	layers []resLayer // in, (res<b>/l0, res<b>/l1)…, out
	scale  int        // index of the scale parameter
}

// resRows is where one coupling's activations sit in the activation tensor (row offsets).
type resRows struct {
	v, uIn, th, es int // th is followed by the t rows: [tanh s̃; t] is the output layer's (2|u|, n) result
	a, d           []int
}

// resPlan is the static description of a fused stack and of its activation tensor's layout. Its address
// identifies an op instance in Gorgonia's hashing, so that two stacks with equal shapes are never merged.
type resPlan struct {
	dim, n     int
	chunk      int // columns per pass (0: resChunkBytes of one row)
	inverse    bool
	width      int
	blocks     int
	weightNorm bool
	couplings  []resCoupling
	shapes     [][]int   // parameter shapes in input order (after x)
	rows       []resRows // per coupling, in execution order
	scratch    int       // first scratch row
	total      int       // rows of the activation tensor
	maxU, maxV int
	ar         *Arena // where the unpacked outputs and gradients come from (nil: allocated afresh)
}

// layout places y (dim rows), the log-det (1 row), every coupling's activations and the scratch rows (g: dim;
// s1, s2, s3: width each; go: 2·maxU; gv: maxV; ones: 1) in one (total, n) tensor.
func (p *resPlan) layout() {
	row := p.dim + 1
	take := func(k int) int { r := row; row += k; return r }
	p.rows = nil
	for _, ci := range p.order() {
		cp := p.couplings[ci]
		du := len(cp.u)
		var r resRows
		r.v, r.uIn, r.th = take(len(cp.v)), take(du), take(2*du)
		r.es = take(du)
		for i := 0; i < 2*p.blocks+1; i++ {
			r.a = append(r.a, take(p.width))
			r.d = append(r.d, take(p.width))
		}
		p.maxU, p.maxV = max(p.maxU, du), max(p.maxV, len(cp.v))
		p.rows = append(p.rows, r)
	}
	p.scratch = row
	p.total = row + p.dim + 3*p.width + 2*p.maxU + p.maxV + 1
}

// order is the execution order of the couplings.
func (p *resPlan) order() []int {
	k := len(p.couplings)
	o := make([]int, k)
	for i := range o {
		o[i] = i
		if p.inverse {
			o[i] = k - 1 - i
		}
	}
	return o
}

// weightSize is the number of weights (w or v) of all layers, the size of the effective-weight workspace.
func (p *resPlan) weightSize() int {
	n := 0
	for _, cp := range p.couplings {
		for _, l := range cp.layers {
			n += l.out * l.in
		}
	}
	return n
}

// resLinear adds the parameters of one linear map under ls, exactly as Linear names and initialises them.
func resLinear(ls *Scope, inputs []*G.Node, shapes [][]int, in, out int, zeroInit, weightNorm bool) ([]*G.Node, [][]int, resLayer) {
	l := resLayer{g: -1, out: out, in: in}
	next := func(n *G.Node, shape []int) int {
		inputs = append(inputs, n)
		shapes = append(shapes, shape)
		return len(inputs) - 2 // index among the parameters (inputs[0] is x)
	}
	if weightNorm {
		gInit := Constant(1)
		if zeroInit {
			gInit = Zeros
		}
		l.w = next(ls.Param("v", []int{out, in}, GlorotUniform(1)), []int{out, in})
		l.g = next(ls.Param("g", []int{out}, gInit), []int{out})
	} else {
		init := GlorotUniform(1)
		if zeroInit {
			init = Zeros
		}
		l.w = next(ls.Param("w", []int{out, in}, init), []int{out, in})
	}
	l.b = next(ls.Param("b", []int{out}, Zeros), []int{out})
	return inputs, shapes, l
}

// applyResFused builds the fused forward or inverse nodes on x (dim, n) and returns the output and the
// per-column log-det.
func (r *RealNVP) applyResFused(s *Scope, x *G.Node, inverse bool) (*G.Node, *G.Node, error) {
	n := x.Shape()[1]
	m := r.S.(ResMLP)
	plan := &resPlan{dim: r.Dim, n: n, inverse: inverse, chunk: r.chunk, width: m.Width, blocks: m.Blocks, weightNorm: m.WeightNorm,
		ar: s.Arena()}
	inputs := []*G.Node{x}
	var shapes [][]int
	for c := 0; c < r.Couplings; c++ {
		sp := r.Splits[c/2]
		v, u := sp.A, sp.B
		if c%2 == 1 {
			v, u = sp.B, sp.A
		}
		cp := resCoupling{v: v, u: u}
		cs := s.Sub(fmt.Sprintf("coupling%d", c))
		ns := cs.Sub("s")
		var l resLayer
		inputs, shapes, l = resLinear(ns.Sub("in"), inputs, shapes, len(v), m.Width, false, m.WeightNorm)
		cp.layers = append(cp.layers, l)
		for b := 0; b < m.Blocks; b++ {
			bs := ns.Sub(fmt.Sprintf("res%d", b))
			for _, name := range []string{"l0", "l1"} {
				inputs, shapes, l = resLinear(bs.Sub(name), inputs, shapes, m.Width, m.Width, false, m.WeightNorm)
				cp.layers = append(cp.layers, l)
			}
		}
		inputs, shapes, l = resLinear(ns.Sub("out"), inputs, shapes, m.Width, 2*len(u), m.ZeroLast, m.WeightNorm)
		cp.layers = append(cp.layers, l)
		inputs = append(inputs, cs.Param("scale", []int{len(u)}, Zeros))
		shapes = append(shapes, []int{len(u)})
		cp.scale = len(inputs) - 2
		plan.couplings = append(plan.couplings, cp)
	}
	plan.shapes = shapes
	plan.layout()
	fwd := &resOp{plan: plan, pool: &leasePool{readers: 1}}
	acts, err := G.ApplyOp(fwd, inputs...)
	if err != nil {
		return nil, nil, fmt.Errorf("layers: fused residual RealNVP %s: %w", s.Prefix(), err)
	}
	out, err := G.ApplyOp(&resOutOp{fwd: fwd}, append(inputs, acts)...)
	if err != nil {
		return nil, nil, fmt.Errorf("layers: fused residual RealNVP %s: %w", s.Prefix(), err)
	}
	y, err := narrowIn(plan.ar, out, 0, 0, r.Dim)
	if err != nil {
		return nil, nil, err
	}
	ldRow, err := narrowIn(plan.ar, out, 0, r.Dim, 1)
	if err != nil {
		return nil, nil, err
	}
	ld, err := reshapeIn(plan.ar, ldRow, n)
	return y, ld, err
}

// resGet returns a free workspace of plan for T from the op's lease pool, or a new one.
func resGet[T float](p *leasePool, plan *resPlan) *resWork[T] {
	if w, ok := takeFree[*resWork[T]](p); ok {
		return w
	}
	return newResWork[T](plan)
}

// workOf checks that v is an activation tensor of op's plan that is still leased and returns its workspace.
// who names the reader in errors (formatted only then).
func (op *resOp) workOf(who fmt.Stringer, v G.Value) (*tensor.Dense, any, error) {
	t, ok := v.(*tensor.Dense)
	if !ok || t.Shape().Dims() != 2 || t.Shape()[0] != op.plan.total || t.Shape()[1] != op.plan.n {
		return nil, nil, fmt.Errorf("layers: %s: the activations input is %T %v, want a (%d, %d) tensor", who, v, shapeOfValue(v), op.plan.total, op.plan.n)
	}
	ws := op.pool.leased(t)
	if ws == nil {
		return nil, nil, fmt.Errorf("layers: %s: these activations were already released (read once per reader and forward run; was the op run by hand, or by a machine over part of its graph?)", who)
	}
	return t, ws, nil
}

// resOp computes the stack's activation tensor (plan.total, n): [y; log-det; activations; scratch].
type resOp struct {
	plan *resPlan
	pool *leasePool
}

func (op *resOp) Arity() int { return 1 + len(op.plan.shapes) }
func (op *resOp) Type() hm.Type {
	in := []int{2}
	for _, s := range op.plan.shapes {
		in = append(in, len(s))
	}
	return fnType(2, in...)
}
func (op *resOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes(op.String(), op.Arity(), ds)
	if err != nil {
		return nil, err
	}
	if err := checkShape(op.String(), 0, s[0], []int{op.plan.dim, op.plan.n}); err != nil {
		return nil, err
	}
	for i, want := range op.plan.shapes {
		if err := checkShape(op.String(), i+1, s[i+1], want); err != nil {
			return nil, err
		}
	}
	return tensor.Shape{op.plan.total, op.plan.n}, nil
}
func (op *resOp) Do(vals ...G.Value) (G.Value, error) {
	d, err := argData("FusedResRealNVP", op.Arity(), vals)
	if err != nil {
		return nil, err
	}
	var t *tensor.Dense
	var ws any
	switch x := d[0].(type) {
	case []float32:
		w := resGet[float32](op.pool, op.plan)
		w.forward(x, params[float32](d[1:]))
		t, ws = tensor.New(tensor.WithShape(op.plan.total, op.plan.n), tensor.WithBacking(w.buf)), w
	case []float64:
		w := resGet[float64](op.pool, op.plan)
		w.forward(x, params[float64](d[1:]))
		t, ws = tensor.New(tensor.WithShape(op.plan.total, op.plan.n), tensor.WithBacking(w.buf)), w
	}
	op.pool.lease(t, ws)
	return t, nil
}
func (op *resOp) ReturnsPtr() bool     { return true }
func (op *resOp) CallsExtern() bool    { return false }
func (op *resOp) OverwritesInput() int { return -1 }
func (op *resOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.resnvp|%p|%d|%d|%v", op.plan, op.plan.dim, op.plan.n, op.plan.inverse)
}
func (op *resOp) Hashcode() uint32 { return hash32(op) }
func (op *resOp) String() string {
	dir := "fwd"
	if op.plan.inverse {
		dir = "inv"
	}
	return fmt.Sprintf("FusedResRealNVP(%s,%d couplings)", dir, len(op.plan.couplings))
}
func (op *resOp) DiffWRT(n int) []bool { return make([]bool, n) }
func (op *resOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("layers: %s: the activation tensor is not differentiable (differentiate its unpacked output)", op)
}

// resOutOp unpacks [y; log-det] (dim+1, n) from the activation tensor (its last input). Its other inputs
// are the stack's x and parameters, with respect to which it is differentiable.
type resOutOp struct{ fwd *resOp }

func (op *resOutOp) Arity() int { return op.fwd.Arity() + 1 }
func (op *resOutOp) Type() hm.Type {
	in := []int{2}
	for _, s := range op.fwd.plan.shapes {
		in = append(in, len(s))
	}
	return fnType(2, append(in, 2)...)
}
func (op *resOutOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.fwd.plan.dim + 1, op.fwd.plan.n}, nil
}
func (op *resOutOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != op.Arity() {
		return nil, fmt.Errorf("layers: %s: got %d inputs, want %d", op, len(vals), op.Arity())
	}
	t, ws, err := op.fwd.workOf(op, vals[len(vals)-1])
	if err != nil {
		return nil, err
	}
	p := op.fwd.plan
	out := newValueIn(p.ar, t.Dtype(), []int{p.dim + 1, p.n})
	switch w := ws.(type) {
	case *resWork[float32]:
		copy(outData(out).([]float32), w.buf[:(p.dim+1)*p.n])
	case *resWork[float64]:
		copy(outData(out).([]float64), w.buf[:(p.dim+1)*p.n])
	}
	op.fwd.pool.checkIn(t)
	return out, nil
}
func (op *resOutOp) ReturnsPtr() bool     { return true }
func (op *resOutOp) CallsExtern() bool    { return false }
func (op *resOutOp) OverwritesInput() int { return -1 }
func (op *resOutOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.resnvpout|%p", op.fwd.plan)
}
func (op *resOutOp) Hashcode() uint32 { return hash32(op) }
func (op *resOutOp) String() string   { return "Unpack" + op.fwd.String() }
func (op *resOutOp) DiffWRT(n int) []bool {
	w := make([]bool, n)
	for i := range w {
		w[i] = i < n-1
	}
	return w
}
func (op *resOutOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	pool := op.fwd.pool
	pool.mu.Lock()
	pool.readers++
	serial := pool.readers
	pool.mu.Unlock()
	acts := in[len(in)-1]
	bw, err := G.ApplyOp(&resGradOp{fwd: op.fwd, serial: serial}, append(append(G.Nodes(nil), in[1:len(in)-1]...), acts, grad)...)
	if err != nil {
		return nil, err
	}
	p := op.fwd.plan
	grads := make(G.Nodes, len(in)) // the last (acts) stays nil: not differentiable
	off := 0
	shapes := append([][]int{{p.dim, p.n}}, p.shapes...)
	for i, sh := range shapes {
		if grads[i], err = G.ApplyOp(resSegmentOp{plan: p, off: off, shape: sh}, bw); err != nil {
			return nil, err
		}
		off += prod(sh)
	}
	return grads, nil
}

func (p *resPlan) packedGradSize() int {
	n := p.dim * p.n
	for _, s := range p.shapes {
		n += prod(s)
	}
	return n
}

// resGradOp computes the gradients of the fused stack with respect to x and every parameter, packed into
// one vector in input order, from the parameters, the activation tensor of the forward run and the
// gradient of the unpacked output.
type resGradOp struct {
	fwd    *resOp
	serial int // distinguishes the backward ops of several Grad calls
}

func (op *resGradOp) Arity() int { return len(op.fwd.plan.shapes) + 2 }
func (op *resGradOp) Type() hm.Type {
	var in []int
	for _, s := range op.fwd.plan.shapes {
		in = append(in, len(s))
	}
	return fnType(1, append(in, 2, 2)...)
}
func (op *resGradOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.fwd.plan.packedGradSize()}, nil
}
func (op *resGradOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != op.Arity() {
		return nil, fmt.Errorf("layers: %s: got %d inputs, want %d", op, len(vals), op.Arity())
	}
	nps := len(op.fwd.plan.shapes)
	t, ws, err := op.fwd.workOf(op, vals[nps])
	if err != nil {
		return nil, err
	}
	d, err := argData("∇FusedResRealNVP", op.Arity(), vals)
	if err != nil {
		return nil, err
	}
	p := op.fwd.plan
	out := newValueIn(p.ar, dtypeOf(d[0]), []int{p.packedGradSize()})
	switch w := ws.(type) {
	case *resWork[float32]:
		w.backward(params[float32](d[:nps]), d[nps+1].([]float32), outData(out).([]float32))
	case *resWork[float64]:
		w.backward(params[float64](d[:nps]), d[nps+1].([]float64), outData(out).([]float64))
	}
	op.fwd.pool.checkIn(t)
	return out, nil
}
func (op *resGradOp) ReturnsPtr() bool     { return true }
func (op *resGradOp) CallsExtern() bool    { return false }
func (op *resGradOp) OverwritesInput() int { return -1 }
func (op *resGradOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.resnvpgrad|%p|%d", op.fwd.plan, op.serial)
}
func (op *resGradOp) Hashcode() uint32     { return hash32(op) }
func (op *resGradOp) String() string       { return "∇" + op.fwd.String() }
func (op *resGradOp) DiffWRT(n int) []bool { return make([]bool, n) }
func (op *resGradOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("layers: the fused residual-MLP RealNVP is first-order only; build the model with Unfused for higher derivatives")
}

// resSegmentOp copies out[off : off+prod(shape)] of a packed gradient into a tensor of the given shape.
type resSegmentOp struct {
	plan  *resPlan
	off   int
	shape []int
}

func (op resSegmentOp) Arity() int    { return 1 }
func (op resSegmentOp) Type() hm.Type { return fnType(len(op.shape), 1) }
func (op resSegmentOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape(append([]int(nil), op.shape...)), nil
}
func (op resSegmentOp) Do(vals ...G.Value) (G.Value, error) {
	d, err := argData("ResSegment", 1, vals) // a constant name: formatting String() would cost every run
	if err != nil {
		return nil, err
	}
	out := newValueIn(op.plan.ar, dtypeOf(d[0]), op.shape)
	n := prod(op.shape)
	switch x := d[0].(type) {
	case []float32:
		copy(outData(out).([]float32), x[op.off:op.off+n])
	case []float64:
		copy(outData(out).([]float64), x[op.off:op.off+n])
	}
	return out, nil
}
func (op resSegmentOp) ReturnsPtr() bool     { return true }
func (op resSegmentOp) CallsExtern() bool    { return false }
func (op resSegmentOp) OverwritesInput() int { return -1 }
func (op resSegmentOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.ressegment|%p|%d|%v", op.plan, op.off, op.shape)
}
func (op resSegmentOp) Hashcode() uint32     { return hash32(op) }
func (op resSegmentOp) String() string       { return fmt.Sprintf("ResSegment(%d,%v)", op.off, op.shape) }
func (op resSegmentOp) DiffWRT(n int) []bool { return make([]bool, n) }
func (op resSegmentOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("layers: ResSegment is not differentiable")
}

// resWork is one workspace of a fused residual stack: the activation tensor's buffer and views of its rows,
// and the effective weights.
type resWork[T float] struct {
	p     *resPlan
	buf   []T // the whole (total, n) tensor
	y, ld []T
	// per coupling, in execution order
	v, uIn, th, tOut, es [][]T // th and tOut are the two halves of the output layer's rows
	thT                  [][]T // [th; tOut]: the output layer's (2|u|, n) result
	a, d                 [][][]T
	// scratch rows
	g, s1, s2, s3, gOut, gv, ones []T
	// weights: the effective weight of every layer (plan order: coupling, layer), and with weight norm the
	// gradients with respect to those effective weights (accumulated over the column blocks)
	w, gw [][][]T
	wBuf  []T
	gwBuf []T
	// with weight norm, ‖v_row‖ of every layer's rows as the forward run computed them (the backward pass's
	// gradient of the normalisation reuses them)
	nrm [][][]T
}

func newResWork[T float](p *resPlan) *resWork[T] {
	n := p.n
	buf := make([]T, p.total*n)
	rows := func(r, k int) []T { return buf[r*n : (r+k)*n : (r+k)*n] }
	a := &resWork[T]{p: p, buf: buf, y: rows(0, p.dim), ld: rows(p.dim, 1)}
	for k, ci := range p.order() {
		cp, r := p.couplings[ci], p.rows[k]
		du := len(cp.u)
		a.v = append(a.v, rows(r.v, len(cp.v)))
		a.uIn = append(a.uIn, rows(r.uIn, du))
		a.thT = append(a.thT, rows(r.th, 2*du))
		a.th = append(a.th, rows(r.th, du))
		a.tOut = append(a.tOut, rows(r.th+du, du))
		a.es = append(a.es, rows(r.es, du))
		var as, ds [][]T
		for i := range r.a {
			as = append(as, rows(r.a[i], p.width))
			ds = append(ds, rows(r.d[i], p.width))
		}
		a.a = append(a.a, as)
		a.d = append(a.d, ds)
	}
	row := p.scratch
	next := func(k int) []T { s := rows(row, k); row += k; return s }
	a.g = next(p.dim)
	a.s1, a.s2, a.s3 = next(p.width), next(p.width), next(p.width)
	a.gOut, a.gv, a.ones = next(2*p.maxU), next(p.maxV), next(1)
	a.wBuf = make([]T, p.weightSize())
	if p.weightNorm {
		a.gwBuf = make([]T, p.weightSize())
	}
	off := 0
	for _, cp := range p.couplings {
		var ws, gws, nrms [][]T
		for _, l := range cp.layers {
			sz := l.out * l.in
			ws = append(ws, a.wBuf[off:off+sz:off+sz])
			if p.weightNorm {
				gws = append(gws, a.gwBuf[off:off+sz:off+sz])
				nrms = append(nrms, make([]T, l.out))
			}
			off += sz
		}
		a.w = append(a.w, ws)
		a.gw = append(a.gw, gws)
		a.nrm = append(a.nrm, nrms)
	}
	return a
}

// effectiveWeights sets every layer's weight: the parameter itself, or diag(g/‖v_row‖)·v with weight norm.
func (c *resWork[T]) effectiveWeights(ps [][]T) {
	for ci, cp := range c.p.couplings {
		for li, l := range cp.layers {
			w := c.w[ci][li]
			if !c.p.weightNorm {
				copy(w, ps[l.w])
				continue
			}
			weightNormRows(w, c.nrm[ci][li], ps[l.w], ps[l.g], l.out, l.in)
		}
	}
}

// backwardWeights turns the forward run's effective weights, which the workspace still holds (it is leased
// from the forward op to the backward op, and the parameters do not change in between), into the backward
// pass's: the second layer of every residual block scaled by 1/√2, the factor of the residual sum (see
// backwardCols). The same bits as computing them afresh and scaling, at a fraction of the cost: with
// weight norm the rows' norms are not taken again, here or in the normalisation's gradient (which reads
// them from nrm). On the rgflow-small preset (243,648 weights) that halved effectiveWeights' share of a
// two-worker image step's CPU profile (0.65 → 0.36 s over 300 steps, about 1 ms per step).
func (c *resWork[T]) backwardWeights() {
	invSqrt2 := T(1 / math.Sqrt2)
	for ci, cp := range c.p.couplings {
		for li := range cp.layers {
			if li > 0 && li < len(cp.layers)-1 && li%2 == 0 {
				w := c.w[ci][li]
				for j := range w {
					w[j] *= invSqrt2
				}
			}
		}
	}
}

// resChunkBytes is how much of one row the fused kernel processes per pass: every coupling of the stack runs
// on a block of columns before the next block starts, so that a hidden layer's (width, block) input stays in
// the core's cache while the product reads it once per four output rows.
const resChunkBytes = 4096

func resChunkCols[T float](p *resPlan) int {
	if p.chunk > 0 {
		return p.chunk
	}
	var z T
	return resChunkBytes / int(unsafe.Sizeof(z))
}

// swishWithGrad sets a = swish(z) = z·σ(z) and d = swish'(z) = σ(z)·(1 + z·(1 − σ(z))) on the columns
// [lo, hi) of rows (width, n) matrices.
func swishWithGrad[T float](a, d, z []T, rows, n, lo, hi int) {
	for r := 0; r < rows; r++ {
		zr := z[r*n+lo : r*n+hi]
		ar, dr := a[r*n+lo:r*n+hi], d[r*n+lo:r*n+hi]
		if z32, ok := any(zr).([]float32); ok {
			// One exp per element in the vector kernel (the bits of the Swish op's kernels); the remainder as
			// the Swish op computes it.
			a32, d32 := any(ar).([]float32), any(dr).([]float32)
			k := swishBothVector(a32, d32, z32)
			applyAct32(a32[k:], z32[k:], actSwish)
			applyAct32(d32[k:], z32[k:], actSwishD1)
			continue
		}
		// float64: e^{−|z|} by the vector exp, then σ = 1/(1+e) for z ≥ 0 and e/(1+e) below.
		for j, v := range zr {
			dr[j] = T(-math.Abs(float64(v)))
		}
		expInPlace(dr)
		ar, dr = ar[:len(zr)], dr[:len(zr)]
		for j, v := range zr {
			e := dr[j]
			s := 1 / (1 + e)
			if v < 0 {
				s = e * s
			}
			ar[j] = v * s
			dr[j] = s * (1 + v*(1-s))
		}
	}
}

// mulABtCols4x4 accumulates C (m×k) += A[:, lo:hi]·B[:, lo:hi]ᵀ for A (m×ld), B (k×ld), C row-major (m×k):
// the weight gradient of a layer from its output gradient A and its input B. Where the CPU has the kernel it
// takes 4×4 blocks of C per pass over four rows of A and four of B (each load serves four products, where
// mulABtCols' four dot products per pass load A once per four rows of B); the rest as mulABtCols.
func mulABtCols4x4[T float](m, k int, a, b, c []T, ld, lo, hi int) {
	i := 0
	if k >= 4 && hi > lo {
		var out [16]T
	rows:
		for ; i+4 <= m; i += 4 {
			j := 0
			for ; j+4 <= k; j += 4 {
				if !dot4x4Vec(a[i*ld+lo:], ld, b[j*ld+lo:], ld, hi-lo, &out) {
					break rows
				}
				for r := 0; r < 4; r++ {
					cr := c[(i+r)*k+j : (i+r)*k+j+4]
					for q := range cr {
						cr[q] += out[4*r+q]
					}
				}
			}
			if j < k {
				mulABtColsStrided(4, k-j, a[i*ld:], b[j*ld:], c[i*k+j:], k, 1, ld, lo, hi)
			}
		}
	}
	if i < m {
		mulABtColsStrided(m-i, k, a[i*ld:], b, c[i*k:], k, 1, ld, lo, hi)
	}
}

// mulRowsInPlace multiplies the columns [lo, hi) of rows (rows, n) of g by those of d.
func mulRowsInPlace[T float](g, d []T, rows, n, lo, hi int) {
	for r := 0; r < rows; r++ {
		gr, dr := g[r*n+lo:r*n+hi], d[r*n+lo:r*n+hi]
		k := mulVector(gr, dr)
		gr, dr = gr[k:], dr[k:len(gr)]
		for j := range gr {
			gr[j] *= dr[j]
		}
	}
}

// addScaleRows sets h = (h + f)·s on the columns [lo, hi) of rows (rows, n).
func addScaleRows[T float](h, f []T, s T, rows, n, lo, hi int) {
	for r := 0; r < rows; r++ {
		hr, fr := h[r*n+lo:r*n+hi], f[r*n+lo:r*n+hi]
		k := addScaleVector(hr, fr, s)
		hr, fr = hr[k:], fr[k:len(hr)]
		for j := range hr {
			hr[j] = (hr[j] + fr[j]) * s
		}
	}
}

// scaleAddMulRows sets x = x·s + y⊙z on the columns [lo, hi) of rows (rows, n).
func scaleAddMulRows[T float](x, y, z []T, s T, rows, n, lo, hi int) {
	for r := 0; r < rows; r++ {
		xr, yr, zr := x[r*n+lo:r*n+hi], y[r*n+lo:r*n+hi], z[r*n+lo:r*n+hi]
		k := scaleAddMulVector(xr, yr, zr, s)
		xr, yr, zr = xr[k:], yr[k:len(xr)], zr[k:len(xr)]
		for j := range xr {
			xr[j] = T(xr[j]*s) + T(yr[j]*zr[j]) // two roundings each, as the vector kernel
		}
	}
}

// forward runs the stack on x (dim, n), filling y, the log-det and the activations, one block of columns at
// a time.
func (c *resWork[T]) forward(x []T, ps [][]T) {
	c.effectiveWeights(ps)
	p, n := c.p, c.p.n
	step := resChunkCols[T](p)
	for lo := 0; lo < n; lo += step {
		c.forwardCols(x, ps, lo, min(lo+step, n))
	}
}

func (c *resWork[T]) forwardCols(x []T, ps [][]T, lo, hi int) {
	p, n := c.p, c.p.n
	for r := 0; r < p.dim; r++ { // y is updated in place, coupling after coupling
		copy(c.y[r*n+lo:r*n+hi], x[r*n+lo:r*n+hi])
	}
	ld := c.ld[lo:hi]
	for j := range ld {
		ld[j] = 0
	}
	width := p.width
	invSqrt2 := T(1 / math.Sqrt2)
	sgn := T(1)
	if p.inverse {
		sgn = -1
	}
	for k, ci := range p.order() {
		cp := p.couplings[ci]
		ws := c.w[ci]
		gatherRows(c.v[k], c.y, cp.v, n, lo, hi)
		gatherRows(c.uIn[k], c.y, cp.u, n, lo, hi)
		as, ds := c.a[k], c.d[k]
		// h = W_in·v + b_in (in s1)
		l := cp.layers[0]
		mulABBiasCols(l.out, l.in, ws[0], c.v[k], ps[l.b], c.s1, n, lo, hi)
		for b := 0; b < p.blocks; b++ {
			swishWithGrad(as[2*b], ds[2*b], c.s1, width, n, lo, hi)
			l0, l1 := cp.layers[1+2*b], cp.layers[2+2*b]
			mulABBiasCols(l0.out, l0.in, ws[1+2*b], as[2*b], ps[l0.b], c.s2, n, lo, hi)
			swishWithGrad(as[2*b+1], ds[2*b+1], c.s2, width, n, lo, hi)
			mulABBiasCols(l1.out, l1.in, ws[2+2*b], as[2*b+1], ps[l1.b], c.s2, n, lo, hi)
			addScaleRows(c.s1, c.s2, invSqrt2, width, n, lo, hi)
		}
		last := 2 * p.blocks
		swishWithGrad(as[last], ds[last], c.s1, width, n, lo, hi)
		lOut := cp.layers[len(cp.layers)-1]
		mulABBiasCols(lOut.out, lOut.in, ws[len(ws)-1], as[last], ps[lOut.b], c.thT[k], n, lo, hi)
		scale := ps[cp.scale]
		th := c.th[k] // the s̃ rows, replaced by their tanh
		for r, row := range cp.u {
			sc := scale[r]
			y := c.y[row*n+lo : row*n+hi]
			thr, es := th[r*n+lo:r*n+hi], c.es[k][r*n+lo:r*n+hi]
			u, t := c.uIn[k][r*n+lo:r*n+hi], c.tOut[k][r*n+lo:r*n+hi]
			tanhInPlace(thr, c.s3[lo:hi])
			m := len(thr)
			es, ld, y, u, t := es[:m], ld[:m], y[:m], u[:m], t[:m]
			for j, h := range thr {
				s := sgn * sc * h
				es[j] = s
				ld[j] += s
			}
			expInPlace(es)
			if p.inverse {
				for j, e := range es {
					y[j] = (u[j] - t[j]) * e
				}
			} else {
				for j, e := range es {
					y[j] = u[j]*e + t[j]
				}
			}
		}
	}
}

// backward writes the packed gradients [dx; d params…] to out (zeroed), given the activations of the forward
// run and the output gradient gOut (dim+1, n), one block of columns at a time. It overwrites only the scratch
// rows and the weight workspace.
func (c *resWork[T]) backward(ps [][]T, gOut []T, out []T) {
	p, n := c.p, c.p.n
	c.backwardWeights() // the forward run's effective weights, scaled for the backward pass
	fill(c.ones, 1)
	gps := make([][]T, len(p.shapes)) // views of the parameter gradients inside out
	off := p.dim * n
	for i, s := range p.shapes {
		gps[i] = out[off : off+prod(s)]
		off += prod(s)
	}
	// The weight gradients accumulate into gw (weight norm) or straight into out.
	gw := c.gw
	if !p.weightNorm {
		gw = make([][][]T, len(p.couplings))
		for ci, cp := range p.couplings {
			for _, l := range cp.layers {
				gw[ci] = append(gw[ci], gps[l.w])
			}
		}
	} else {
		clear(c.gwBuf)
	}
	step := resChunkCols[T](p)
	for lo := 0; lo < n; lo += step {
		c.backwardCols(ps, gOut, gps, gw, lo, min(lo+step, n))
	}
	copy(out[:p.dim*n], c.g)
	// The residual blocks' second layers: their gradients were summed from ∂h' without the 1/√2.
	invSqrt2 := T(1 / math.Sqrt2)
	for ci, cp := range p.couplings {
		for b := 0; b < p.blocks; b++ {
			l1 := cp.layers[2+2*b]
			for _, g := range [][]T{gw[ci][2+2*b], gps[l1.b]} {
				for j := range g {
					g[j] *= invSqrt2
				}
			}
		}
	}
	if !p.weightNorm {
		return
	}
	for ci, cp := range p.couplings {
		for li, l := range cp.layers {
			// the forward run's norms (see backwardWeights)
			weightNormGrad(gps[l.w], gps[l.g], ps[l.w], ps[l.g], gw[ci][li], c.nrm[ci][li], l.out, l.in)
		}
	}
}

// weightNormRows sets w = diag(g_i/‖v_i‖)·v for an (out, in) weight v with row gains g, and nrm[i] = ‖v_i‖.
// Every worker of a data-parallel step does this for all its weights (243,648 on rgflow-small), so it is
// written for speed: the squares are summed by dotRow (four independent chains; one chain was bound by an
// addition's latency per element, about 0.5 ms per step there).
func weightNormRows[T float](w, nrm, v, g []T, out, in int) {
	for i := range out {
		row := v[i*in : (i+1)*in]
		n := T(math.Sqrt(float64(dotRow(row, row))))
		nrm[i] = n
		sc := g[i] / n
		dst := w[i*in : (i+1)*in]
		dst = dst[:len(row)] // one length: no bounds checks in the loop
		for j, e := range row {
			dst[j] = e * sc
		}
	}
}

// weightNormGrad is the gradient of weightNormRows: given ∂W for W = diag(g/‖v_i‖)·v and the rows' norms,
// ∂g_i = Σ_j ∂W_ij v_ij/‖v_i‖ and ∂v_ij = (g_i/‖v_i‖)(∂W_ij − v_ij·∂g_i/‖v_i‖), into gv and gg. The sums
// by dotRow, and ∂g_i/‖v_i‖ taken once per row rather than a division per element.
func weightNormGrad[T float](gv, gg, v, g, gW, nrm []T, out, in int) {
	for i := range out {
		row, grow := v[i*in:(i+1)*in], gW[i*in:(i+1)*in]
		n := nrm[i]
		dg := dotRow(grow, row) / n
		gg[i] = dg
		sc, dgn := g[i]/n, dg/n
		dst := gv[i*in : (i+1)*in]
		dst, grow = dst[:len(row)], grow[:len(row)]
		for j, e := range row {
			dst[j] = sc * (grow[j] - e*dgn)
		}
	}
}

// dotRow is Σ a[j]·b[j] over len(a) ≤ len(b) terms in four interleaved partial sums (terms j ≡ 0, 1, 2, 3
// mod 4, then (s0 + s1) + (s2 + s3)): the same bits on every CPU and build, with four independent addition
// chains instead of one.
func dotRow[T float](a, b []T) T {
	b = b[:len(a)]
	var s0, s1, s2, s3 T
	j := 0
	for ; j+4 <= len(a); j += 4 {
		s0 += a[j] * b[j]
		s1 += a[j+1] * b[j+1]
		s2 += a[j+2] * b[j+2]
		s3 += a[j+3] * b[j+3]
	}
	for ; j < len(a); j++ {
		s0 += a[j] * b[j]
	}
	return (s0 + s1) + (s2 + s3)
}

// backwardCols backpropagates the columns [lo, hi) through the whole stack, adding their share of the
// parameter gradients to gps (biases, scales) and gw (weights).
func (c *resWork[T]) backwardCols(ps [][]T, gOut []T, gps [][]T, gw [][][]T, lo, hi int) {
	p, n := c.p, c.p.n
	for r := 0; r < p.dim; r++ {
		copy(c.g[r*n+lo:r*n+hi], gOut[r*n+lo:r*n+hi])
	}
	gld := gOut[p.dim*n+lo : p.dim*n+hi]
	width := p.width
	invSqrt2 := T(1 / math.Sqrt2)
	order := p.order()
	for k := len(order) - 1; k >= 0; k-- {
		ci := order[k]
		cp := p.couplings[ci]
		ws, gws := c.w[ci], gw[ci]
		as, ds := c.a[k], c.d[k]
		scale, gScale := ps[cp.scale], gps[cp.scale]
		du := len(cp.u)
		gs, gt := c.gOut[:du*n], c.gOut[du*n:2*du*n] // the gradient of the output layer's (2|u|) rows
		for r, row := range cp.u {
			sc := scale[r]
			gy := c.g[row*n+lo : row*n+hi]
			thr, es := c.th[k][r*n+lo:r*n+hi], c.es[k][r*n+lo:r*n+hi]
			u, t := c.uIn[k][r*n+lo:r*n+hi], c.tOut[k][r*n+lo:r*n+hi]
			gsr, gtr := gs[r*n+lo:r*n+hi], gt[r*n+lo:r*n+hi]
			var gsc T
			m := len(gy)
			thr, es, u, t, gsr, gtr, gld := thr[:m], es[:m], u[:m], t[:m], gsr[:m], gtr[:m], gld[:m]
			for j := range gy {
				e, h := es[j], thr[j]
				var gss T
				if p.inverse { // y = (u − t)·e^{−s}, ld −= s
					gss = -gy[j]*(u[j]-t[j])*e - gld[j]
					gtr[j] = -gy[j] * e
				} else { // y = u·e^{s} + t, ld += s
					gss = gy[j]*u[j]*e + gld[j]
					gtr[j] = gy[j]
				}
				gy[j] *= e
				gsc += gss * h
				gsr[j] = gss * sc * (1 - h*h)
			}
			gScale[r] += gsc
		}
		// Output layer: [s̃; t] = W_out·a + b_out.
		nl := len(cp.layers)
		last := 2 * p.blocks
		lOut := cp.layers[nl-1]
		gO := c.gOut[:2*du*n]
		mulABtCols4x4(lOut.out, lOut.in, gO, as[last], gws[nl-1], n, lo, hi)
		mulABtColsWide(lOut.out, 1, gO, c.ones, gps[lOut.b], n, lo, hi)
		mulAtBCols(lOut.out, lOut.in, ws[nl-1], gO, c.s1, n, lo, hi)
		mulRowsInPlace(c.s1, ds[last], width, n, lo, hi) // s1: ∂h of the last residual output
		for b := p.blocks - 1; b >= 0; b-- {
			// h' = (h + W₁·a₁ + b₁)/√2 with a₁ = swish(W₀·a₀ + b₀), a₀ = swish(h). s1 holds ∂h' unscaled:
			// the 1/√2 is in the backward weights of l1 (backwardWeights) and applied to l1's gradients at
			// the end, and ∂h = ∂h'/√2 + swish'(h)⊙W₀ᵀ∂(W₀·a₀) in one pass.
			l0, l1 := cp.layers[1+2*b], cp.layers[2+2*b]
			mulABtCols4x4(l1.out, l1.in, c.s1, as[2*b+1], gws[2+2*b], n, lo, hi)
			mulABtColsWide(l1.out, 1, c.s1, c.ones, gps[l1.b], n, lo, hi)
			mulAtBCols(l1.out, l1.in, ws[2+2*b], c.s1, c.s2, n, lo, hi)
			mulRowsInPlace(c.s2, ds[2*b+1], width, n, lo, hi)
			mulABtCols4x4(l0.out, l0.in, c.s2, as[2*b], gws[1+2*b], n, lo, hi)
			mulABtColsWide(l0.out, 1, c.s2, c.ones, gps[l0.b], n, lo, hi)
			mulAtBCols(l0.out, l0.in, ws[1+2*b], c.s2, c.s3, n, lo, hi)
			scaleAddMulRows(c.s1, c.s3, ds[2*b], invSqrt2, width, n, lo, hi)
		}
		// Input layer: h = W_in·v + b_in; the input gradient adds to the conditioning rows.
		lIn := cp.layers[0]
		mulABtCols4x4(lIn.out, lIn.in, c.s1, c.v[k], gws[0], n, lo, hi)
		mulABtColsWide(lIn.out, 1, c.s1, c.ones, gps[lIn.b], n, lo, hi)
		mulAtBCols(lIn.out, lIn.in, ws[0], c.s1, c.gv, n, lo, hi)
		addRowsAt(c.g, cp.v, c.gv, n, lo, hi)
	}
}
