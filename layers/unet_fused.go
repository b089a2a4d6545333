package layers

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// GroupNormAct is GroupNorm, an optional FiLM modulation and an optional swish as one op:
//
//	z = ((x − μ_g)/√(σ²_g + ε) · scale_c + bias_c) · (1 + γ_{b,c}) + β_{b,c},   y = swish(z) or z,
//
// for x (B, C, H, W) (or (B, C)), statistics per sample and group of C/groups consecutive channels, scale
// and bias (C), and γ, β (B·C, sample-major) or both nil (no modulation). It equals GroupNormalize followed
// by Modulate and Swish (the unfused graph; tests compare values and gradients), in two passes over x
// forward and three backward instead of about fifteen graph ops, each allocating its output.
//
// The backward pass is one op that recomputes the statistics from x and writes every gradient into one
// packed tensor, unpacked by copies; it is first-order only (its nodes have no derivative of their own),
// so use the unfused graph inside a loss that is differentiated twice.
func GroupNormAct(x *G.Node, groups int, eps float64, scale, bias, gamma, beta *G.Node, swish bool) (*G.Node, error) {
	return groupNormActIn(nil, x, groups, eps, scale, bias, gamma, beta, swish)
}

// groupNormActIn is GroupNormAct with its output and its gradients' packed tensor drawn from ar.
func groupNormActIn(ar *Arena, x *G.Node, groups int, eps float64, scale, bias, gamma, beta *G.Node, swish bool) (*G.Node, error) {
	const op = "GroupNormAct"
	if err := checkNode(op, x, 2); err != nil {
		return nil, err
	}
	shape := []int(x.Shape())
	if len(shape) != 2 && len(shape) != 4 {
		return nil, fmt.Errorf("layers: %s: input has shape %s, want (B, C) or (B, C, H, W)", op, shapeStr(shape))
	}
	b, c := shape[0], shape[1]
	if groups <= 0 || c%groups != 0 {
		return nil, fmt.Errorf("layers: %s: %d groups do not divide %d channels", op, groups, c)
	}
	hw := prod(shape[2:])
	if c/groups*hw < 2 {
		return nil, fmt.Errorf("layers: %s: groups of %d value(s) would normalise to 0", op, c/groups*hw)
	}
	if eps == 0 {
		eps = DefaultGroupNormEps
	}
	if !(eps > 0) {
		return nil, fmt.Errorf("layers: %s: eps=%v, want > 0", op, eps)
	}
	if (gamma == nil) != (beta == nil) {
		return nil, fmt.Errorf("layers: %s: give both γ and β or neither", op)
	}
	in := []*G.Node{x, scale, bias}
	want := [][]int{shape, {c}, {c}}
	if gamma != nil {
		in = append(in, gamma, beta)
		want = append(want, []int{b * c}, []int{b * c})
	}
	for i, n := range in {
		if n == nil {
			return nil, fmt.Errorf("layers: %s: input %d is nil", op, i)
		}
		if err := checkShape(op, i, n.Shape(), want[i]); err != nil {
			return nil, err
		}
	}
	if err := sameDtype(op, in...); err != nil {
		return nil, err
	}
	g := gnGeom{b: b, c: c, hw: hw, groups: groups, eps: eps, film: gamma != nil, swish: swish, shape: shape}
	var st *gnStatsCache
	if ar != nil {
		st = &gnStatsCache{}
	}
	return G.ApplyOp(gnActOp{g: g, ar: ar, st: st}, in...)
}

type gnGeom struct {
	b, c, hw, groups int
	eps              float64
	film, swish      bool
	shape            []int
}

func (g gnGeom) arity() int {
	if g.film {
		return 5
	}
	return 3
}

// sizes are the input sizes (x, scale, bias[, γ, β]).
func (g gnGeom) sizes() []int {
	s := []int{g.b * g.c * g.hw, g.c, g.c}
	if g.film {
		s = append(s, g.b*g.c, g.b*g.c)
	}
	return s
}

// packed is the length of the backward op's output: ∂x, ∂scale, ∂bias[, ∂γ, ∂β].
func (g gnGeom) packed() int {
	n := 0
	for _, s := range g.sizes() {
		n += s
	}
	return n
}

func (g gnGeom) String() string {
	return fmt.Sprintf("%v/%dg/eps%g/film%v/swish%v", g.shape, g.groups, g.eps, g.film, g.swish)
}

