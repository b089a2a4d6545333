package layers

import (
	"fmt"
	"hash"
	"slices"
	"unsafe"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The fused RealNVP: a whole stack of affine couplings with MLP conditioners (ELU) as Gorgonia ops with a
// hand-written backward pass. Unfused, a NeuralRG block bijector is ~400 graph nodes per direction, each
// allocating its output every step; fused it is two nodes forward (the stack, its unpacking) and one
// backward, plus cheap slicing.
// Matrices are feature-major (rows = features, columns = blocks), so every product is a short-by-long GEMM.
// The unfused graph (RealNVP.Unfused) is the reference: tests check that values and gradients agree.
//
// Everything the backward pass needs travels through the graph; no op keeps activations between calls:
//
//	acts = nvpOp(x)                    (rows, ld): [y; log-det; activations; scratch], ld ≥ n (actsStride)
//	out  = nvpOutOp(x, params…, acts)  (dim+1, n): the first dim+1 rows of acts, n columns each
//	∂    = nvpGradOp(acts, ∂out)                   (the gradient of out, built by out's SymDiff)
//
// out is differentiable with respect to x and the parameters (not acts), so Gorgonia schedules the
// backward op after the forward op that made its activations, and a forward run of the same op on
// another batch in between cannot change them. The forward and backward ops read the parameters' values
// from the parameter nodes themselves (bound store tensors, which only change between runs) rather than
// as inputs: Gorgonia's machine does bookkeeping for every input of every op on every run, and a NeuralRG
// block has 170 parameters; only out, through which the gradient flows to them, takes them as inputs. The activation buffers are recycled (leasePool) only after
// every reader of a run has read them; a reader handed activations that were already released fails with
// an error instead of computing with someone else's numbers.
//
// The fused op is first-order only: its backward node has no derivative of its own.

// fusable reports whether the stack can run fused: separate MLP conditioners with ELU.
func (r *RealNVP) fusable() bool {
	if r.Unfused || r.Joint {
		return false
	}
	return FusedKernel(r.S, r.T)
}

// FusedKernel reports whether a RealNVP with separate conditioners s and t (Joint unset) has a fused kernel:
// both ELU MLPs of equal hidden widths.
func FusedKernel(s, t Conditioner) bool {
	sm, ok1 := s.(MLP)
	tm, ok2 := t.(MLP)
	return ok1 && ok2 && (sm.Activation == "elu" || sm.Activation == "") && (tm.Activation == "elu" || tm.Activation == "") &&
		slices.Equal(sm.Hidden, tm.Hidden)
}

// nvpCoupling is one coupling of a fused plan.
type nvpCoupling struct {
	v, u   []int // conditioning and transformed rows
	widths []int // |v|, hidden…, |u|
	first  int   // index (among the op's inputs) of its first parameter: s-net w0,b0,…, t-net w0,b0,…, scale
}

// nvpRows is where one coupling's activations sit in the activation tensor (row offsets). The hidden
// layers of its two nets are not kept: the backward pass recomputes them (see nvpPlan.layout).
type nvpRows struct {
	v, uIn, th, es, tOut int
}

// nvpPlan is the static description of a fused stack and of its activation tensor's layout. Its address
// identifies an op instance in Gorgonia's hashing, so that two stacks with equal shapes are never merged.
type nvpPlan struct {
	dim, n    int
	ld        int // the activation tensor's row stride: n plus a pad (see actsStride)
	elem      int // bytes per element of x's dtype (4 or 8), which sets the pad
	chunk     int // columns per pass (0: fusedChunkBytes of one row)
	inverse   bool
	couplings []nvpCoupling
	shapes    [][]int   // parameter shapes in input order (after x)
	rows      []nvpRows // per coupling, in execution order
	scratch   int       // first scratch row
	total     int       // rows of the activation tensor
	maxW      int
	hidRows   int    // rows of the hidden-layer scratch (the widest net's hidden widths, summed)
	ar        *Arena // where the unpacked outputs and gradients come from (nil: allocated afresh)
}

func (p *nvpPlan) layers() int { return len(p.couplings[0].widths) - 1 }

// layout places y (dim rows), the log-det (1 row), every coupling's activations and the scratch of both
// passes (g: dim rows; gs, gt, gv, h1, h2: maxW rows each; ones: 1 row; hid: the hidden layers of one
// net) in one (total, ld) tensor.
//
// The hidden layers are scratch, not activations: the forward pass computes each net's hidden layers into
// hid and discards them once the net's output is out, and the backward pass recomputes them from the
// kept conditioning rows v, block of columns by block, just before it backpropagates through that net.
// The recomputation runs the same kernels on the same inputs, so it gives the same bits. It costs the
// hidden layers' products and ELUs once more, but those run on rows that stay in cache, while keeping them
// meant writing 6 of every 7 rows of the tensor to main memory in the forward pass and reading them back
// in the backward pass, a stream that took longer than the arithmetic (measured on the neuralrg preset:
// the products that wrote or read kept rows ran several times slower per operation than those on scratch).
func (p *nvpPlan) layout() {
	row := p.dim + 1
	take := func(k int) int { r := row; row += k; return r }
	p.rows = nil
	for _, ci := range p.order() {
		cp := p.couplings[ci]
		du := len(cp.u)
		var r nvpRows
		r.v, r.uIn, r.th, r.es, r.tOut = take(len(cp.v)), take(du), take(du), take(du), take(du)
		hid := 0
		for _, w := range cp.widths[1 : len(cp.widths)-1] {
			hid += w
		}
		for _, w := range cp.widths {
			p.maxW = max(p.maxW, w)
		}
		p.hidRows = max(p.hidRows, hid)
		p.rows = append(p.rows, r)
	}
	p.scratch = row
	p.total = row + p.dim + 5*p.maxW + 1 + p.hidRows
	p.ld = actsStride(p.n, p.elem)
}

// actsStride is the row stride of an activation tensor of n columns of elem-byte elements (4 or 8): n rounded
// up to a whole 64-byte cache line plus one more line, so that every row starts on a line (the tensor is one
// allocation of well over 32 KB, which Go places at a page boundary) and consecutive rows are one line apart
// modulo the cache's set stride.
//
// The alignment: the product kernels load and store 64 bytes at a time at column offsets that are multiples
// of a line; with the float64 line of 8 elements as the pad in both dtypes (as before), a float32 row
// started 32 bytes into a line every other row, and every vector of those rows straddled two lines. The
// fused products of the neuralrg preset (BenchmarkNVPKernels, float32, rows of 4096 columns) ran 10–60 %
// faster with aligned rows: the 2-row output layer 49–52 → 77 GFLOP/s, the 10-row hidden layers 80 → 85–98.
// float64 keeps its pad of 8 (a pad of 16 measured up to 5–8 % slower in the same benchmark).
//
// The stagger: the batch sizes in use make n a power of two, and then every row of the tensor would start
// at the same offset modulo the cache's set stride: a product reads 10–20 rows at the same columns, more
// than the cache has ways, and evicts its own operands (measured: 15–20 % of the products' time at
// n = 2¹⁴, float32 and float64). The pad staggers the rows over the cache sets.
func actsStride(n, elem int) int {
	e := 64 / elem
	return (n+e-1)/e*e + e
}

// order is the execution order of the couplings.
func (p *nvpPlan) order() []int {
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

// applyFused builds the fused forward or inverse nodes on x (dim, n) and returns the output and the
// per-column log-det.
func (r *RealNVP) applyFused(s *Scope, x *G.Node, inverse bool) (*G.Node, *G.Node, error) {
	n := x.Shape()[1]
	hidden := r.S.(MLP).Hidden
	plan := &nvpPlan{dim: r.Dim, n: n, elem: int(x.Dtype().Size()), inverse: inverse, chunk: r.chunk, ar: s.Arena()}
	inputs := []*G.Node{x}
	for c := 0; c < r.Couplings; c++ {
		sp := r.Splits[c/2]
		v, u := sp.A, sp.B
		if c%2 == 1 {
			v, u = sp.B, sp.A
		}
		widths := append(append([]int{len(v)}, hidden...), len(u))
		cp := nvpCoupling{v: v, u: u, widths: widths, first: len(inputs) - 1}
		cs := s.Sub(fmt.Sprintf("coupling%d", c))
		for _, net := range []string{"s", "t"} {
			ns := cs.Sub(net)
			for l := 0; l+1 < len(widths); l++ {
				ls := ns.Sub(fmt.Sprintf("l%d", l))
				init := GlorotUniform(1)
				if net == "t" && l+2 == len(widths) && r.T.(MLP).ZeroLast || net == "s" && l+2 == len(widths) && r.S.(MLP).ZeroLast {
					init = Zeros
				}
				w := ls.Param("w", []int{widths[l+1], widths[l]}, init)
				b := ls.Param("b", []int{widths[l+1]}, Zeros)
				inputs = append(inputs, w, b)
				plan.shapes = append(plan.shapes, []int{widths[l+1], widths[l]}, []int{widths[l+1]})
			}
		}
		inputs = append(inputs, cs.Param("scale", []int{len(u)}, Zeros))
		plan.shapes = append(plan.shapes, []int{len(u)})
		plan.couplings = append(plan.couplings, cp)
	}
	plan.layout()
	for i, pn := range inputs[1:] {
		if !pn.IsVar() || !slices.Equal(pn.Shape(), plan.shapes[i]) {
			return nil, nil, fmt.Errorf("layers: fused RealNVP %s: parameter %s is not a bound parameter of shape %v", s.Prefix(), pn.Name(), plan.shapes[i])
		}
	}
	fwd := &nvpOp{plan: plan, pool: &leasePool{readers: 1}, params: inputs[1:]}
	acts, err := G.ApplyOp(fwd, x)
	if err != nil {
		return nil, nil, fmt.Errorf("layers: fused RealNVP %s: %w", s.Prefix(), err)
	}
	out, err := G.ApplyOp(&nvpOutOp{fwd: fwd}, append(inputs, acts)...)
	if err != nil {
		return nil, nil, fmt.Errorf("layers: fused RealNVP %s: %w", s.Prefix(), err)
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

// poolActs returns a free activation buffer of plan (with its views) from the op's lease pool, or a new one.
func poolActs[T float](p *leasePool, plan *nvpPlan) *nvpActs[T] {
	if a, ok := takeFree[*nvpActs[T]](p); ok {
		return a
	}
	return viewActs(plan, make([]T, plan.total*plan.ld))
}

// actsOf checks that v is an activation tensor of op's plan that is still leased and returns its views
// (*nvpActs[T]).
func (op *nvpOp) actsOf(who string, v G.Value) (*tensor.Dense, any, error) {
	t, ok := v.(*tensor.Dense)
	if !ok || t.Shape().Dims() != 2 || t.Shape()[0] != op.plan.total || t.Shape()[1] != op.plan.ld {
		return nil, nil, fmt.Errorf("layers: %s: the activations input is %T %v, want a (%d, %d) tensor", who, v, shapeOfValue(v), op.plan.total, op.plan.ld)
	}
	acts := op.pool.leased(t)
	if acts == nil {
		return nil, nil, fmt.Errorf("layers: %s: these activations were already released (read once per reader and forward run; was the op run by hand, or by a machine over part of its graph?)", who)
	}
	return t, acts, nil
}

func shapeOfValue(v G.Value) []int {
	if t, ok := v.(tensor.Tensor); ok {
		return t.Shape()
	}
	return nil
}

// nvpOp computes the stack's activation tensor (plan.total, plan.ld): [y; log-det; activations; scratch].
type nvpOp struct {
	plan   *nvpPlan
	pool   *leasePool
	params []*G.Node // the parameter nodes, in plan.shapes order (read by value, see the package notes above)
}

func (op *nvpOp) Arity() int    { return 1 }
func (op *nvpOp) Type() hm.Type { return fnType(2, 2) }
func (op *nvpOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes(op.String(), op.Arity(), ds)
	if err != nil {
		return nil, err
	}
	if err := checkShape(op.String(), 0, s[0], []int{op.plan.dim, op.plan.n}); err != nil {
		return nil, err
	}
	return tensor.Shape{op.plan.total, op.plan.ld}, nil
}
func (op *nvpOp) Do(vals ...G.Value) (G.Value, error) {
	d, err := argData("FusedRealNVP", 1, vals) // a constant name: formatting String() would cost every run
	if err != nil {
		return nil, err
	}
	var t *tensor.Dense
	var acts any
	switch x := d[0].(type) {
	case []float32:
		ps, err := nodeParams[float32]("FusedRealNVP", op.params)
		if err != nil {
			return nil, err
		}
		a := poolActs[float32](op.pool, op.plan)
		a.forward(x, ps)
		t, acts = tensor.New(tensor.WithShape(op.plan.total, op.plan.ld), tensor.WithBacking(a.buf)), a
	case []float64:
		ps, err := nodeParams[float64]("FusedRealNVP", op.params)
		if err != nil {
			return nil, err
		}
		a := poolActs[float64](op.pool, op.plan)
		a.forward(x, ps)
		t, acts = tensor.New(tensor.WithShape(op.plan.total, op.plan.ld), tensor.WithBacking(a.buf)), a
	}
	op.pool.lease(t, acts)
	return t, nil
}
func (op *nvpOp) ReturnsPtr() bool     { return true }
func (op *nvpOp) CallsExtern() bool    { return false }
func (op *nvpOp) OverwritesInput() int { return -1 }
func (op *nvpOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.nvp|%p|%d|%d|%v", op.plan, op.plan.dim, op.plan.n, op.plan.inverse)
}
func (op *nvpOp) Hashcode() uint32 { return hash32(op) }
func (op *nvpOp) String() string {
	dir := "fwd"
	if op.plan.inverse {
		dir = "inv"
	}
	return fmt.Sprintf("FusedRealNVP(%s,%d couplings)", dir, len(op.plan.couplings))
}
func (op *nvpOp) DiffWRT(n int) []bool { return make([]bool, n) }
func (op *nvpOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("layers: %s: the activation tensor is not differentiable (differentiate its unpacked output)", op)
}

// nvpOutOp unpacks [y; log-det] (dim+1, n) from the activation tensor (its last input). Its other inputs
// are the stack's x and parameters, with respect to which it is differentiable.
type nvpOutOp struct{ fwd *nvpOp }

func (op *nvpOutOp) Arity() int { return len(op.fwd.plan.shapes) + 2 }
func (op *nvpOutOp) Type() hm.Type {
	in := []int{2}
	for _, s := range op.fwd.plan.shapes {
		in = append(in, len(s))
	}
	return fnType(2, append(in, 2)...)
}
func (op *nvpOutOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.fwd.plan.dim + 1, op.fwd.plan.n}, nil
}
func (op *nvpOutOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != op.Arity() {
		return nil, fmt.Errorf("layers: %s: got %d inputs, want %d", op, len(vals), op.Arity())
	}
	t, acts, err := op.fwd.actsOf(op.String(), vals[len(vals)-1])
	if err != nil {
		return nil, err
	}
	p := op.fwd.plan
	out := p.ar.denseDirty(t.Dtype(), []int{p.dim + 1, p.n}) // every element written below
	switch a := acts.(type) {
	case *nvpActs[float32]:
		copyRows(outData(out).([]float32), p.n, a.buf, p.ld, p.dim+1, p.n)
	case *nvpActs[float64]:
		copyRows(outData(out).([]float64), p.n, a.buf, p.ld, p.dim+1, p.n)
	}
	op.fwd.pool.checkIn(t)
	return out, nil
}
func (op *nvpOutOp) ReturnsPtr() bool     { return true }
func (op *nvpOutOp) CallsExtern() bool    { return false }
func (op *nvpOutOp) OverwritesInput() int { return -1 }
func (op *nvpOutOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.nvpout|%p", op.fwd.plan)
}
func (op *nvpOutOp) Hashcode() uint32 { return hash32(op) }
func (op *nvpOutOp) String() string   { return "Unpack" + op.fwd.String() }
func (op *nvpOutOp) DiffWRT(n int) []bool {
	w := make([]bool, n)
	for i := range w {
		w[i] = i < n-1
	}
	return w
}
func (op *nvpOutOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	pool := op.fwd.pool
	pool.mu.Lock()
	pool.readers++
	serial := pool.readers
	pool.mu.Unlock()
	acts := in[len(in)-1]
	bw, err := G.ApplyOp(&nvpGradOp{fwd: op.fwd, serial: serial}, acts, grad)
	if err != nil {
		return nil, err
	}
	p := op.fwd.plan
	grads := make(G.Nodes, len(in)) // the last (acts) stays nil: not differentiable
	off := 0
	shapes := append([][]int{{p.dim, p.n}}, p.shapes...)
	for i, sh := range shapes {
		if grads[i], err = G.ApplyOp(segmentOp{plan: p, off: off, shape: sh, total: packedGradSize(p)}, bw); err != nil {
			return nil, err
		}
		off += prod(sh)
	}
	return grads, nil
}

func packedGradSize(p *nvpPlan) int {
	n := p.dim * p.n
	for _, s := range p.shapes {
		n += prod(s)
	}
	return n
}

func params[T float](d []any) [][]T {
	out := make([][]T, len(d))
	for i, v := range d {
		out[i] = v.([]T)
	}
	return out
}

// nodeParams returns the values of parameter nodes as slices of T (their backing arrays, not copies).
func nodeParams[T float](op string, nodes []*G.Node) ([][]T, error) {
	out := make([][]T, len(nodes))
	var z T
	want := tensor.Float64
	if unsafe.Sizeof(z) == 4 {
		want = tensor.Float32
	}
	for i, n := range nodes {
		t, ok := n.Value().(*tensor.Dense)
		if !ok || t.IsView() || t.Dtype() != want {
			return nil, fmt.Errorf("layers: %s: parameter %s holds %T, want a %v tensor", op, n.Name(), n.Value(), want)
		}
		var p unsafe.Pointer
		if want == tensor.Float32 {
			p = unsafe.Pointer(unsafe.SliceData(t.Float32s()))
		} else {
			p = unsafe.Pointer(unsafe.SliceData(t.Float64s()))
		}
		out[i] = unsafe.Slice((*T)(p), t.Shape().TotalSize())
	}
	return out, nil
}

// nvpGradOp computes the gradients of the fused stack with respect to x and every parameter, packed into one
// vector in input order, from the activation tensor of the forward run and the gradient of the unpacked
// output (inputs), and the parameters (read from the forward op's parameter nodes).
type nvpGradOp struct {
	fwd    *nvpOp
	serial int // distinguishes the backward ops of several Grad calls
}

func (op *nvpGradOp) Arity() int    { return 2 }
func (op *nvpGradOp) Type() hm.Type { return fnType(1, 2, 2) }
func (op *nvpGradOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{packedGradSize(op.fwd.plan)}, nil
}
func (op *nvpGradOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != op.Arity() {
		return nil, fmt.Errorf("layers: %s: got %d inputs, want %d", op, len(vals), op.Arity())
	}
	t, acts, err := op.fwd.actsOf(op.String(), vals[0])
	if err != nil {
		return nil, err
	}
	d, err := argData("∇FusedRealNVP", 2, vals)
	if err != nil {
		return nil, err
	}
	p := op.fwd.plan
	// The input gradient (the first dim·n values) is written whole; the parameter gradients are sums.
	out := p.ar.denseDirty(dtypeOf(d[0]), []int{packedGradSize(p)})
	switch v := outData(out).(type) {
	case []float32:
		clear(v[p.dim*p.n:])
	case []float64:
		clear(v[p.dim*p.n:])
	}
	switch a := acts.(type) {
	case *nvpActs[float32]:
		ps, err := nodeParams[float32]("∇FusedRealNVP", op.fwd.params)
		if err != nil {
			return nil, err
		}
		a.backward(ps, d[1].([]float32), outData(out).([]float32))
	case *nvpActs[float64]:
		ps, err := nodeParams[float64]("∇FusedRealNVP", op.fwd.params)
		if err != nil {
			return nil, err
		}
		a.backward(ps, d[1].([]float64), outData(out).([]float64))
	}
	op.fwd.pool.checkIn(t)
	return out, nil
}
func (op *nvpGradOp) ReturnsPtr() bool     { return true }
func (op *nvpGradOp) CallsExtern() bool    { return false }
func (op *nvpGradOp) OverwritesInput() int { return -1 }
func (op *nvpGradOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.nvpgrad|%p|%d", op.fwd.plan, op.serial)
}
func (op *nvpGradOp) Hashcode() uint32     { return hash32(op) }
func (op *nvpGradOp) String() string       { return "∇" + op.fwd.String() }
func (op *nvpGradOp) DiffWRT(n int) []bool { return make([]bool, n) }
func (op *nvpGradOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("layers: the fused RealNVP is first-order only; build the model with Unfused for higher derivatives")
}

// segmentOp copies out[off : off+prod(shape)] of a packed vector into a tensor of the given shape.
type segmentOp struct {
	plan       *nvpPlan
	off, total int
	shape      []int
}

func (op segmentOp) Arity() int    { return 1 }
func (op segmentOp) Type() hm.Type { return fnType(len(op.shape), 1) }
func (op segmentOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape(append([]int(nil), op.shape...)), nil
}
func (op segmentOp) Do(vals ...G.Value) (G.Value, error) {
	// The packed gradient is always a dense float tensor; read it without boxing its data (this op runs
	// once per parameter per step).
	t, ok := vals[0].(*tensor.Dense)
	if len(vals) != 1 || !ok || t.IsView() || t.DataSize() < op.off+prod(op.shape) {
		return nil, fmt.Errorf("layers: Segment: want one packed gradient tensor of at least %d values", op.off+prod(op.shape))
	}
	out := newValueIn(op.plan.ar, t.Dtype(), op.shape)
	n := prod(op.shape)
	switch t.Dtype() {
	case tensor.Float32:
		copy(outData(out).([]float32), t.Float32s()[op.off:op.off+n])
	case tensor.Float64:
		copy(outData(out).([]float64), t.Float64s()[op.off:op.off+n])
	default:
		return nil, fmt.Errorf("layers: Segment: dtype %v", t.Dtype())
	}
	return out, nil
}
func (op segmentOp) ReturnsPtr() bool     { return true }
func (op segmentOp) CallsExtern() bool    { return false }
func (op segmentOp) OverwritesInput() int { return -1 }
func (op segmentOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.segment|%p|%d|%d|%v", op.plan, op.off, op.total, op.shape)
}
func (op segmentOp) Hashcode() uint32     { return hash32(op) }
func (op segmentOp) String() string       { return fmt.Sprintf("Segment(%d,%v)", op.off, op.shape) }
func (op segmentOp) DiffWRT(n int) []bool { return make([]bool, n) }
func (op segmentOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("layers: Segment is not differentiable")
}

// nvpActs are views of one activation tensor (see nvpPlan.layout).
type nvpActs[T float] struct {
	p     *nvpPlan
	buf   []T // the whole (total, n) tensor
	y, ld []T
	// per coupling, in execution order
	v    [][]T // conditioning rows (|v|, n)
	uIn  [][]T // transformed rows before the coupling (|u|, n)
	th   [][]T // tanh of the s-net output
	es   [][]T // exp(±s)
	tOut [][]T // t-net output
	// scratch
	g, gs, gt, gv, h1, h2 []T
	hid                   [][]T // the post-activations of one net's hidden layers (recomputed, see layout)
	ones                  []T   // n ones
	views                 [][]T // scratch for splitParams (8 per layer)
}

func viewActs[T float](p *nvpPlan, buf []T) *nvpActs[T] {
	ld := p.ld
	rows := func(r, k int) []T { return buf[r*ld : (r+k)*ld : (r+k)*ld] }
	a := &nvpActs[T]{p: p, buf: buf, y: rows(0, p.dim), ld: rows(p.dim, 1)}
	for k, ci := range p.order() {
		cp, r := p.couplings[ci], p.rows[k]
		du := len(cp.u)
		a.v = append(a.v, rows(r.v, len(cp.v)))
		a.uIn = append(a.uIn, rows(r.uIn, du))
		a.th = append(a.th, rows(r.th, du))
		a.es = append(a.es, rows(r.es, du))
		a.tOut = append(a.tOut, rows(r.tOut, du))
	}
	row := p.scratch
	next := func(k int) []T { s := rows(row, k); row += k; return s }
	a.g = next(p.dim)
	a.gs, a.gt, a.gv, a.h1, a.h2 = next(p.maxW), next(p.maxW), next(p.maxW), next(p.maxW), next(p.maxW)
	a.ones = next(1)
	for _, w := range p.couplings[0].widths[1 : len(p.couplings[0].widths)-1] {
		a.hid = append(a.hid, next(w))
	}
	a.views = make([][]T, 8*p.layers())
	return a
}

// splitParams cuts a coupling's parameters (s-net w0,b0,…, t-net w0,b0,…, scale) out of ps into views
// backed by buf (4·nl entries, reused).
func splitParams[T float](buf [][]T, ps [][]T, first, nl int) (sW, sB, tW, tB [][]T, scale []T) {
	sW, sB, tW, tB = buf[:0:nl], buf[nl:nl:2*nl], buf[2*nl:2*nl:3*nl], buf[3*nl:3*nl:4*nl]
	for l := 0; l < nl; l++ {
		sW = append(sW, ps[first+2*l])
		sB = append(sB, ps[first+2*l+1])
		tW = append(tW, ps[first+2*nl+2*l])
		tB = append(tB, ps[first+2*nl+2*l+1])
	}
	return sW, sB, tW, tB, ps[first+4*nl]
}

// fill sets every element of x to v by doubling copies (memmove speed).
func fill[T float](x []T, v T) {
	if len(x) == 0 {
		return
	}
	x[0] = v
	for k := 1; k < len(x); k *= 2 {
		copy(x[k:], x[:k])
	}
}

// fusedChunkBytes is how much of one row the fused kernel processes per pass: every coupling of the stack
// runs on a block of columns before the next block starts (the stack acts on each column on its own), so
// a layer's input and output rows stay in the core's L1/L2 cache instead of streaming through memory once
// per product, bias, activation and affine update. Only the sums over columns (weight gradients) see the
// blocks, as a different summation order. A layer touches at most about twenty rows at once, so 16 KB
// (2048 float64 or 4096 float32 columns) keeps it within the 1 MB L2 of the CPUs measured; the longer
// passes cost less per pass (calls, loop set-up, the horizontal sums of the dot-product blocks) and give the
// prefetcher longer runs: the reverse-KL step of the neuralrg preset took 3–8 % less CPU time than with
// 8 KB (medians of 7 alternating runs, L = 8 and 16, both dtypes, on a loaded machine), which was itself
// ahead of 4 KB in float64; 32 KB was no better.
const fusedChunkBytes = 16384

// chunkCols is the number of columns per pass for T: fusedChunkBytes of one row, a multiple of the vector
// width, or the plan's own chunk when a test set one.
func chunkCols[T float](p *nvpPlan) int {
	if p.chunk > 0 {
		return p.chunk
	}
	var z T
	return fusedChunkBytes / int(unsafe.Sizeof(z))
}

// gatherRows copies rows[r] of x into row r of dst, columns [lo, hi) (rows of length n).
func gatherRows[T float](dst, x []T, rows []int, n, lo, hi int) {
	for r, src := range rows {
		copy(dst[r*n+lo:r*n+hi], x[src*n+lo:src*n+hi])
	}
}

// addRowsAt adds row r of src to row rows[r] of dst, columns [lo, hi): with the vector kernel of
// addScaleRows where the CPU has it ((d + s)·1 is d + s, one rounding), the rest in a loop.
func addRowsAt[T float](dst []T, rows []int, src []T, n, lo, hi int) {
	for r, to := range rows {
		d, s := dst[to*n+lo:to*n+hi], src[r*n+lo:r*n+hi]
		k := addScaleVector(d, s, 1)
		d, s = d[k:], s[k:len(d)]
		for j := range d {
			d[j] += s[j]
		}
	}
}

// mlpForward runs an MLP (weights ws[l] (out,in), biases bs[l]) on the columns [lo, hi) of in (widths[0], n);
// hidden post-activations go to hid[l], the last layer's output (no activation) to out.
func mlpForward[T float](widths []int, ws, bs [][]T, in []T, hid [][]T, out []T, n, lo, hi int) {
	mlpHidden(widths, ws, bs, in, hid, n, lo, hi)
	l := len(widths) - 2 // the output layer, without activation
	prev := in
	if l > 0 {
		prev = hid[l-1]
	}
	nvpMulABBias(widths[l+1], widths[l], ws[l], prev, bs[l], out, n, lo, hi)
}

// mlpHidden computes the hidden layers of mlpForward only, into hid.
func mlpHidden[T float](widths []int, ws, bs [][]T, in []T, hid [][]T, n, lo, hi int) {
	cur := in
	for l := 0; l+2 < len(widths); l++ {
		dst := hid[l]
		o, i := widths[l+1], widths[l]
		nvpMulABBias(o, i, ws[l], cur, bs[l], dst, n, lo, hi)
		if lo == 0 && hi == n { // whole rows: one call over the layer (ELU is elementwise)
			eluInPlace(dst[:o*n])
		} else {
			for r := 0; r < o; r++ {
				eluInPlace(dst[r*n+lo : r*n+hi])
			}
		}
		cur = dst
	}
}

// nvpMulABBias sets C[:, lo:hi] = A (m×k) · B[:, lo:hi] + bias (bias[i] added to row i), as mulABBiasCols,
// in ⌈m/8⌉ passes of near-equal row counts where the CPU has the kernel: each load of B serves up to eight
// rows, and no row is left to a pass of its own (a hidden width of 10 is two passes of 5, not 4 + 4 + 1 + 1).
func nvpMulABBias[T float](m, k int, a, b, bias, c []T, ld, lo, hi int) {
	np := (m + axpyRMax - 1) / axpyRMax
	i := 0
	for p := range np {
		r := (m - i) / (np - p)
		if !axpyRVec(r, c, i*ld+lo, hi-lo, ld, a[i*k:], k, 1, k, b[lo:], ld, bias[i:i+r]) {
			mulABBiasCols(m, k, a, b, bias, c, ld, lo, hi)
			return
		}
		i += r
	}
}

// nvpMulAtB sets C[:, lo:hi] = Aᵀ · B[:, lo:hi] for A (m×k), B (m×ld) and C (k×ld), as mulAtBCols, in
// passes of up to eight rows of C (see nvpMulABBias).
func nvpMulAtB[T float](m, k int, a, b, c []T, ld, lo, hi int) {
	var zero [axpyRMax]T
	np := (k + axpyRMax - 1) / axpyRMax
	i := 0
	for p := range np {
		r := (k - i) / (np - p)
		if !axpyRVec(r, c, i*ld+lo, hi-lo, ld, a[i:], 1, k, m, b[lo:], ld, zero[:r]) {
			mulAtBCols(m, k, a, b, c, ld, lo, hi)
			return
		}
		i += r
	}
}

// weightGradCols accumulates C (m×k) += A[:, lo:hi] · B[:, lo:hi]ᵀ for A (m×ld), B (k×ld), a weight
// gradient, and bias[i] += Σ A[i, lo:hi], the bias gradient: where the CPU has the kernel, in blocks of up
// to four rows of A against up to four rows of B, one pass over the columns each (M + N loads per vector
// serve M·N products, and the row sums of A come with the first column block without loads of their own);
// otherwise as mulABtColsWide, with the bias as products with the row of ones.
func weightGradCols[T float](m, k int, a, b, c, bias, ones []T, ld, lo, hi int) {
	var blk [20]T
	for i := 0; i < m; i += 4 {
		M := min(4, m-i)
		for j := 0; j < k; j += 4 {
			N := min(4, k-j)
			if !dotBlkVec(M, N, a[i*ld+lo:], ld, b[j*ld+lo:], ld, hi-lo, &blk) {
				mulABtColsWide(m, k, a, b, c, ld, lo, hi)
				mulABtColsWide(m, 1, a, ones, bias, ld, lo, hi)
				return
			}
			for p := range M {
				cr := c[(i+p)*k+j : (i+p)*k+j+N]
				for q := range cr {
					cr[q] += blk[4*p+q]
				}
			}
			if j == 0 {
				for p := range M {
					bias[i+p] += blk[16+p]
				}
			}
		}
	}
}

// mlpBackward backpropagates the columns [lo, hi) of gOut (widths[last], n) through the MLP: it adds the
// weight and bias gradients of those columns to gws, gbs and overwrites the same columns of gIn with the
// input gradient. s1 and s2 are scratch (max width × n).
func mlpBackward[T float](widths []int, ws [][]T, in []T, hid [][]T, gOut []T, gws, gbs [][]T, gIn, s1, s2, ones []T, n, lo, hi int) {
	g := gOut
	for l := len(widths) - 2; l >= 0; l-- {
		o, i := widths[l+1], widths[l]
		prev := in
		if l > 0 {
			prev = hid[l-1]
		}
		// dW += g·prevᵀ; db += Σ_columns g.
		weightGradCols(o, i, g, prev, gws[l], gbs[l], ones, n, lo, hi)
		dst := gIn
		if l > 0 {
			dst = s1
			if &g[0] == &s1[0] {
				dst = s2
			}
		}
		nvpMulAtB(o, i, ws[l], g, dst, n, lo, hi)
		if l > 0 {
			// Through the ELU: its derivative is 1 for y > 0 and y + 1 otherwise (y = e^x − 1); whole rows
			// in one call (elementwise).
			if lo == 0 && hi == n {
				eluGradInPlace(dst[:i*n], prev[:i*n])
			} else {
				for r := 0; r < i; r++ {
					eluGradInPlace(dst[r*n+lo:r*n+hi], prev[r*n+lo:r*n+hi])
				}
			}
		}
		g = dst
	}
}

// forward runs the stack on x (dim, n), filling y, the log-det and the activations, one block of columns
// at a time (see fusedChunkBytes).
func (c *nvpActs[T]) forward(x []T, ps [][]T) {
	p, n := c.p, c.p.n
	step := chunkCols[T](p)
	for lo := 0; lo < n; lo += step {
		c.forwardCols(x, ps, lo, min(lo+step, n))
	}
}

// forwardCols runs the whole stack on the columns [lo, hi).
func (c *nvpActs[T]) forwardCols(x []T, ps [][]T, lo, hi int) {
	p, n, st := c.p, c.p.n, c.p.ld // x has rows of n, the activations rows of st
	for r := 0; r < p.dim; r++ {   // y is updated in place, coupling after coupling
		copy(c.y[r*st+lo:r*st+hi], x[r*n+lo:r*n+hi])
	}
	ld := c.ld[lo:hi]
	for j := range ld {
		ld[j] = 0
	}
	nl := p.layers()
	for k, ci := range p.order() {
		cp := p.couplings[ci]
		sW, sB, tW, tB, scale := splitParams(c.views[:4*nl], ps, cp.first, nl)
		gatherRows(c.v[k], c.y, cp.v, st, lo, hi)
		gatherRows(c.uIn[k], c.y, cp.u, st, lo, hi)
		th := c.th[k] // the s-net output, replaced by its tanh
		mlpForward(cp.widths, sW, sB, c.v[k], c.hid, th, st, lo, hi)
		mlpForward(cp.widths, tW, tB, c.v[k], c.hid, c.tOut[k], st, lo, hi)
		for r, row := range cp.u {
			sc := scale[r]
			y := c.y[row*st+lo : row*st+hi]
			thr, es := th[r*st+lo:r*st+hi], c.es[k][r*st+lo:r*st+hi]
			u, t := c.uIn[k][r*st+lo:r*st+hi], c.tOut[k][r*st+lo:r*st+hi]
			// Vector passes: tanh, the log-scale s = ±scale·tanh (into es), its exp, then the affine update.
			tanhInPlace(thr, c.h1[lo:hi])
			sgn := T(1)
			if p.inverse {
				sgn = -1
			}
			// Slices resliced to one length, so that the compiler drops the bounds checks in the loops.
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

// backward writes the packed gradients [dx; d params…] to out (zeroed), given the activations of the
// forward run and the output gradient gOut (dim+1, n), one block of columns at a time. It overwrites only
// the scratch rows.
func (c *nvpActs[T]) backward(ps [][]T, gOut []T, out []T) {
	p, n := c.p, c.p.n
	fill(c.ones, 1)
	gps := make([][]T, len(p.shapes)) // views of the parameter gradients inside out
	off := p.dim * n
	for i, s := range p.shapes {
		gps[i] = out[off : off+prod(s)]
		off += prod(s)
	}
	step := chunkCols[T](p)
	for lo := 0; lo < n; lo += step {
		c.backwardCols(ps, gOut, gps, lo, min(lo+step, n))
	}
	copyRows(out, n, c.g, p.ld, p.dim, n)
}

// backwardCols backpropagates the columns [lo, hi) through the whole stack, adding their share of the
// parameter gradients to gps.
func (c *nvpActs[T]) backwardCols(ps [][]T, gOut []T, gps [][]T, lo, hi int) {
	p, n, st := c.p, c.p.n, c.p.ld // gOut has rows of n, the activations rows of st
	for r := 0; r < p.dim; r++ {
		copy(c.g[r*st+lo:r*st+hi], gOut[r*n+lo:r*n+hi])
	}
	gld := gOut[p.dim*n+lo : p.dim*n+hi]
	nl := p.layers()
	order := p.order()
	for k := len(order) - 1; k >= 0; k-- {
		cp := p.couplings[order[k]]
		sW, sB, tW, tB, scale := splitParams(c.views[:4*nl], ps, cp.first, nl)
		gsW, gsB, gtW, gtB, gScale := splitParams(c.views[4*nl:], gps, cp.first, nl)
		du := len(cp.u)
		gs, gt := c.gs[:du*st], c.gt[:du*st]
		for r, row := range cp.u {
			sc := scale[r]
			gy := c.g[row*st+lo : row*st+hi]
			thr, es := c.th[k][r*st+lo:r*st+hi], c.es[k][r*st+lo:r*st+hi]
			u, t := c.uIn[k][r*st+lo:r*st+hi], c.tOut[k][r*st+lo:r*st+hi]
			gsr, gtr := gs[r*st+lo:r*st+hi], gt[r*st+lo:r*st+hi]
			var gsc T
			m := len(gy) // one length for every slice, so that the compiler drops the bounds checks
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
		// Through the two nets, each after recomputing its hidden layers (see layout); their input gradients
		// add to the conditioning rows.
		mlpHidden(cp.widths, sW, sB, c.v[k], c.hid, st, lo, hi)
		mlpBackward(cp.widths, sW, c.v[k], c.hid, gs, gsW, gsB, c.gv, c.h1, c.h2, c.ones, st, lo, hi)
		addRowsAt(c.g, cp.v, c.gv, st, lo, hi)
		mlpHidden(cp.widths, tW, tB, c.v[k], c.hid, st, lo, hi)
		mlpBackward(cp.widths, tW, c.v[k], c.hid, gt, gtW, gtB, c.gv, c.h1, c.h2, c.ones, st, lo, hi)
		addRowsAt(c.g, cp.v, c.gv, st, lo, hi)
	}
}

// copyRows copies rows of n elements from src (row stride ls) to dst (row stride ld).
func copyRows[T float](dst []T, ld int, src []T, ls, rows, n int) {
	for r := range rows {
		copy(dst[r*ld:r*ld+n], src[r*ls:r*ls+n])
	}
}

// PackedGradient reports whether n is one tensor's slice of a fused op's packed gradient (the backward
// output of a fused RealNVP or residual-MLP stack, which holds the gradients of the stack's input and of
// all its parameters end to end), and if so returns the packed node, the slice's offset in it (in
// elements) and its size. The slice equals packed[off : off+size] in the packed node's value of the same
// run, so a caller that reads the packed node once may take every parameter's gradient from it and leave
// the slicing nodes out of its machine (each is one more instruction per run). The packed node is
// produced afresh every run (from the scope's arena when it has one), like any op output.
func PackedGradient(n *G.Node) (packed *G.Node, off, size int, ok bool) {
	if n == nil || n.Graph() == nil {
		return nil, 0, 0, false
	}
	var shape []int
	switch op := n.Op().(type) {
	case segmentOp:
		off, shape = op.off, op.shape
	case resSegmentOp:
		off, shape = op.off, op.shape
	default:
		return nil, 0, 0, false
	}
	ch := n.Graph().From(n.ID())
	if ch.Len() != 1 || !ch.Next() {
		return nil, 0, 0, false
	}
	src, isNode := ch.Node().(*G.Node)
	if !isNode {
		return nil, 0, 0, false
	}
	return src, off, prod(shape), true
}
