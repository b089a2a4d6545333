package layers

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
)

// KernelField is the equivariant kernel flow of Gerdes et al. for lattice fields:
//
//	v_{o,x}(φ, t) = Σ_{j, y} W_{o,j}(x − y, t) h_j(φ_y)
//
// with elementwise features h of the field, per input channel c: φ_c itself, sin(ω φ_c) and (unless Odd)
// cos(ω φ_c) for every ω in Freqs, so j runs over F·C features, F = 1 + |Freqs| (Odd) or 1 + 2|Freqs|.
// The kernels depend on time through the fixed basis TimeBasis: W(r, t) = Σ_k b_k(t) W_k(r), K = TimeBasis
// terms. Because v_{o,x} depends on φ_{o,x} only through the features at y = x, the divergence is exact
// and cheap:
//
//	div v = Σ_o Σ_x ∂v_{o,x}/∂φ_{o,x} = Σ_o Σ_f W_{o,(f,o)}(0, t) Σ_x h_f'(φ_{o,x}).
//
// Geometry. With Radius = 0 the kernel covers the whole periodic lattice (every offset r ∈ Z_H × Z_W), and
// v is the circular convolution of the features with W(t), computed with FFTs (CircConv; O(V log V) per
// sample and feature instead of the O(V²) of a direct sum, V = H·W). Circulant computes the same numbers as
// one matrix product of the (B, F·C·V) features with the circulant (F·C·V, C·V) matrix gathered from W(t),
// the obvious formulation and a test reference, several times slower on CPU at L = 16 (BenchmarkKernelField;
// a periodic convolution with a lattice-sized kernel was slower still). With Radius R > 0 the kernel is
// (2R+1)×(2R+1) and v is a periodic Conv2D: local, at the price of range. All are translation-equivariant by
// construction.
//
// Symmetries: with D4 the kernel is parametrised on the orbits of D4 acting on offsets (rotations by 90°
// and reflections, r → g r modulo the lattice), so W(g r) = W(r) and v(g φ) = g v(φ) exactly on a square
// lattice. With Odd only odd features are used (φ, sin ωφ), so v(−φ) = −v(φ) (the Z₂ symmetry of φ⁴).
//
// Parameters (under the scope given to Velocity): "w" of shape (K, C, F·C, P), P the number of kernel
// positions (H·W, (2R+1)², or their D4 orbits), zero at initialisation (v = 0: the ODE is the identity).
type KernelField struct {
	Channels  int
	Freqs     []float64 // feature frequencies ω (default 1, 2, 3 when nil)
	TimeBasis int       // K ≥ 1 (0 means 3)
	Radius    int       // 0: the whole lattice; R > 0: a (2R+1)² kernel
	Odd, D4   bool
	// Circulant computes the whole-lattice field (Radius 0) as one product with the gathered circulant
	// matrix instead of by FFTs (CircConv): the same numbers, slower on CPU (see BenchmarkKernelField).
	Circulant bool
}

func (k KernelField) freqs() []float64 {
	if k.Freqs == nil {
		return []float64{1, 2, 3}
	}
	return k.Freqs
}

func (k KernelField) timeBasis() int {
	if k.TimeBasis == 0 {
		return 3
	}
	return k.TimeBasis
}

// Features is F, the number of features per channel.
func (k KernelField) Features() int {
	if k.Odd {
		return 1 + len(k.freqs())
	}
	return 1 + 2*len(k.freqs())
}

// kernelGeom returns the kernel's side lengths (kh, kw) and, for every kernel position p (row-major over
// kh×kw), its parameter index (its D4 orbit with D4, p itself otherwise) and the number of parameters.
// Offsets: with Radius 0, position (a, b) is the offset (a, b) mod (h, w); with Radius R, (a − R, b − R).
func (k KernelField) kernelGeom(h, w int) (kh, kw int, param []int, np int) {
	full := k.Radius == 0
	kh, kw = h, w
	if !full {
		kh, kw = 2*k.Radius+1, 2*k.Radius+1
	}
	param = make([]int, kh*kw)
	if !k.D4 {
		for i := range param {
			param[i] = i
		}
		return kh, kw, param, kh * kw
	}
	// offset ↔ position
	toOff := func(a, b int) (int, int) {
		if full {
			return a, b
		}
		return a - k.Radius, b - k.Radius
	}
	toPos := func(ra, rb int) int {
		if full {
			return ((ra%h+h)%h)*kw + (rb%w+w)%w
		}
		return (ra+k.Radius)*kw + rb + k.Radius
	}
	orbit := make([]int, kh*kw)
	for i := range orbit {
		orbit[i] = -1
	}
	for p := range param {
		if orbit[p] >= 0 {
			continue
		}
		ra, rb := toOff(p/kw, p%kw)
		id := np
		np++
		// the 8 images of (ra, rb): rotations (a, b) → (−b, a) and the reflection (a, b) → (a, −b)
		for flip := 0; flip < 2; flip++ {
			a, b := ra, rb
			if flip == 1 {
				b = -b
			}
			for r := 0; r < 4; r++ {
				orbit[toPos(a, b)] = id
				a, b = -b, a
			}
		}
	}
	return kh, kw, orbit, np
}