func inputTypes(g gnGeom) []int {
	t := []int{len(g.shape), 1, 1}
	if g.film {
		t = append(t, 1, 1)
	}
	return t
}

// floats returns the inputs as typed slices (all float32 or all float64), checking their sizes.
func floats[T float](op string, vals []G.Value, sizes []int) ([][]T, error) {
	if len(vals) != len(sizes) {
		return nil, fmt.Errorf("layers: %s: got %d inputs, want %d", op, len(vals), len(sizes))
	}
	out := make([][]T, len(vals))
	for i, v := range vals {
		t, ok := v.(*tensor.Dense)
		if !ok {
			return nil, fmt.Errorf("layers: %s: input %d: unsupported value %T", op, i, v)
		}
		if t.IsView() {
			m, ok := t.Materialize().(*tensor.Dense)
			if !ok {
				return nil, fmt.Errorf("layers: %s: input %d: cannot materialise view", op, i)
			}
			t = m
		}
		d, ok := t.Data().([]T)
		if !ok {
			return nil, fmt.Errorf("layers: %s: input %d has dtype %v, unlike input 0", op, i, t.Dtype())
		}
		if len(d) != sizes[i] {
			return nil, fmt.Errorf("layers: %s: input %d has %d elements, want %d", op, i, len(d), sizes[i])
		}
		out[i] = d
	}
	return out, nil
}

func is32(v G.Value) bool {
	t, ok := v.(*tensor.Dense)
	return ok && t.Dtype() == tensor.Float32
}

// gnActOp is the forward op.
type gnActOp struct {
	g  gnGeom
	ar *Arena        // where outputs come from (nil: afresh); not part of the op's identity
	st *gnStatsCache // with an arena: the statistics of the latest call, for the backward op
}

// gnStatsCache holds the group statistics the forward op computed from x (identified by the address
// and length of its data), so that the backward op, which reads the same x, need not recompute them. x is
// not modified between the two (it is live until the backward op reads it, and the tape machine
// overwrites a value in place only at its last use), and one machine runs the graph at a time (the
// arena's rule); an x at another address is recomputed. The numbers are the same either way.
type gnStatsCache struct {
	x         uintptr
	n         int
	mean, inv []float64
}

func (c *gnStatsCache) put(x uintptr, n int, mean, inv []float64) {
	if c != nil {
		c.x, c.n = x, n
		c.mean, c.inv = append(c.mean[:0], mean...), append(c.inv[:0], inv...)
	}
}

func (c *gnStatsCache) get(x uintptr, n int) (mean, inv []float64, ok bool) {
	if c == nil || c.n == 0 || c.x != x || c.n != n {
		return nil, nil, false
	}
	return c.mean, c.inv, true
}

func (op gnActOp) Arity() int    { return op.g.arity() }
func (op gnActOp) Type() hm.Type { return fnType(len(op.g.shape), inputTypes(op.g)...) }
func (op gnActOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	if _, err := nodeShapes(op.String(), op.Arity(), ds); err != nil {
		return nil, err
	}
	return tensor.Shape(append([]int(nil), op.g.shape...)), nil
}
func (op gnActOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) == 0 {
		return nil, fmt.Errorf("layers: %s: no inputs", op)
	}
	if is32(vals[0]) {
		in, err := floats[float32](op.String(), vals, op.g.sizes())
		if err != nil {
			return nil, err
		}
		res, _, o := newOutSetIn(op.ar, true, op.g.shape) // gnForward writes every element
		gnForward(op.g, op.st, in, o)
		return res, nil
	}
	in, err := floats[float64](op.String(), vals, op.g.sizes())
	if err != nil {
		return nil, err
	}
	res, o, _ := newOutSetIn(op.ar, false, op.g.shape)
	gnForward(op.g, op.st, in, o)
	return res, nil
}
func (op gnActOp) ReturnsPtr() bool     { return true }
func (op gnActOp) CallsExtern() bool    { return false }
func (op gnActOp) OverwritesInput() int { return -1 }
func (op gnActOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.gnact|%s", op.g)
}
func (op gnActOp) Hashcode() uint32 { return hash32(op) }
func (op gnActOp) String() string   { return "GroupNormAct" + op.g.String() }
func (op gnActOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = true
	}
	return d
}
func (op gnActOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	packed, err := G.ApplyOp(gnGradOp{g: op.g, ar: op.ar, st: op.st}, append(append(G.Nodes(nil), in...), grad)...)
	if err != nil {
		return nil, err
	}
	var res G.Nodes
	off := 0
	shapes := [][]int{op.g.shape, {op.g.c}, {op.g.c}, {op.g.b * op.g.c}, {op.g.b * op.g.c}}
	for i, n := range op.g.sizes() {
		d, err := G.ApplyOp(unpackOp{off: off, n: n, total: op.g.packed(), shape: shapes[i]}, packed)
		if err != nil {
			return nil, err
		}
		res = append(res, d)
		off += n
	}
	return res, nil
}

