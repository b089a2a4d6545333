package layers

import (
	"fmt"
	"hash"
	"slices"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The fused RealNVP: a whole stack of affine couplings with MLP conditioners (ELU) as ONE Gorgonia op, with
// a hand-written backward pass. Unfused, a NeuralRG block bijector is ~400 graph nodes per direction, each
// allocating its output every step; fused it is one forward node, one backward node and cheap unpacking.
// The forward node keeps the activations its backward pass needs in buffers it owns and reuses across
// steps. Matrices are feature-major (rows = features, columns = blocks), so every product is a short-by-long
// GEMM. The unfused graph (RealNVP.Unfused) is the reference: a test checks values and gradients agree.
//
// The fused op is first-order only: its backward node has no derivative of its own.

// fusable reports whether the stack can run fused: separate MLP conditioners with ELU.
func (r *RealNVP) fusable() bool {
	if r.Unfused || r.Joint {
		return false
	}
	s, ok1 := r.S.(MLP)
	t, ok2 := r.T.(MLP)
	return ok1 && ok2 && (s.Activation == "elu" || s.Activation == "") && (t.Activation == "elu" || t.Activation == "") &&
		slices.Equal(s.Hidden, t.Hidden)
}

// nvpCoupling is one coupling of a fused plan.
type nvpCoupling struct {
	v, u   []int // conditioning and transformed rows
	widths []int // |v|, hidden…, |u|
	first  int   // index (among the op's inputs) of its first parameter: s-net w0,b0,…, t-net w0,b0,…, scale
}

// nvpPlan is the static description of a fused stack. Its address identifies an op instance (and its
// cache) in Gorgonia's hashing, so that two stacks with equal shapes are never merged.
type nvpPlan struct {
	dim, n    int
	inverse   bool
	couplings []nvpCoupling
	shapes    [][]int // parameter shapes in input order (after x)
}

func (p *nvpPlan) layers() int { return len(p.couplings[0].widths) - 1 }

// applyFused builds the fused forward or inverse node on x (dim, n) and returns the output and the
// per-column log-det.
func (r *RealNVP) applyFused(s *Scope, x *G.Node, inverse bool) (*G.Node, *G.Node, error) {
	n := x.Shape()[1]
	hidden := r.S.(MLP).Hidden
	plan := &nvpPlan{dim: r.Dim, n: n, inverse: inverse}
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
	op := &nvpOp{plan: plan}
	out, err := G.ApplyOp(op, inputs...)
	if err != nil {
		return nil, nil, fmt.Errorf("layers: fused RealNVP %s: %w", s.Prefix(), err)
	}
	y, err := Narrow(out, 0, 0, r.Dim)
	if err != nil {
		return nil, nil, err
	}
	ldRow, err := Narrow(out, 0, r.Dim, 1)
	if err != nil {
		return nil, nil, err
	}
	ld, err := Reshape(ldRow, n)
	return y, ld, err
}

// nvpOp computes the packed (dim+1, n) matrix [y; log-det] of the stack.
type nvpOp struct {
	plan  *nvpPlan
	cache any // *nvpCache[float32] or *nvpCache[float64], made on the first Do
}

func (op *nvpOp) Arity() int { return 1 + len(op.plan.shapes) }
func (op *nvpOp) Type() hm.Type {
	in := []int{2}
	for _, s := range op.plan.shapes {
		in = append(in, len(s))
	}
	return fnType(2, in...)
}
func (op *nvpOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
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
	return tensor.Shape{op.plan.dim + 1, op.plan.n}, nil
}
func (op *nvpOp) Do(vals ...G.Value) (G.Value, error) {
	d, err := argData(op.String(), op.Arity(), vals)
	if err != nil {
		return nil, err
	}
	out := newValue(dtypeOf(d[0]), []int{op.plan.dim + 1, op.plan.n})
	switch x := d[0].(type) {
	case []float32:
		c := cacheFor[float32](op)
		c.forward(x, params[float32](d[1:]), outData(out).([]float32))
	case []float64:
		c := cacheFor[float64](op)
		c.forward(x, params[float64](d[1:]), outData(out).([]float64))
	}
	return out, nil
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
func (op *nvpOp) DiffWRT(n int) []bool {
	w := make([]bool, n)
	for i := range w {
		w[i] = true
	}
	return w
}
func (op *nvpOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	bw, err := G.ApplyOp(&nvpGradOp{fwd: op}, append(append(G.Nodes(nil), in...), grad)...)
	if err != nil {
		return nil, err
	}
	grads := make(G.Nodes, len(in))
	off := 0
	shapes := append([][]int{{op.plan.dim, op.plan.n}}, op.plan.shapes...)
	for i, sh := range shapes {
		if grads[i], err = G.ApplyOp(segmentOp{plan: op.plan, off: off, shape: sh, total: packedGradSize(op.plan)}, bw); err != nil {
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

// nvpGradOp computes the gradients of the fused stack with respect to x and every parameter, packed into one
// vector in input order, from the forward op's cached activations and the output gradient.
type nvpGradOp struct{ fwd *nvpOp }

func (op *nvpGradOp) Arity() int { return op.fwd.Arity() + 1 }
func (op *nvpGradOp) Type() hm.Type {
	in := []int{2}
	for _, s := range op.fwd.plan.shapes {
		in = append(in, len(s))
	}
	return fnType(1, append(in, 2)...)
}
func (op *nvpGradOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{packedGradSize(op.fwd.plan)}, nil
}
func (op *nvpGradOp) Do(vals ...G.Value) (G.Value, error) {
	d, err := argData(op.String(), op.Arity(), vals)
	if err != nil {
		return nil, err
	}
	out := newValue(dtypeOf(d[0]), []int{packedGradSize(op.fwd.plan)})
	last := len(d) - 1
	switch g := d[last].(type) {
	case []float32:
		c, ok := op.fwd.cache.(*nvpCache[float32])
		if !ok {
			return nil, fmt.Errorf("layers: %s: the forward pass has not run", op)
		}
		c.backward(params[float32](d[1:last]), g, outData(out).([]float32))
	case []float64:
		c, ok := op.fwd.cache.(*nvpCache[float64])
		if !ok {
			return nil, fmt.Errorf("layers: %s: the forward pass has not run", op)
		}
		c.backward(params[float64](d[1:last]), g, outData(out).([]float64))
	}
	return out, nil
}
func (op *nvpGradOp) ReturnsPtr() bool     { return true }
func (op *nvpGradOp) CallsExtern() bool    { return false }
func (op *nvpGradOp) OverwritesInput() int { return -1 }
func (op *nvpGradOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.nvpgrad|%p", op.fwd.plan)
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
	d, err := argData(op.String(), 1, vals)
	if err != nil {
		return nil, err
	}
	out := newValue(dtypeOf(d[0]), op.shape)
	n := prod(op.shape)
	switch x := d[0].(type) {
	case []float32:
		copy(outData(out).([]float32), x[op.off:op.off+n])
	case []float64:
		copy(outData(out).([]float64), x[op.off:op.off+n])
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

// nvpCache holds the forward activations of one fused op, reused across steps.
type nvpCache[T float] struct {
	p *nvpPlan
	// per coupling, in execution order
	v    [][]T   // conditioning rows (|v|, n)
	uIn  [][]T   // transformed rows before the coupling (|u|, n)
	th   [][]T   // tanh of the s-net output
	es   [][]T   // exp(±s)
	tOut [][]T   // t-net output
	hs   [][][]T // s-net post-activations of the hidden layers
	ht   [][][]T // t-net post-activations of the hidden layers
	// scratch
	x, g, gs, gt, gv, h1, h2 []T
	ones                     []T   // n ones
	views                    [][]T // scratch for splitParams (8 per layer)
}

func cacheFor[T float](op *nvpOp) *nvpCache[T] {
	if c, ok := op.cache.(*nvpCache[T]); ok {
		return c
	}
	p := op.plan
	c := &nvpCache[T]{p: p}
	n := p.n
	maxW := 0
	for _, cp := range p.couplings {
		c.v = append(c.v, make([]T, len(cp.v)*n))
		c.uIn = append(c.uIn, make([]T, len(cp.u)*n))
		c.th = append(c.th, make([]T, len(cp.u)*n))
		c.es = append(c.es, make([]T, len(cp.u)*n))
		c.tOut = append(c.tOut, make([]T, len(cp.u)*n))
		var hs, ht [][]T
		for _, w := range cp.widths[1 : len(cp.widths)-1] {
			hs = append(hs, make([]T, w*n))
			ht = append(ht, make([]T, w*n))
		}
		for _, w := range cp.widths {
			maxW = max(maxW, w)
		}
		c.hs = append(c.hs, hs)
		c.ht = append(c.ht, ht)
	}
	for _, b := range []*[]T{&c.x, &c.g} {
		*b = make([]T, p.dim*n)
	}
	for _, b := range []*[]T{&c.gs, &c.gt, &c.gv, &c.h1, &c.h2} {
		*b = make([]T, maxW*n)
	}
	c.views = make([][]T, 8*p.layers())
	c.ones = make([]T, n)
	fill(c.ones, 1)
	op.cache = c
	return c
}

// order is the execution order of the couplings.
func (c *nvpCache[T]) order() []int {
	k := len(c.p.couplings)
	o := make([]int, k)
	for i := range o {
		o[i] = i
		if c.p.inverse {
			o[i] = k - 1 - i
		}
	}
	return o
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

func gatherRows[T float](dst, x []T, rows []int, n int) {
	for r, src := range rows {
		copy(dst[r*n:(r+1)*n], x[src*n:(src+1)*n])
	}
}

func addRowsAt[T float](dst []T, rows []int, src []T, n int) {
	for r, to := range rows {
		d, s := dst[to*n:(to+1)*n], src[r*n:(r+1)*n]
		for j := range d {
			d[j] += s[j]
		}
	}
}

// mlpForward runs an MLP (weights ws[l] (out,in), biases bs[l]) on in (widths[0], n); hidden post-activations
// go to hid[l], the last layer's output (no activation) to out.
func mlpForward[T float](widths []int, ws, bs [][]T, in []T, hid [][]T, out []T, n int) {
	cur := in
	for l := 0; l+1 < len(widths); l++ {
		dst := out
		if l+2 < len(widths) {
			dst = hid[l]
		}
		o, i := widths[l+1], widths[l]
		for r := 0; r < o; r++ {
			fill(dst[r*n:(r+1)*n], bs[l][r])
		}
		mulAB(o, n, i, ws[l], cur, dst)
		if l+2 < len(widths) {
			eluInPlace(dst[:o*n])
		}
		cur = dst
	}
}

// mlpBackward backpropagates gOut (widths[last], n) through the MLP: it adds the weight and bias gradients
// to gws, gbs and overwrites gIn with the input gradient. s1 and s2 are scratch (max width × n).
func mlpBackward[T float](widths []int, ws [][]T, in []T, hid [][]T, gOut []T, gws, gbs [][]T, gIn, s1, s2, ones []T, n int) {
	g := gOut
	for l := len(widths) - 2; l >= 0; l-- {
		o, i := widths[l+1], widths[l]
		prev := in
		if l > 0 {
			prev = hid[l-1]
		}
		// dW += g·prevᵀ; db += Σ_columns g.
		mulABt(o, n, i, g, prev, gws[l])
		mulABt(o, n, 1, g, ones, gbs[l]) // Σ over columns, as dot products with a row of ones
		dst := gIn
		if l > 0 {
			dst = s1
			if &g[0] == &s1[0] {
				dst = s2
			}
		}
		mulAtB(o, n, i, ws[l], g, dst)
		if l > 0 {
			// Through the ELU: its derivative is 1 for y > 0 and y + 1 otherwise (y = e^x − 1).
			// negPart(y) + 1 is that derivative without a data-dependent branch (mispredicted half the time).
			eluGradInPlace(dst[:i*n], prev[:i*n])
		}
		g = dst
	}
}

// forward runs the stack on x (dim, n) and writes [y; log-det] to out (dim+1, n).
func (c *nvpCache[T]) forward(x []T, ps [][]T, out []T) {
	p, n := c.p, c.p.n
	copy(c.x, x)
	ld := out[p.dim*n : (p.dim+1)*n]
	for j := range ld {
		ld[j] = 0
	}
	nl := p.layers()
	for k, ci := range c.order() {
		cp := p.couplings[ci]
		sW, sB, tW, tB, scale := splitParams(c.views[:4*nl], ps, cp.first, nl)
		gatherRows(c.v[k], c.x, cp.v, n)
		gatherRows(c.uIn[k], c.x, cp.u, n)
		th := c.th[k] // the s-net output, replaced by its tanh
		mlpForward(cp.widths, sW, sB, c.v[k], c.hs[k], th, n)
		mlpForward(cp.widths, tW, tB, c.v[k], c.ht[k], c.tOut[k], n)
		for r, row := range cp.u {
			sc := scale[r]
			y := c.x[row*n : (row+1)*n]
			thr, es := th[r*n:(r+1)*n], c.es[k][r*n:(r+1)*n]
			u, t := c.uIn[k][r*n:(r+1)*n], c.tOut[k][r*n:(r+1)*n]
			// Vector passes: tanh, the log-scale s = ±scale·tanh (into es), its exp, then the affine update.
			tanhInPlace(thr, c.h1[:n])
			sgn := T(1)
			if p.inverse {
				sgn = -1
			}
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
	copy(out[:p.dim*n], c.x)
}

// backward writes the packed gradients [dx; d params…] to out, given the output gradient gOut (dim+1, n).
func (c *nvpCache[T]) backward(ps [][]T, gOut []T, out []T) {
	p, n := c.p, c.p.n
	for i := range out {
		out[i] = 0
	}
	copy(c.g, gOut[:p.dim*n])
	gld := gOut[p.dim*n : (p.dim+1)*n]
	gps := make([][]T, len(p.shapes)) // views of the parameter gradients inside out
	off := p.dim * n
	for i, s := range p.shapes {
		gps[i] = out[off : off+prod(s)]
		off += prod(s)
	}
	nl := p.layers()
	order := c.order()
	for k := len(order) - 1; k >= 0; k-- {
		cp := p.couplings[order[k]]
		sW, _, tW, _, scale := splitParams(c.views[:4*nl], ps, cp.first, nl)
		gsW, gsB, gtW, gtB, gScale := splitParams(c.views[4*nl:], gps, cp.first, nl)
		du := len(cp.u)
		gs, gt := c.gs[:du*n], c.gt[:du*n]
		for r, row := range cp.u {
			sc := scale[r]
			gy := c.g[row*n : (row+1)*n]
			thr, es := c.th[k][r*n:(r+1)*n], c.es[k][r*n:(r+1)*n]
			u, t := c.uIn[k][r*n:(r+1)*n], c.tOut[k][r*n:(r+1)*n]
			gsr, gtr := gs[r*n:(r+1)*n], gt[r*n:(r+1)*n]
			var gsc T
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
		// Through the two nets; their input gradients add to the conditioning rows.
		mlpBackward(cp.widths, sW, c.v[k], c.hs[k], gs, gsW, gsB, c.gv, c.h1, c.h2, c.ones, n)
		addRowsAt(c.g, cp.v, c.gv, n)
		mlpBackward(cp.widths, tW, c.v[k], c.ht[k], gt, gtW, gtB, c.gv, c.h1, c.h2, c.ones, n)
		addRowsAt(c.g, cp.v, c.gv, n)
	}
	copy(out[:p.dim*n], c.g)
}