func (k KernelField) validate(x *G.Node) error {
	if k.Channels < 1 {
		return fmt.Errorf("channels %d, want ≥ 1", k.Channels)
	}
	if k.timeBasis() < 1 {
		return fmt.Errorf("time basis of %d functions, want ≥ 1", k.TimeBasis)
	}
	if k.Radius < 0 {
		return fmt.Errorf("radius %d, want ≥ 0 (0: the whole lattice)", k.Radius)
	}
	for _, w := range k.freqs() {
		if !(w > 0) || math.IsInf(w, 0) {
			return fmt.Errorf("frequency %g, want a positive finite number", w)
		}
	}
	if x == nil || x.Dims() != 4 || x.Shape()[1] != k.Channels {
		return fmt.Errorf("input has shape %v, want (B, %d, H, W)", x.Shape(), k.Channels)
	}
	h, w := x.Shape()[2], x.Shape()[3]
	if k.D4 && h != w {
		return fmt.Errorf("D4 symmetry needs a square lattice, input is %d×%d", h, w)
	}
	if k.Radius > 0 && (2*k.Radius+1 > h || 2*k.Radius+1 > w) {
		return fmt.Errorf("kernel radius %d (size %d) exceeds the %d×%d lattice; use radius 0 for the whole lattice", k.Radius, 2*k.Radius+1, h, w)
	}
	return nil
}

// NumParams is the number of parameters on an h×w lattice.
func (k KernelField) NumParams(h, w int) int {
	_, _, _, np := k.kernelGeom(h, w)
	c := k.Channels
	return k.timeBasis() * c * k.Features() * c * np
}

// features returns the (B, F·C, H, W) features (feature-major: j = f·C + c) and the per-sample sums of
// their derivatives Σ_x h_j'(φ_{c,x}), shape (B, F·C), from the fused feature op (kernelFeatures).
func (k KernelField) features(s *Scope, x *G.Node) (feat, dsum *G.Node, err error) {
	sh := x.Shape()
	b, c, v := sh[0], sh[1], sh[2]*sh[3]
	flat, err := Reshape(x, b, c, v)
	if err != nil {
		return nil, nil, err
	}
	all, err := kernelFeatures(flat, k.freqs(), k.Odd, 0)
	if err != nil {
		return nil, nil, err
	}
	dall, err := kernelFeatures(flat, k.freqs(), k.Odd, 1)
	if err != nil {
		return nil, nil, err
	}
	if feat, err = Reshape(all, b, k.Features()*c, sh[2], sh[3]); err != nil {
		return nil, nil, err
	}
	dsum, err = SumAxis(dall, 2)
	return feat, dsum, err
}