// stats computes the mean and 1/√(var + eps) of every (sample, group): two passes (mean, then the
// squared deviations from it), each summed in float64 with eight independent accumulators.
func gnStats[T float](g gnGeom, x []T) (mean, inv []float64) {
	cg := g.c / g.groups
	n := cg * g.hw
	mean, inv = make([]float64, g.b*g.groups), make([]float64, g.b*g.groups)
	if n < gnVecMin {
		for k := range mean {
			v := x[k*n : (k+1)*n]
			m := sum8(v) / float64(n)
			mean[k], inv[k] = m, 1/math.Sqrt(sqDev8(v, m)/float64(n)+g.eps)
		}
		return mean, inv
	}
	// Vector kernels: Σ x as a dot product with ones, then Σ (x − m)² as the dot product of x − m with
	// itself (both two-pass, as above; the sums in T with the kernels' partial sums).
	ones, dev := make([]T, n), make([]T, n)
	fill(ones, 1)
	for k := range mean {
		v := x[k*n : (k+1)*n]
		m := float64(dot(v, ones)) / float64(n)
		axpyRowsSet(dev, []T{1}, v, n, T(-m))
		mean[k], inv[k] = m, 1/math.Sqrt(float64(dot(dev, dev))/float64(n)+g.eps)
	}
	return mean, inv
}

// gnVecMin is the plane (and group) size from which GroupNormAct runs its passes through the vector
// kernels of the package (affine rows, dot products) instead of plain loops.
const gnVecMin = 64

// sum8 is Σ v in float64, eight partial sums (independent chains: the adds overlap instead of waiting on
// each other).
func sum8[T float](v []T) float64 {
	var s [8]float64
	i := 0
	for ; i+8 <= len(v); i += 8 {
		w := v[i : i+8 : i+8]
		s[0] += float64(w[0])
		s[1] += float64(w[1])
		s[2] += float64(w[2])
		s[3] += float64(w[3])
		s[4] += float64(w[4])
		s[5] += float64(w[5])
		s[6] += float64(w[6])
		s[7] += float64(w[7])
	}
	for ; i < len(v); i++ {
		s[i%8] += float64(v[i])
	}
	return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
}

// sqDev8 is Σ (v − m)² in float64, eight partial sums.
func sqDev8[T float](v []T, m float64) float64 {
	var s [8]float64
	i := 0
	for ; i+8 <= len(v); i += 8 {
		w := v[i : i+8 : i+8]
		d0, d1, d2, d3 := float64(w[0])-m, float64(w[1])-m, float64(w[2])-m, float64(w[3])-m
		d4, d5, d6, d7 := float64(w[4])-m, float64(w[5])-m, float64(w[6])-m, float64(w[7])-m
		s[0] += d0 * d0
		s[1] += d1 * d1
		s[2] += d2 * d2
		s[3] += d3 * d3
		s[4] += d4 * d4
		s[5] += d5 * d5
		s[6] += d6 * d6
		s[7] += d7 * d7
	}
	for ; i < len(v); i++ {
		d := float64(v[i]) - m
		s[i%8] += d * d
	}
	return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
}

// sumDot4 returns Σ d and Σ d·(x·a − c) in T, four partial sums each.
func sumDot4[T float](d, x []T, a, c T) (T, T) {
	x = x[:len(d)]
	var s0, s1, s2, s3, p0, p1, p2, p3 T
	i := 0
	for ; i+4 <= len(d); i += 4 {
		dd, xx := d[i:i+4:i+4], x[i:i+4:i+4]
		s0 += dd[0]
		s1 += dd[1]
		s2 += dd[2]
		s3 += dd[3]
		p0 += dd[0] * (xx[0]*a - c)
		p1 += dd[1] * (xx[1]*a - c)
		p2 += dd[2] * (xx[2]*a - c)
		p3 += dd[3] * (xx[3]*a - c)
	}
	for ; i < len(d); i++ {
		s0 += d[i]
		p0 += d[i] * (x[i]*a - c)
	}
	return (s0 + s1) + (s2 + s3), (p0 + p1) + (p2 + p3)
}

func gnForward[T float](g gnGeom, st *gnStatsCache, in [][]T, out []T) {
	x, scale, bias := in[0], in[1], in[2]
	mean, inv := gnStats(g, x)
	st.put(addr(&x[0]), len(x), mean, inv)
	cg := g.c / g.groups
	for b := range g.b {
		for c := range g.c {
			k := b*g.groups + c/cg
			m, iv := mean[k], inv[k]
			a1 := iv * float64(scale[c]) // z = x·a1 + a0 before FiLM
			a0 := float64(bias[c]) - m*a1
			if g.film {
				f := 1 + float64(in[3][b*g.c+c])
				a1, a0 = a1*f, a0*f+float64(in[4][b*g.c+c])
			}
			base := (b*g.c + c) * g.hw
			xs, os := x[base:base+g.hw], out[base:base+g.hw]
			A1, A0 := T(a1), T(a0) // in T: no conversions per element
			if g.hw >= gnVecMin && g.swish {
				// one AVX-512 pass where there is one (the same bits as the two passes below)
				done := swishAffine(os, xs, A1, A0)
				if xs, os = xs[done:], os[done:]; len(xs) == 0 {
					continue
				}
			}
			if g.hw >= gnVecMin {
				axpyRowsSet(os, []T{A1}, xs, len(xs), A0)
			} else {
				for i, e := range xs {
					os[i] = e*A1 + A0
				}
			}
			if g.swish {
				applyAct(os, os, actSwish) // the vector swish of the Swish op
			}
		}
	}
}

// gnGradOp is the backward op: inputs (x, scale, bias[, γ, β], ∂y), output the packed gradients.
type gnGradOp struct {
	g  gnGeom
	ar *Arena
	st *gnStatsCache // the forward op's statistics (nil: recomputed); not part of the op's identity
}

func (op gnGradOp) Arity() int { return op.g.arity() + 1 }
func (op gnGradOp) Type() hm.Type {
	return fnType(1, append(inputTypes(op.g), len(op.g.shape))...)
}
func (op gnGradOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	if _, err := nodeShapes(op.String(), op.Arity(), ds); err != nil {
		return nil, err
	}
	return tensor.Shape{op.g.packed()}, nil
}
func (op gnGradOp) Do(vals ...G.Value) (G.Value, error) {
	sizes := append(op.g.sizes(), op.g.b*op.g.c*op.g.hw)
	if len(vals) == 0 {
		return nil, fmt.Errorf("layers: %s: no inputs", op)
	}
	if is32(vals[0]) {
		in, err := floats[float32](op.String(), vals, sizes)
		if err != nil {
			return nil, err
		}
		res, _, o := newOutSetIn(op.ar, true, []int{op.g.packed()}) // gnBackward writes every element
		gnBackward(op.g, op.st, in, o)
		return res, nil
	}
	in, err := floats[float64](op.String(), vals, sizes)
	if err != nil {
		return nil, err
	}
	res, o, _ := newOutSetIn(op.ar, false, []int{op.g.packed()})
	gnBackward(op.g, op.st, in, o)
	return res, nil
}
func (op gnGradOp) ReturnsPtr() bool     { return true }
func (op gnGradOp) CallsExtern() bool    { return false }
func (op gnGradOp) OverwritesInput() int { return -1 }
func (op gnGradOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.gnactgrad|%s", op.g)
}
func (op gnGradOp) Hashcode() uint32     { return hash32(op) }
func (op gnGradOp) String() string       { return "GroupNormActGrad" + op.g.String() }
func (op gnGradOp) DiffWRT(n int) []bool { return make([]bool, n) }
func (op gnGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("layers: %s is first-order only (use the unfused GroupNorm graph for second derivatives)", op)
}