// Velocity builds v(x, t) and its exact divergence.
func (k KernelField) Velocity(s *Scope, x *G.Node, t float64) (*G.Node, *G.Node, error) {
	if err := k.validate(x); err != nil {
		return nil, nil, fmt.Errorf("layers: KernelField %s: %w", s.Prefix(), err)
	}
	wrap := func(err error) error { return fmt.Errorf("layers: KernelField %s: %w", s.Prefix(), err) }
	sh := []int(x.Shape())
	b, c, h, w := sh[0], sh[1], sh[2], sh[3]
	v := h * w
	fc := k.Features() * c
	kh, kw, param, np := k.kernelGeom(h, w)
	wp := s.Param("w", []int{k.timeBasis(), c, fc, np}, Zeros)
	wt, err := timeCombine(s, wp, t) // (C, F·C, P)
	if err != nil {
		return nil, nil, wrap(err)
	}
	feat, dsum, err := k.features(s, x)
	if err != nil {
		return nil, nil, wrap(err)
	}
	// The centre taps W_{o,(f,o)}(0, t) as an (F·C, C) matrix D with D[(f,c), o] = W_{o,(f,c)}(0) δ_{co}:
	// div = Σ_o (dsum · D)[·, o]. Off-diagonal channel pairs point at a zero appended to W.
	centre := 0
	if k.Radius > 0 {
		centre = k.Radius*kw + k.Radius
	}
	wflat, err := Reshape(wt, c*fc*np)
	if err != nil {
		return nil, nil, wrap(err)
	}
	zero := G.NewConstant(NewDense(s.Dtype(), []int{1}, nil), G.In(s.Graph()))
	wz, err := G.Concat(0, wflat, zero)
	if err != nil {
		return nil, nil, wrap(err)
	}
	didx := make([]int, fc*c)
	for j := 0; j < fc; j++ {
		for o := 0; o < c; o++ {
			if j%c == o {
				didx[j*c+o] = (o*fc+j)*np + param[centre]
			} else {
				didx[j*c+o] = c * fc * np
			}
		}
	}
	dm, err := Gather(wz, didx, fc, c)
	if err != nil {
		return nil, nil, wrap(err)
	}
	dv, err := MatMul(dsum, dm) // (B, C)
	if err != nil {
		return nil, nil, wrap(err)
	}
	div, err := SumAxis(dv, 1)
	if err != nil {
		return nil, nil, wrap(err)
	}
	var vel *G.Node
	if k.Radius == 0 && k.Circulant {
		// M[(j, y), (o, x)] = W_{o,j}(x − y)
		idx := make([]int, fc*v*c*v)
		for j := 0; j < fc; j++ {
			for y := 0; y < v; y++ {
				yi, yj := y/w, y%w
				row := (j*v + y) * c * v
				for o := 0; o < c; o++ {
					base := (o*fc + j) * np
					for xx := 0; xx < v; xx++ {
						ri, rj := (xx/w-yi+h)%h, (xx%w-yj+w)%w
						idx[row+o*v+xx] = base + param[ri*kw+rj]
					}
				}
			}
		}
		m, err := Gather(wflat, idx, fc*v, c*v)
		if err != nil {
			return nil, nil, wrap(err)
		}
		ff, err := Reshape(feat, b, fc*v)
		if err != nil {
			return nil, nil, wrap(err)
		}
		if vel, err = MatMul(ff, m); err != nil {
			return nil, nil, wrap(err)
		}
		if vel, err = Reshape(vel, b, c, h, w); err != nil {
			return nil, nil, wrap(err)
		}
		return vel, div, nil
	}
	if k.Radius == 0 {
		// the kernel at every offset r = (ri, rj) of the lattice, convolved in Fourier space
		idx := make([]int, c*fc*v)
		for oj := 0; oj < c*fc; oj++ {
			for r := 0; r < v; r++ {
				idx[oj*v+r] = oj*np + param[r]
			}
		}
		ker, err := Gather(wflat, idx, c, fc, h, w)
		if err != nil {
			return nil, nil, wrap(err)
		}
		if vel, err = CircConv(feat, ker); err != nil {
			return nil, nil, wrap(err)
		}
		return vel, div, nil
	}
	// Conv2D computes out[x] = Σ_a ker[a] in[x + a − R]: the tap a multiplies the feature at y = x + a − R,
	// i.e. W(x − y) with x − y = R − a: flip the taps.
	idx := make([]int, c*fc*kh*kw)
	for o := 0; o < c; o++ {
		for j := 0; j < fc; j++ {
			for a := 0; a < kh; a++ {
				for bb := 0; bb < kw; bb++ {
					idx[((o*fc+j)*kh+a)*kw+bb] = (o*fc+j)*np + param[(kh-1-a)*kw+(kw-1-bb)]
				}
			}
		}
	}
	ker, err := Gather(wflat, idx, c, fc, kh, kw)
	if err != nil {
		return nil, nil, wrap(err)
	}
	if vel, err = Conv2D(feat, ker, ConvOpts{Pad: Periodic}); err != nil {
		return nil, nil, wrap(err)
	}
	return vel, div, nil
}