func gnBackward[T float](g gnGeom, st *gnStatsCache, in [][]T, out []T) {
	x, scale, bias := in[0], in[1], in[2]
	dy := in[len(in)-1]
	N := len(x)
	dx, dscale, dbias := out[:N], out[N:N+g.c], out[N+g.c:N+2*g.c]
	var dgamma, dbeta []T
	if g.film {
		dgamma, dbeta = out[N+2*g.c:N+2*g.c+g.b*g.c], out[N+2*g.c+g.b*g.c:]
	}
	mean, inv, ok := st.get(addr(&x[0]), len(x))
	if !ok {
		mean, inv = gnStats(g, x)
	}
	cg := g.c / g.groups
	n := float64(cg * g.hw)
	ds, db := make([]float64, g.c), make([]float64, g.c)
	dz := make([]T, g.hw)
	vec := g.hw >= gnVecMin
	var ones, pair []T
	if vec {
		// per channel of a group, d then x̂ (2·hw values): the two rows of the one pass that forms ∂x
		ones, pair = make([]T, g.hw), make([]T, 2*cg*g.hw)
		fill(ones, 1)
	}
	// With x̂ = (x − μ)/σ, a = x̂·scale + bias, z = a(1 + γ) + β and d = ∂y·swish′(z) (or ∂y), every gradient
	// follows from two sums per plane, S = Σ d and P = Σ d·x̂: ∂β = S, ∂γ = scale·P + bias·S,
	// ∂bias += (1+γ) S, ∂scale += (1+γ) P, and with k = (1+γ)·scale per channel
	// ∂x = (k d − mean_g(k d) − x̂ mean_g(k d x̂)) / σ.
	for b := range g.b {
		for gr := range g.groups {
			grp := b*g.groups + gr
			m, iv := mean[grp], inv[grp]
			ivT, mivT := T(iv), T(m*iv)
			var s1, s2 float64
			for c := gr * cg; c < (gr+1)*cg; c++ {
				f, be := 1.0, 0.0
				if g.film {
					f, be = 1+float64(in[3][b*g.c+c]), float64(in[4][b*g.c+c])
				}
				sc, bi := float64(scale[c]), float64(bias[c])
				base := (b*g.c + c) * g.hw
				xs, dys, d := x[base:base+g.hw], dy[base:base+g.hw], dx[base:base+g.hw]
				var xh []T
				if vec { // d and x̂ into the group's scratch; ∂x is written in the second loop
					pc := pair[2*(c-gr*cg)*g.hw:][:2*g.hw]
					d, xh = pc[:g.hw], pc[g.hw:]
				}
				if g.swish {
					// z = x·A1 + A0
					a1, a0 := T(iv*sc*f), T((bi-m*iv*sc)*f+be)
					done := 0
					if vec { // one AVX-512 pass where there is one (the same bits as the three below)
						done = swishGradAffine(d, dys, xs, a1, a0)
					}
					if xr, dz := xs[done:], dz[done:]; len(xr) > 0 {
						if vec {
							axpyRowsSet(dz, []T{a1}, xr, len(xr), a0)
						} else {
							for i, e := range xr {
								dz[i] = e*a1 + a0
							}
						}
						applyAct(dz, dz, actSwishD1) // swish′(z), vectorised as in the Swish op's gradient
						mulElems(d[done:], dys[done:], dz)
					}
				} else {
					copy(d, dys)
				}
				var sd, pd T
				if vec { // S = Σ d, P = Σ d·x̂ with x̂ = x·(1/σ) − μ/σ
					axpyRowsSet(xh, []T{ivT}, xs, g.hw, -mivT)
					sd, pd = dot(d, ones), dot(d, xh)
				} else {
					sd, pd = sumDot4(d, xs, ivT, mivT)
				}
				S, P := float64(sd), float64(pd)
				if g.film {
					dbeta[b*g.c+c], dgamma[b*g.c+c] = T(S), T(sc*P+bi*S)
				}
				db[c] += f * S
				ds[c] += f * P
				k := f * sc
				s1 += k * S
				s2 += k * P
			}
			m1, m2 := T(s1/n), T(s2/n)
			for c := gr * cg; c < (gr+1)*cg; c++ {
				k := T(1)
				if g.film {
					k += in[3][b*g.c+c]
				}
				k *= scale[c]
				base := (b*g.c + c) * g.hw
				xs, d := x[base:base+g.hw], dx[base:base+g.hw]
				if vec { // ∂x = (k·d − m1 − x̂·m2)/σ: one pass over the rows d and x̂ of the scratch
					axpyRowsSet(d, []T{k * ivT, -m2 * ivT}, pair[2*(c-gr*cg)*g.hw:][:2*g.hw], g.hw, -m1*ivT)
					continue
				}
				for i, e := range xs {
					xh := e*ivT - mivT
					d[i] = (k*d[i] - m1 - xh*m2) * ivT
				}
			}
		}
	}
	for c := range g.c {
		dscale[c], dbias[c] = T(ds[c]), T(db[c])
	}
}

// swishAffine sets the leading part of dst that the float32 AVX-512 kernel covers to swish(a·x + b) and
// returns its length (0 for float64 or without the kernel).
func swishAffine[T float](dst, x []T, a, b T) int {
	if d, ok := any(dst).([]float32); ok {
		return swishAffineVec(d, any(x).([]float32), float32(a), float32(b))
	}
	return 0
}

// swishGradAffine sets the leading part of dst that the float32 AVX-512 kernel covers to
// dy · Swish'(a·x + b) and returns its length (0 for float64 or without the kernel).
func swishGradAffine[T float](dst, dy, x []T, a, b T) int {
	if d, ok := any(dst).([]float32); ok {
		return swishGradAffineVec(d, any(dy).([]float32), any(x).([]float32), float32(a), float32(b))
	}
	return 0
}

// unpackOp copies elements [off, off+n) of a packed vector into a tensor of the given shape.
type unpackOp struct {
	off, n, total int
	shape         []int
}

func (op unpackOp) Arity() int    { return 1 }
func (op unpackOp) Type() hm.Type { return fnType(len(op.shape), 1) }
func (op unpackOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	if _, err := nodeShapes(op.String(), 1, ds); err != nil {
		return nil, err
	}
	return tensor.Shape(append([]int(nil), op.shape...)), nil
}
func (op unpackOp) Do(vals ...G.Value) (G.Value, error) {
	// The result is a view of its part of the packed tensor, not a copy (the packed tensor's only readers
	// are the unpack ops, and the parts do not overlap, so an op that later works in place on one part
	// touches nothing another reader needs).
	if len(vals) == 1 && is32(vals[0]) {
		in, err := floats[float32](op.String(), vals, []int{op.total})
		if err != nil {
			return nil, err
		}
		return tensor.New(tensor.WithShape(op.shape...), tensor.WithBacking(in[0][op.off:op.off+op.n:op.off+op.n])), nil
	}
	in, err := floats[float64](op.String(), vals, []int{op.total})
	if err != nil {
		return nil, err
	}
	return tensor.New(tensor.WithShape(op.shape...), tensor.WithBacking(in[0][op.off:op.off+op.n:op.off+op.n])), nil
}
func (op unpackOp) ReturnsPtr() bool     { return true }
func (op unpackOp) CallsExtern() bool    { return false }
func (op unpackOp) OverwritesInput() int { return -1 }
func (op unpackOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.unpack|%d|%d|%d|%v", op.off, op.n, op.total, op.shape)
}
func (op unpackOp) Hashcode() uint32     { return hash32(op) }
func (op unpackOp) String() string       { return fmt.Sprintf("Unpack[%d:%d]", op.off, op.off+op.n) }
func (op unpackOp) DiffWRT(n int) []bool { return make([]bool, n) }
func (op unpackOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("layers: %s is first-order only", op)
}

// ConcatChannels concatenates x (B, C1, H, W) and y (B, C2, H, W) along the channels with plain copies
// (Gorgonia's Concat walks element iterators, forward and backward). Its gradient splits the output
// gradient back into the two parts (copies too); first-order only.
func ConcatChannels(x, y *G.Node) (*G.Node, error) { return concatChannelsIn(nil, x, y) }