// CNNField is a local velocity field on periodic lattices: a stack of 3×3 periodic convolutions with tanh
// between them,
//
//	a¹ = W¹(t) ∗ x + b¹(t),  aˡ⁺¹ = Wˡ⁺¹(t) ∗ tanh(aˡ) + bˡ⁺¹(t),  v = aⁿ   (n = len(Hidden) + 1 convolutions)
//
// whose kernels and biases depend on time through the fixed basis TimeBasis: W(t) = Σ_k b_k(t) W_k. The
// network is translation-equivariant by construction (periodic padding); with D4 every kernel is averaged
// over the 8 symmetries of its 3×3 window (D4-invariant kernels: v(g x) = g v(x)); with Odd there are no
// biases, so v(−x) = −v(x) (tanh is odd).
//
// Exact divergence. The diagonal of the Jacobian, ∂v_{i,x}/∂x_{i,x}, sums over every path from the input
// site x through the hidden units back to the output site x, not only the centre taps. Forward-mode
// propagation of the sensitivities of one input site makes it exact: with Sˡ_d[c, y] = ∂aˡ_{c,y}/∂x_{i,y−d}
// (the sensitivity of unit c at y to the input of channel i at offset −d),
//
//	S¹_d[c]      = W¹[c, i, −d]                                      (weights only, |d| ≤ 1)
//	Sˡ⁺¹_d[c′,y] = Σ_e Σ_c Wˡ⁺¹[c′, c, e] tanh′(aˡ_{c,y+e}) Sˡ_{d+e}[c, y+e]   (e over the 3×3 taps)
//
// and ∂v_{i,x}/∂x_{i,x} = Sⁿ_0[i, x]. Only offsets |d| ≤ min(l, n − l) (Chebyshev) are needed at layer l.
// The step from the weight-only S¹ is a 3×3 convolution of tanh′(a¹) with the kernel
// K_d[c′, c, e] = W²[c′, c, e] S¹_{d+e}[c]; later steps are 1×1 convolutions of tanh′(aˡ) ⊙ Sˡ_{d+e} rolled
// by e; and the divergence sums Sⁿ_0 over sites, which removes the last roll:
//
//	div v = Σ_i Σ_e Σ_c Wⁿ[i, c, e] Σ_y tanh′(aⁿ⁻¹_{c,y}) Sⁿ⁻¹_e[c, y].
//
// With one hidden layer this is Σ_i Σ_c (Σ_y tanh′(a¹_{c,y})) Σ_e W²[i, c, e] W¹[c, i, −e]: no extra
// convolution at all. With two, substituting S² into the last line gives one 3×3 convolution of tanh′(a¹)
// with a kernel built from the weights alone (twoHiddenDiv), about a third of the forward pass per input
// channel; deeper stacks run the recursion (9 or more extra convolutions per layer). The recursion counts paths by their net displacement, so the lattice
// sides must exceed the number of convolutions (no path may wrap around the torus); Velocity checks it.
//
// Parameters (under the scope given to Velocity): conv<l>/w (K, cout, cin, 3, 3) and, unless Odd,
// conv<l>/b (K, cout); the last convolution's are zero at initialisation (v = 0).
type CNNField struct {
	Channels  int
	Hidden    []int // hidden widths, at least one (default 16, 16 when nil)
	TimeBasis int   // K ≥ 1 (0 means 3)
	Odd, D4   bool
}

func (n CNNField) hidden() []int {
	if n.Hidden == nil {
		return []int{16, 16}
	}
	return n.Hidden
}

func (n CNNField) timeBasis() int {
	if n.TimeBasis == 0 {
		return 3
	}
	return n.TimeBasis
}

// NumParams is the number of parameters.
func (n CNNField) NumParams() int {
	ws := append(append([]int{n.Channels}, n.hidden()...), n.Channels)
	total := 0
	for l := 0; l+1 < len(ws); l++ {
		total += n.timeBasis() * ws[l+1] * ws[l] * 9
		if !n.Odd {
			total += n.timeBasis() * ws[l+1]
		}
	}
	return total
}

func (n CNNField) validate(x *G.Node) error {
	if n.Channels < 1 {
		return fmt.Errorf("channels %d, want ≥ 1", n.Channels)
	}
	if len(n.hidden()) == 0 {
		return fmt.Errorf("no hidden layers, want at least one")
	}
	for i, w := range n.hidden() {
		if w < 1 {
			return fmt.Errorf("hidden layer %d has width %d, want ≥ 1", i, w)
		}
	}
	if n.timeBasis() < 1 {
		return fmt.Errorf("time basis of %d functions, want ≥ 1", n.TimeBasis)
	}
	if x == nil || x.Dims() != 4 || x.Shape()[1] != n.Channels {
		return fmt.Errorf("input has shape %v, want (B, %d, H, W)", x.Shape(), n.Channels)
	}
	if h, w, nc := x.Shape()[2], x.Shape()[3], len(n.hidden())+1; h <= nc || w <= nc {
		// A path of nc taps returns to its start with a net displacement of at most nc sites; on a
		// lattice of side ≤ nc it could also return around the torus, which the recursion does not count.
		return fmt.Errorf("lattice %d×%d, want sides larger than the %d convolutions (the receptive field must not wrap around the torus)", h, w, nc)
	} else if n.D4 && h != w {
		return fmt.Errorf("D4 symmetry needs a square lattice, input is %d×%d", h, w)
	}
	return nil
}