// concatChannelsIn is ConcatChannels with its output and its gradients drawn from ar.
func concatChannelsIn(ar *Arena, x, y *G.Node) (*G.Node, error) {
	const op = "ConcatChannels"
	if err := check4D(op, x, "first input"); err != nil {
		return nil, err
	}
	if err := check4D(op, y, "second input"); err != nil {
		return nil, err
	}
	if err := sameDtype(op, x, y); err != nil {
		return nil, err
	}
	xs, ys := x.Shape(), y.Shape()
	if xs[0] != ys[0] || xs[2] != ys[2] || xs[3] != ys[3] {
		return nil, fmt.Errorf("layers: %s: shapes %s and %s differ outside the channel axis", op, shapeStr(xs), shapeStr(ys))
	}
	return G.ApplyOp(chanCatOp{b: xs[0], c1: xs[1], c2: ys[1], hw: xs[2] * xs[3], h: xs[2], w: xs[3], ar: ar}, x, y)
}

// chanCatOp concatenates two (b, c, h, w) tensors along c; with part ≥ 1 it is instead the split of a
// concatenated tensor's gradient into part 1 or 2.
type chanCatOp struct {
	b, c1, c2, hw, h, w int
	part                int
	ar                  *Arena // where outputs come from (nil: afresh); not part of the op's identity
}

func (op chanCatOp) shape(c int) []int { return []int{op.b, c, op.h, op.w} }
func (op chanCatOp) Arity() int {
	if op.part > 0 {
		return 1
	}
	return 2
}
func (op chanCatOp) Type() hm.Type {
	if op.part > 0 {
		return fnType(4, 4)
	}
	return fnType(4, 4, 4)
}
func (op chanCatOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	if _, err := nodeShapes(op.String(), op.Arity(), ds); err != nil {
		return nil, err
	}
	switch op.part {
	case 1:
		return tensor.Shape(op.shape(op.c1)), nil
	case 2:
		return tensor.Shape(op.shape(op.c2)), nil
	}
	return tensor.Shape(op.shape(op.c1 + op.c2)), nil
}
func (op chanCatOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) == 0 {
		return nil, fmt.Errorf("layers: %s: no inputs", op)
	}
	if is32(vals[0]) {
		return chanCatDo[float32](op, vals, true)
	}
	return chanCatDo[float64](op, vals, false)
}

func chanCatDo[T float](op chanCatOp, vals []G.Value, f32 bool) (G.Value, error) {
	n1, n2, nt := op.c1*op.hw, op.c2*op.hw, (op.c1+op.c2)*op.hw
	sizes := []int{op.b * n1, op.b * n2}
	if op.part > 0 {
		sizes = []int{op.b * nt}
	}
	in, err := floats[T](op.String(), vals, sizes)
	if err != nil {
		return nil, err
	}
	shape := op.shape(op.c1 + op.c2)
	switch op.part {
	case 1:
		shape = op.shape(op.c1)
	case 2:
		shape = op.shape(op.c2)
	}
	res, o64, o32 := newOutSetIn(op.ar, f32, shape) // the copies write every element
	var out []T
	if f32 {
		out = any(o32).([]T)
	} else {
		out = any(o64).([]T)
	}
	for b := range op.b {
		switch op.part {
		case 0:
			copy(out[b*nt:b*nt+n1], in[0][b*n1:(b+1)*n1])
			copy(out[b*nt+n1:(b+1)*nt], in[1][b*n2:(b+1)*n2])
		case 1:
			copy(out[b*n1:(b+1)*n1], in[0][b*nt:b*nt+n1])
		case 2:
			copy(out[b*n2:(b+1)*n2], in[0][b*nt+n1:(b+1)*nt])
		}
	}
	return res, nil
}
func (op chanCatOp) ReturnsPtr() bool     { return true }
func (op chanCatOp) CallsExtern() bool    { return false }
func (op chanCatOp) OverwritesInput() int { return -1 }
func (op chanCatOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.chancat|%d|%d|%d|%d|%d|%d", op.b, op.c1, op.c2, op.h, op.w, op.part)
}
func (op chanCatOp) Hashcode() uint32 { return hash32(op) }
func (op chanCatOp) String() string {
	if op.part > 0 {
		return fmt.Sprintf("ChannelSplit%d", op.part)
	}
	return "ConcatChannels"
}
func (op chanCatOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = op.part == 0
	}
	return d
}
func (op chanCatOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	if op.part > 0 {
		return nil, fmt.Errorf("layers: %s is first-order only", op)
	}
	a, b := op, op
	a.part, b.part = 1, 2
	ga, err := G.ApplyOp(a, grad)
	if err != nil {
		return nil, err
	}
	gb, err := G.ApplyOp(b, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{ga, gb}, nil
}