type offset struct{ r, c int }

// tap is the flat index of offset e in a 3×3 kernel: out[y] = Σ w[a,b] in[y + (a−1, b−1)].
func tap(e offset) int { return (e.r+1)*3 + e.c + 1 }

func chebyshev(d offset) int { return max(iabs(d.r), iabs(d.c)) }

func iabs(a int) int {
	if a < 0 {
		return -a
	}
	return a
}

// offsets lists the offsets with Chebyshev norm ≤ r.
func offsets(r int) []offset {
	var o []offset
	for a := -r; a <= r; a++ {
		for b := -r; b <= r; b++ {
			o = append(o, offset{a, b})
		}
	}
	return o
}

// Velocity builds v(x, t) and its exact divergence.
func (n CNNField) Velocity(s *Scope, x *G.Node, t float64) (*G.Node, *G.Node, error) {
	if err := n.validate(x); err != nil {
		return nil, nil, fmt.Errorf("layers: CNNField %s: %w", s.Prefix(), err)
	}
	wrap := func(err error) error { return fmt.Errorf("layers: CNNField %s: %w", s.Prefix(), err) }
	widths := append(append([]int{n.Channels}, n.hidden()...), n.Channels)
	nc := len(widths) - 1 // convolutions
	K := n.timeBasis()
	ws := make([]*G.Node, nc) // W^{l+1}(t), (cout, cin, 3, 3)
	var a []*G.Node           // pre-activations a^1 … a^{n−1}
	var dact []*G.Node        // tanh′(a^l)
	h := x
	for l := 0; l < nc; l++ {
		ls := s.Sub(fmt.Sprintf("conv%d", l))
		cin, cout := widths[l], widths[l+1]
		init := Normal(math.Sqrt(1 / float64(9*cin)))
		if l == nc-1 {
			init = Zeros
		}
		w, err := timeCombine(s, ls.Param("w", []int{K, cout, cin, 3, 3}, init), t)
		if err != nil {
			return nil, nil, wrap(err)
		}
		if n.D4 {
			if w, err = symmetricKernel(w); err != nil {
				return nil, nil, wrap(err)
			}
		}
		ws[l] = w
		var y *G.Node
		if n.Odd {
			y, err = Conv2D(h, w, ConvOpts{Pad: Periodic})
		} else {
			var bt *G.Node
			if bt, err = timeCombine(s, ls.Param("b", []int{K, cout}, Zeros), t); err == nil {
				y, err = Conv2DBias(h, w, bt, ConvOpts{Pad: Periodic})
			}
		}
		if err != nil {
			return nil, nil, wrap(err)
		}
		if l == nc-1 {
			h = y
			break
		}
		th, err := G.Tanh(y)
		if err != nil {
			return nil, nil, wrap(err)
		}
		sq, err := G.Square(th)
		if err != nil {
			return nil, nil, wrap(err)
		}
		ng, err := G.Neg(sq)
		if err != nil {
			return nil, nil, wrap(err)
		}
		d, err := G.Add(ng, s.Scalar(1))
		if err != nil {
			return nil, nil, wrap(err)
		}
		a, dact = append(a, y), append(dact, d)
		h = th
	}
	var div *G.Node
	for i := 0; i < n.Channels; i++ {
		di, err := n.channelDiv(s, ws, widths, dact, i)
		if err != nil {
			return nil, nil, wrap(err)
		}
		if div == nil {
			div = di
		} else if div, err = G.Add(div, di); err != nil {
			return nil, nil, wrap(err)
		}
	}
	return h, div, nil
}

// gatherW gathers entries of a kernel node w (cout, cin, 3, 3) by flat index into the given shape; the
// index −1 gives 0.
func gatherW(s *Scope, w *G.Node, idx []int, shape ...int) (*G.Node, error) {
	size := prod(w.Shape())
	flat, err := Reshape(w, size)
	if err != nil {
		return nil, err
	}
	src := flat
	for _, k := range idx {
		if k < 0 {
			zero := G.NewConstant(NewDense(s.Dtype(), []int{1}, nil), G.In(s.Graph()))
			if src, err = G.Concat(0, flat, zero); err != nil {
				return nil, err
			}
			break
		}
	}
	ix := make([]int, len(idx))
	for j, k := range idx {
		if k < 0 {
			k = size
		}
		ix[j] = k
	}
	return Gather(src, ix, shape...)
}

// siteSums is Σ_y over the last two axes of (B, w, H, W): (B, w).
func siteSums(x *G.Node) (*G.Node, error) {
	sh := x.Shape()
	r, err := Reshape(x, sh[0], sh[1], sh[2]*sh[3])
	if err != nil {
		return nil, err
	}
	return SumAxis(r, 2)
}

// channelDiv is Σ_x ∂v_{i,x}/∂x_{i,x}, shape (B), by the sensitivity recursion of the type's doc.
func (n CNNField) channelDiv(s *Scope, ws []*G.Node, widths []int, dact []*G.Node, i int) (*G.Node, error) {
	nc := len(ws)
	w1in := widths[0]
	idx1 := func(c int, d offset) int { // S¹_d[c] = W¹[c, i, −d]
		if chebyshev(d) > 1 {
			return -1
		}
		return (c*w1in+i)*9 + tap(offset{-d.r, -d.c})
	}
	wn, cn := widths[nc-1], ws[nc-1] // the last convolution's input width and kernel
	if nc == 2 {
		// div_i = Σ_c (Σ_y tanh′(a¹_c)) q[c], q[c] = Σ_e W²[i, c, e] W¹[c, i, −e]
		var i2, i1 []int
		for c := 0; c < wn; c++ {
			for _, e := range offsets(1) {
				i2 = append(i2, (i*wn+c)*9+tap(e))
				i1 = append(i1, idx1(c, e))
			}
		}
		g2, err := gatherW(s, cn, i2, wn, 9)
		if err != nil {
			return nil, err
		}
		g1, err := gatherW(s, ws[0], i1, wn, 9)
		if err != nil {
			return nil, err
		}
		p, err := G.HadamardProd(g2, g1)
		if err != nil {
			return nil, err
		}
		q, err := SumAxis(p, 1)
		if err != nil {
			return nil, err
		}
		if q, err = Reshape(q, wn, 1); err != nil {
			return nil, err
		}
		ss, err := siteSums(dact[0])
		if err != nil {
			return nil, err
		}
		r, err := MatMul(ss, q)
		if err != nil {
			return nil, err
		}
		return Reshape(r, r.Shape()[0])
	}
	if nc == 3 {
		return n.twoHiddenDiv(s, ws, widths, dact, i, idx1)
	}
	// Layer 2 from the weight-only S¹: S²_d = conv(tanh′(a¹), K_d), K_d[c′,c,e] = W²[c′,c,e] S¹_{d+e}[c].
	radius := func(l int) int { return min(l, nc-l) } // l = 1 … nc (1-based layer of the pre-activation)
	w1, w2 := widths[1], widths[2]
	cur := map[offset]*G.Node{}
	for _, d := range offsets(radius(2)) {
		idx := make([]int, w2*w1*9)
		for c2 := 0; c2 < w2; c2++ {
			for c := 0; c < w1; c++ {
				for _, e := range offsets(1) {
					idx[(c2*w1+c)*9+tap(e)] = idx1(c, offset{d.r + e.r, d.c + e.c})
				}
			}
		}
		f, err := gatherW(s, ws[0], idx, w2, w1, 3, 3)
		if err != nil {
			return nil, err
		}
		kd, err := G.HadamardProd(ws[1], f)
		if err != nil {
			return nil, err
		}
		if cur[d], err = Conv2D(dact[0], kd, ConvOpts{Pad: Periodic}); err != nil {
			return nil, err
		}
	}
	// Layers 3 … nc−1: S^{l+1}_d = Σ_e roll_{−e}(W^{l+1}[:,:,e] · (tanh′(a^l) ⊙ S^l_{d+e})).
	for l := 2; l < nc-1; l++ {
		cin, cout := widths[l], widths[l+1]
		taps := map[offset]*G.Node{}
		for _, e := range offsets(1) {
			idx := make([]int, cout*cin)
			for o := 0; o < cout; o++ {
				for c := 0; c < cin; c++ {
					idx[o*cin+c] = (o*cin+c)*9 + tap(e)
				}
			}
			g, err := gatherW(s, ws[l], idx, cout, cin, 1, 1)
			if err != nil {
				return nil, err
			}
			taps[e] = g
		}
		next := map[offset]*G.Node{}
		for _, d := range offsets(radius(l + 1)) {
			var sum *G.Node
			for _, e := range offsets(1) {
				src, ok := cur[offset{d.r + e.r, d.c + e.c}]
				if !ok {
					continue
				}
				p, err := G.HadamardProd(dact[l-1], src)
				if err != nil {
					return nil, err
				}
				if p, err = Conv2D(p, taps[e], ConvOpts{Pad: Periodic}); err != nil {
					return nil, err
				}
				if p, err = Roll(p, 2, -e.r); err != nil {
					return nil, err
				}
				if p, err = Roll(p, 3, -e.c); err != nil {
					return nil, err
				}
				if sum == nil {
					sum = p
				} else if sum, err = G.Add(sum, p); err != nil {
					return nil, err
				}
			}
			next[d] = sum
		}
		cur = next
	}
	// div_i = Σ_e Σ_c Wⁿ[i, c, e] Σ_y tanh′(aⁿ⁻¹_c) Sⁿ⁻¹_e[c].
	var div *G.Node
	for _, e := range offsets(1) {
		p, err := G.HadamardProd(dact[nc-2], cur[e])
		if err != nil {
			return nil, err
		}
		ss, err := siteSums(p)
		if err != nil {
			return nil, err
		}
		idx := make([]int, wn)
		for c := range idx {
			idx[c] = (i*wn+c)*9 + tap(e)
		}
		q, err := gatherW(s, cn, idx, wn, 1)
		if err != nil {
			return nil, err
		}
		r, err := MatMul(ss, q)
		if err != nil {
			return nil, err
		}
		if div == nil {
			div = r
		} else if div, err = G.Add(div, r); err != nil {
			return nil, err
		}
	}
	return Reshape(div, div.Shape()[0])
}

// BlockMLPField is a velocity field for the block layers of the RG hierarchy: it acts on BlockLayer's
// feature-major (D, N) matrices (one column per block of every sample, D = C·k·k) with one hidden tanh
// layer,
//
//	v(x, t) = W₂(t) tanh(W₁(t) x + b₁(t)) + b₂(t),   W₁ (Hidden, D), W₂ (D, Hidden),
//
// weights and biases expanded in TimeBasis Legendre polynomials. The divergence over the small block
// dimension is exact: ∂v_i/∂x_i = Σ_h W₂[i,h] tanh′(a_h) W₁[h,i], so div v = Σ_h q_h tanh′(a_h) with
// q_h = Σ_i W₂[i,h] W₁[h,i], one number per column (shape (N)); with ODE inside a BlockLayer the block
// log-dets are summed per sample as for the coupling blocks. Parameters: w1 (K, Hidden, D), b1 (K, Hidden),
// w2 (K, D, Hidden) (zero at initialisation: v = 0), b2 (K, D). The ODE's kinetic regulariser assumes
// sample-major tensors and is not available with this field.
type BlockMLPField struct {
	Dim, Hidden int
	TimeBasis   int // K ≥ 1 (0 means 3)
}

// Velocity builds v(x, t) for x (Dim, N) and its exact divergence per column.
func (f BlockMLPField) Velocity(s *Scope, x *G.Node, t float64) (*G.Node, *G.Node, error) {
	k := f.TimeBasis
	if k == 0 {
		k = 3
	}
	if f.Dim < 1 || f.Hidden < 1 || k < 1 {
		return nil, nil, fmt.Errorf("layers: BlockMLPField %s: dim %d, hidden %d, time basis %d, want all ≥ 1", s.Prefix(), f.Dim, f.Hidden, k)
	}
	if x == nil || x.Dims() != 2 || x.Shape()[0] != f.Dim {
		return nil, nil, fmt.Errorf("layers: BlockMLPField %s: input has shape %v, want (%d, N)", s.Prefix(), x.Shape(), f.Dim)
	}
	wrap := func(err error) error { return fmt.Errorf("layers: BlockMLPField %s: %w", s.Prefix(), err) }
	n := x.Shape()[1]
	w1, err := timeCombine(s, s.Param("w1", []int{k, f.Hidden, f.Dim}, Normal(1/math.Sqrt(float64(f.Dim)))), t)
	if err != nil {
		return nil, nil, wrap(err)
	}
	b1, err := timeCombine(s, s.Param("b1", []int{k, f.Hidden}, Zeros), t)
	if err != nil {
		return nil, nil, wrap(err)
	}
	w2, err := timeCombine(s, s.Param("w2", []int{k, f.Dim, f.Hidden}, Zeros), t)
	if err != nil {
		return nil, nil, wrap(err)
	}
	b2, err := timeCombine(s, s.Param("b2", []int{k, f.Dim}, Zeros), t)
	if err != nil {
		return nil, nil, wrap(err)
	}
	a, err := MatMul(w1, x)
	if err != nil {
		return nil, nil, wrap(err)
	}
	if a, err = RowBias(a, b1); err != nil {
		return nil, nil, wrap(err)
	}
	th, err := G.Tanh(a)
	if err != nil {
		return nil, nil, wrap(err)
	}
	v, err := MatMul(w2, th)
	if err != nil {
		return nil, nil, wrap(err)
	}
	if v, err = RowBias(v, b2); err != nil {
		return nil, nil, wrap(err)
	}
	// q_h = Σ_i W₂[i,h] W₁[h,i]: the diagonal of W₁·W₂ (Hidden × Hidden) would waste work; use W₁ ⊙ W₂ᵀ.
	w2t, err := G.Transpose(w2)
	if err != nil {
		return nil, nil, wrap(err)
	}
	p, err := G.HadamardProd(w1, w2t)
	if err != nil {
		return nil, nil, wrap(err)
	}
	q, err := SumAxis(p, 1)
	if err != nil {
		return nil, nil, wrap(err)
	}
	if q, err = Reshape(q, 1, f.Hidden); err != nil {
		return nil, nil, wrap(err)
	}
	sq, err := G.Square(th)
	if err != nil {
		return nil, nil, wrap(err)
	}
	ng, err := G.Neg(sq)
	if err != nil {
		return nil, nil, wrap(err)
	}
	d, err := G.Add(ng, s.Scalar(1))
	if err != nil {
		return nil, nil, wrap(err)
	}
	div, err := MatMul(q, d) // (1, N)
	if err != nil {
		return nil, nil, wrap(err)
	}
	if div, err = Reshape(div, n); err != nil {
		return nil, nil, wrap(err)
	}
	return v, div, nil
}

// twoHiddenDiv is channelDiv for two hidden layers in one convolution: substituting S²_e into the
// divergence,
//
//	div_i = Σ_y Σ_c tanh′(a²_{c,y}) Σ_{e′} Σ_{c′} K[c, c′, e′] tanh′(a¹_{c′,y+e′}),
//	K[c, c′, e′] = W²[c, c′, e′] Σ_e W³[i, c, e] W¹[c′, i, −(e + e′)],
//
// i.e. the sum over sites of tanh′(a²) times the 3×3 convolution of tanh′(a¹) with the weight-only kernel K.
func (n CNNField) twoHiddenDiv(s *Scope, ws []*G.Node, widths []int, dact []*G.Node, i int, idx1 func(int, offset) int) (*G.Node, error) {
	w1, w2 := widths[1], widths[2]
	var sum *G.Node
	for _, e := range offsets(1) {
		i3 := make([]int, w2*w1*9)
		i1 := make([]int, w2*w1*9)
		for c := 0; c < w2; c++ {
			for c1 := 0; c1 < w1; c1++ {
				for _, e1 := range offsets(1) {
					k := (c*w1+c1)*9 + tap(e1)
					i3[k] = (i*w2+c)*9 + tap(e)
					i1[k] = idx1(c1, offset{e.r + e1.r, e.c + e1.c})
				}
			}
		}
		g3, err := gatherW(s, ws[2], i3, w2, w1, 3, 3)
		if err != nil {
			return nil, err
		}
		g1, err := gatherW(s, ws[0], i1, w2, w1, 3, 3)
		if err != nil {
			return nil, err
		}
		p, err := G.HadamardProd(g3, g1)
		if err != nil {
			return nil, err
		}
		if sum == nil {
			sum = p
		} else if sum, err = G.Add(sum, p); err != nil {
			return nil, err
		}
	}
	k, err := G.HadamardProd(ws[1], sum)
	if err != nil {
		return nil, err
	}
	pc, err := Conv2D(dact[0], k, ConvOpts{Pad: Periodic})
	if err != nil {
		return nil, err
	}
	prodNode, err := G.HadamardProd(dact[1], pc)
	if err != nil {
		return nil, err
	}
	ss, err := siteSums(prodNode)
	if err != nil {
		return nil, err
	}
	return SumAxis(ss, 1)
}
