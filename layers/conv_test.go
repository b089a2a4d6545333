package layers_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/layers/layerstest"
)

// naiveConv is the textbook direct loop: out[n,o,y,x] = b[o] + Σ w[o,i,a,c]·x[n,i,s·y+d·a−ph, s·x+d·c−pw],
// indices wrapped (periodic) or skipped (zero), with PyTorch's output-size formula for zero padding.
func naiveConv(x []float64, xs [4]int, w []float64, ws [4]int, b []float64, o layers.ConvOpts) ([]float64, [4]int) {
	s, d := max(o.Stride, 1), max(o.Dilation, 1)
	B, C, H, W := xs[0], xs[1], xs[2], xs[3]
	Co, kh, kw := ws[0], ws[2], ws[3]
	ph, pw := d*(kh-1)/2, d*(kw-1)/2
	Ho, Wo := H/s, W/s
	if o.Pad == layers.Zero {
		Ho = (H+2*ph-d*(kh-1)-1)/s + 1
		Wo = (W+2*pw-d*(kw-1)-1)/s + 1
	}
	out := make([]float64, B*Co*Ho*Wo)
	for n := 0; n < B; n++ {
		for oc := 0; oc < Co; oc++ {
			for y := 0; y < Ho; y++ {
				for xx := 0; xx < Wo; xx++ {
					sum := 0.0
					if b != nil {
						sum = b[oc]
					}
					for i := 0; i < C; i++ {
						for a := 0; a < kh; a++ {
							for c := 0; c < kw; c++ {
								iy, ix := s*y+d*a-ph, s*xx+d*c-pw
								if o.Pad == layers.Periodic {
									iy, ix = ((iy%H)+H)%H, ((ix%W)+W)%W
								} else if iy < 0 || iy >= H || ix < 0 || ix >= W {
									continue
								}
								sum += w[((oc*C+i)*kh+a)*kw+c] * x[((n*C+i)*H+iy)*W+ix]
							}
						}
					}
					out[((n*Co+oc)*Ho+y)*Wo+xx] = sum
				}
			}
		}
	}
	return out, [4]int{B, Co, Ho, Wo}
}

// naiveConvT is the transposed convolution as a scatter (each input pixel spreads its kernel onto the
// fine grid): x (B, Cin, H, W), w (Cin, Cout, kh, kw) → (B, Cout, s·H, s·W).
func naiveConvT(x []float64, xs [4]int, w []float64, ws [4]int, o layers.ConvOpts) ([]float64, [4]int) {
	s, d := max(o.Stride, 1), max(o.Dilation, 1)
	B, C, H, W := xs[0], xs[1], xs[2], xs[3]
	Co, kh, kw := ws[1], ws[2], ws[3]
	ph, pw := d*(kh-1)/2, d*(kw-1)/2
	HH, WW := s*H, s*W
	out := make([]float64, B*Co*HH*WW)
	for n := 0; n < B; n++ {
		for i := 0; i < C; i++ {
			for y := 0; y < H; y++ {
				for xx := 0; xx < W; xx++ {
					v := x[((n*C+i)*H+y)*W+xx]
					for oc := 0; oc < Co; oc++ {
						for a := 0; a < kh; a++ {
							for c := 0; c < kw; c++ {
								Y, X := s*y+d*a-ph, s*xx+d*c-pw
								if o.Pad == layers.Periodic {
									Y, X = ((Y%HH)+HH)%HH, ((X%WW)+WW)%WW
								} else if Y < 0 || Y >= HH || X < 0 || X >= WW {
									continue
								}
								out[((n*Co+oc)*HH+Y)*WW+X] += v * w[((i*Co+oc)*kh+a)*kw+c]
							}
						}
					}
				}
			}
		}
	}
	return out, [4]int{B, Co, HH, WW}
}

type convCase struct {
	name      string
	x, w      [4]int // x (B, Cin, H, W); w (Cout, Cin, k, k), or (Cin, Cout, k, k) when transposed
	opts      layers.ConvOpts
	bias      bool
	transpose bool
}

var convCases = []convCase{
	{name: "periodic-5x7-k3", x: [4]int{2, 3, 5, 7}, w: [4]int{4, 3, 3, 3}, bias: true},
	{name: "zero-6x5-k3", x: [4]int{2, 2, 6, 5}, w: [4]int{3, 2, 3, 3}, opts: layers.ConvOpts{Pad: layers.Zero}, bias: true},
	{name: "periodic-6x10-k5", x: [4]int{2, 2, 6, 10}, w: [4]int{3, 2, 5, 5}},
	{name: "periodic-3x4-k5-wraps-twice", x: [4]int{1, 2, 3, 4}, w: [4]int{2, 2, 5, 5}, opts: layers.ConvOpts{Dilation: 2}},
	{name: "periodic-6x8-k3-d2", x: [4]int{2, 2, 6, 8}, w: [4]int{3, 2, 3, 3}, opts: layers.ConvOpts{Dilation: 2}, bias: true},
	{name: "zero-7x6-k3-d2", x: [4]int{2, 3, 7, 6}, w: [4]int{2, 3, 3, 3}, opts: layers.ConvOpts{Pad: layers.Zero, Dilation: 2}},
	{name: "periodic-6x4-k3-s2", x: [4]int{2, 3, 6, 4}, w: [4]int{4, 3, 3, 3}, opts: layers.ConvOpts{Stride: 2}, bias: true},
	{name: "zero-5x7-k3-s2", x: [4]int{2, 2, 5, 7}, w: [4]int{3, 2, 3, 3}, opts: layers.ConvOpts{Pad: layers.Zero, Stride: 2}},
	{name: "zero-6x6-k5-s2-d2", x: [4]int{1, 2, 6, 6}, w: [4]int{2, 2, 5, 5}, opts: layers.ConvOpts{Pad: layers.Zero, Stride: 2, Dilation: 2}},
	{name: "zero-4x5-k1", x: [4]int{2, 3, 4, 5}, w: [4]int{2, 3, 1, 1}, opts: layers.ConvOpts{Pad: layers.Zero}, bias: true},
	{name: "periodic-4x6-k1", x: [4]int{3, 4, 4, 6}, w: [4]int{3, 4, 1, 1}},
	{name: "transpose-periodic-3x2-s2", x: [4]int{2, 3, 3, 2}, w: [4]int{3, 2, 3, 3}, opts: layers.ConvOpts{Stride: 2}, transpose: true},
	{name: "transpose-zero-3x4-s2", x: [4]int{2, 2, 3, 4}, w: [4]int{2, 3, 3, 3}, opts: layers.ConvOpts{Pad: layers.Zero, Stride: 2}, transpose: true},
	{name: "transpose-zero-4x3-s1-d2", x: [4]int{1, 2, 4, 3}, w: [4]int{2, 3, 3, 3}, opts: layers.ConvOpts{Pad: layers.Zero, Dilation: 2}, transpose: true},
}

func (c convCase) shapes() [][]int {
	s := [][]int{c.x[:], c.w[:]}
	if c.bias {
		s = append(s, []int{c.w[0]})
	}
	return s
}

func (c convCase) build(in []*G.Node) (*G.Node, error) {
	switch {
	case c.transpose:
		return layers.ConvTranspose2D(in[0], in[1], c.opts)
	case c.bias:
		return layers.Conv2DBias(in[0], in[1], in[2], c.opts)
	default:
		return layers.Conv2D(in[0], in[1], c.opts)
	}
}

func (c convCase) naive(v [][]float64) ([]float64, [4]int) {
	if c.transpose {
		return naiveConvT(v[0], c.x, v[1], c.w, c.opts)
	}
	var b []float64
	if c.bias {
		b = v[2]
	}
	return naiveConv(v[0], c.x, v[1], c.w, b, c.opts)
}

func (c convCase) values(seed uint64) [][]float64 {
	rng := rand.New(rand.NewPCG(seed, 7))
	var v [][]float64
	for _, s := range c.shapes() {
		v = append(v, randVals(rng, size(s), -1, 1))
	}
	return v
}

// runForward evaluates the case's op in the given dtype and returns its output as float64.
func runForward(t *testing.T, c convCase, dt tensor.Dtype, v [][]float64) ([]float64, []int) {
	t.Helper()
	g := G.NewGraph()
	var in []*G.Node
	for i, s := range c.shapes() {
		in = append(in, G.NewTensor(g, dt, len(s), G.WithShape(s...), G.WithName(fmt.Sprintf("in%d", i)),
			G.WithValue(layers.NewDense(dt, s, v[i]))))
	}
	y, err := c.build(in)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	m := layers.MustNewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	return layers.ValueFloats(y.Value()), y.Shape()
}

// TestConvMatchesNaive compares every op of the family with the direct loops above, in float64 (to
// rounding: sums of ≤ 100 terms of size ≤ 1, so 1e-12 absolute) and float32 (2e-5: ε₃₂ = 6e-8 times the
// same sums, with a margin for the different summation order).
func TestConvMatchesNaive(t *testing.T) {
	for _, mode := range layers.ConvKernelModes() {
		t.Run(mode, func(t *testing.T) {
			defer layers.UseConvKernels(mode)()
			testConvMatchesNaive(t)
		})
	}
}

func testConvMatchesNaive(t *testing.T) {
	for k, c := range convCases {
		v := c.values(uint64(k))
		want, ws := c.naive(v)
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			got, gs := runForward(t, c, dt, v)
			if fmt.Sprint(gs) != fmt.Sprint(ws[:]) {
				t.Fatalf("%s %v: shape %v, want %v", c.name, dt, gs, ws)
			}
			tol := 1e-12
			if dt == tensor.Float32 {
				tol = 2e-5
			}
			worst := 0.0
			for i := range want {
				worst = max(worst, math.Abs(got[i]-want[i]))
			}
			if worst > tol {
				t.Errorf("%s %v: max |op − naive| = %.3g > %g", c.name, dt, worst, tol)
			}
		}
	}
}

// convLoss is Σ r ⊙ tanh(op(x, w, b)) for a fixed random r: nonlinear, so its Hessian is not zero.
func convLoss(c convCase, seed uint64) layerstest.Build {
	return func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
		y, err := c.build(in)
		if err != nil {
			return nil, err
		}
		if y, err = G.Tanh(y); err != nil {
			return nil, err
		}
		return wsum(g, y, "r", seed)
	}
}

// TestConvGradients checks first and second order (Hessian-vector products in x, w and b) of every case
// against central finite differences (tolerance: see gradTol), with the vector kernels and the plain loops.
func TestConvGradients(t *testing.T) {
	for _, mode := range layers.ConvKernelModes() {
		for k, c := range convCases {
			t.Run(mode+"/"+c.name, func(t *testing.T) {
				defer layers.UseConvKernels(mode)()
				v := c.values(uint64(100 + k))
				layerstest.GradCheck(t, c.shapes(), v, convLoss(c, uint64(k)), gradTol)
				dir := c.values(uint64(200 + k))
				layerstest.SecondOrderCheck(t, c.shapes(), v, dir, convLoss(c, uint64(k)), gradTol)
			})
		}
	}
}

// TestConvForceLoss differentiates a loss built from the input gradient itself,
// L = Σ (∂/∂x Σ tanh(conv(x, w)))², with respect to x and w: the pattern of score matching and of
// gradient-based ODE velocity fields. The inner gradient runs through ConvBwdData, the outer one through
// all three ops of the family.
func TestConvForceLoss(t *testing.T) {
	for _, k := range []int{0, 1, 4, 6, 7} {
		c := convCases[k]
		c.bias = false
		t.Run(c.name, func(t *testing.T) {
			build := func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
				y, err := c.build(in)
				if err != nil {
					return nil, err
				}
				if y, err = G.Tanh(y); err != nil {
					return nil, err
				}
				e, err := G.Sum(y)
				if err != nil {
					return nil, err
				}
				f, err := layers.Grad(e, in[0])
				if err != nil {
					return nil, err
				}
				sq, err := G.Square(f[0])
				if err != nil {
					return nil, err
				}
				return G.Sum(sq)
			}
			layerstest.GradCheck(t, c.shapes(), c.values(uint64(300+k)), build, gradTol)
		})
	}
}

// TestUpsample2x checks nearest-neighbour up-sampling against its definition and its gradients (first and
// second order through the block-sum adjoint).
func TestUpsample2x(t *testing.T) {
	shape := []int{2, 3, 3, 5}
	rng := rand.New(rand.NewPCG(5, 5))
	x := randVals(rng, size(shape), -1, 1)
	g := G.NewGraph()
	xn := G.NewTensor(g, tensor.Float64, 4, G.WithShape(shape...), G.WithName("x"), G.WithValue(layers.NewDense(tensor.Float64, shape, x)))
	y, err := layers.Upsample2x(xn)
	if err != nil {
		t.Fatal(err)
	}
	m := layers.MustNewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(y.Shape()) != "(2, 3, 6, 10)" {
		t.Fatalf("shape %v", y.Shape())
	}
	got := layers.ValueFloats(y.Value())
	for p := 0; p < 6; p++ {
		for Y := 0; Y < 6; Y++ {
			for X := 0; X < 10; X++ {
				if want := x[(p*3+Y/2)*5+X/2]; got[(p*6+Y)*10+X] != want {
					t.Fatalf("plane %d (%d,%d): %g, want %g", p, Y, X, got[(p*6+Y)*10+X], want)
				}
			}
		}
	}
	build := func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
		y, err := layers.Upsample2x(in[0])
		if err != nil {
			return nil, err
		}
		if y, err = G.Tanh(y); err != nil {
			return nil, err
		}
		return wsum(g, y, "r", 3)
	}
	layerstest.GradCheck(t, [][]int{shape}, [][]float64{x}, build, gradTol)
	layerstest.SecondOrderCheck(t, [][]int{shape}, [][]float64{x}, [][]float64{randVals(rng, len(x), -1, 1)}, build, gradTol)
}

// TestConvLayer builds Conv layers from a Store, chains them (down-sampling, 1×1, transposed up-sampling)
// and checks shapes, the initialisation range and the error for a wrong channel count.
func TestConvLayer(t *testing.T) {
	store := layers.NewStore(tensor.Float32, 1)
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	x := s.Input("x", 4, 8, 12, 12)
	down, err := layers.NewConv(s, "conv0", 8, 16, 3, layers.ConvOpts{Stride: 2})
	if err != nil {
		t.Fatal(err)
	}
	mix, err := layers.NewConv(s, "conv1", 16, 16, 1, layers.ConvOpts{})
	if err != nil {
		t.Fatal(err)
	}
	up, err := layers.NewConvTranspose(s, "conv2", 16, 8, 3, layers.ConvOpts{Stride: 2})
	if err != nil {
		t.Fatal(err)
	}
	h := x
	for _, l := range []*layers.Conv{down, mix, up} {
		if h, err = l.Apply(h); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(h.Shape()) != "(4, 8, 12, 12)" {
		t.Errorf("down, mix, up: shape %v, want (4, 8, 12, 12)", h.Shape())
	}
	w, ok := store.Get("conv0/w")
	if !ok || fmt.Sprint(w.Shape()) != "(16, 8, 3, 3)" {
		t.Fatalf("conv0/w: %v %v", ok, w)
	}
	bound := math.Sqrt(6 / float64((8+16)*9)) // ConvInit(1): fan-in 8·9, fan-out 16·9
	for _, v := range layers.Float64s(w) {
		if math.Abs(v) > bound {
			t.Fatalf("conv0/w has %g outside ±%g", v, bound)
		}
	}
	if b, _ := store.Get("conv0/b"); layers.Float64s(b)[0] != 0 {
		t.Errorf("bias does not start at zero")
	}
	bad, err := layers.NewConv(s, "conv3", 8, 4, 3, layers.ConvOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Apply(mixOut(t, mix, down, x)); err == nil || err.Error() != "layers: conv3: input has 16 channels, want 8" {
		t.Errorf("wrong channel count: error %v", err)
	}
}

func mixOut(t *testing.T, l ...any) *G.Node {
	t.Helper()
	mix, down, x := l[0].(*layers.Conv), l[1].(*layers.Conv), l[2].(*G.Node)
	h, err := down.Apply(x)
	if err != nil {
		t.Fatal(err)
	}
	if h, err = mix.Apply(h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestConvErrors checks that bad geometry is reported at build time, naming the problem.
func TestConvErrors(t *testing.T) {
	g := G.NewGraph()
	node := func(name string, dt tensor.Dtype, s ...int) *G.Node {
		return G.NewTensor(g, dt, len(s), G.WithShape(s...), G.WithName(name))
	}
	x := node("x", tensor.Float64, 2, 3, 6, 5)
	for _, c := range []struct {
		name string
		err  func() error
		want string
	}{
		{"channels", func() error {
			_, e := layers.Conv2D(x, node("w1", tensor.Float64, 4, 2, 3, 3), layers.ConvOpts{})
			return e
		}, "has 3 channels"},
		{"even kernel", func() error {
			_, e := layers.Conv2D(x, node("w2", tensor.Float64, 4, 3, 2, 2), layers.ConvOpts{})
			return e
		}, "odd"},
		{"periodic stride", func() error {
			_, e := layers.Conv2D(x, node("w3", tensor.Float64, 4, 3, 3, 3), layers.ConvOpts{Stride: 2})
			return e
		}, "divisible"},
		{"dtype", func() error {
			_, e := layers.Conv2D(x, node("w4", tensor.Float32, 4, 3, 3, 3), layers.ConvOpts{})
			return e
		}, "dtype"},
		{"bias", func() error {
			_, e := layers.Conv2DBias(x, node("w5", tensor.Float64, 4, 3, 3, 3), node("b5", tensor.Float64, 3), layers.ConvOpts{})
			return e
		}, "bias"},
		{"rank", func() error {
			_, e := layers.Conv2D(node("x3", tensor.Float64, 2, 3, 6), node("w6", tensor.Float64, 4, 3, 3, 3), layers.ConvOpts{})
			return e
		}, "4 dimensions"},
		{"dilation", func() error {
			_, e := layers.Conv2D(x, node("w7", tensor.Float64, 4, 3, 3, 3), layers.ConvOpts{Dilation: -1})
			return e
		}, "dilation"},
	} {
		err := c.err()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

// naiveConvGrads returns ∂/∂x and ∂/∂w of Σ r ⊙ conv(x, w) by direct loops over the definition.
func naiveConvGrads(x []float64, xs [4]int, w []float64, ws [4]int, r []float64, o layers.ConvOpts) (dx, dw []float64) {
	s, d := max(o.Stride, 1), max(o.Dilation, 1)
	B, C, H, W := xs[0], xs[1], xs[2], xs[3]
	Co, kh, kw := ws[0], ws[2], ws[3]
	ph, pw := d*(kh-1)/2, d*(kw-1)/2
	_, ys := naiveConv(x, xs, w, ws, nil, o)
	Ho, Wo := ys[2], ys[3]
	dx, dw = make([]float64, len(x)), make([]float64, len(w))
	for n := 0; n < B; n++ {
		for oc := 0; oc < Co; oc++ {
			for y := 0; y < Ho; y++ {
				for xx := 0; xx < Wo; xx++ {
					rv := r[((n*Co+oc)*Ho+y)*Wo+xx]
					for i := 0; i < C; i++ {
						for a := 0; a < kh; a++ {
							for c := 0; c < kw; c++ {
								iy, ix := s*y+d*a-ph, s*xx+d*c-pw
								if o.Pad == layers.Periodic {
									iy, ix = ((iy%H)+H)%H, ((ix%W)+W)%W
								} else if iy < 0 || iy >= H || ix < 0 || ix >= W {
									continue
								}
								wi, xi := ((oc*C+i)*kh+a)*kw+c, ((n*C+i)*H+iy)*W+ix
								dx[xi] += rv * w[wi]
								dw[wi] += rv * x[xi]
							}
						}
					}
				}
			}
		}
	}
	return dx, dw
}

// TestConvLargeMatchesNaive covers what the small FD cases cannot: rows longer than one vector (with a
// partial last vector), rows of exactly one float32 vector (the forward kernel's unmasked stores, with
// filler vectors and missing channels writing to its scratch), channel counts that are not multiples of
// the kernels' blocks (8 and 4 output channels, 3 and 6 taps) and several images per buffer fill. It compares the output and both gradients of
// Σ r ⊙ conv(x, w) with direct loops (tolerances as in TestConvMatchesNaive, scaled for the sums of up to
// ~2000 terms of the weight gradient: 1e-10 in float64, 2e-3 relative to the largest entry in float32).
func TestConvLargeMatchesNaive(t *testing.T) {
	cases := []convCase{
		{name: "periodic-37x9-k3", x: [4]int{3, 5, 9, 37}, w: [4]int{11, 5, 3, 3}},
		{name: "zero-20x20-k3-s2", x: [4]int{2, 6, 20, 20}, w: [4]int{9, 6, 3, 3}, opts: layers.ConvOpts{Pad: layers.Zero, Stride: 2}},
		{name: "periodic-20x20-k5-d2", x: [4]int{2, 3, 20, 20}, w: [4]int{8, 3, 5, 5}, opts: layers.ConvOpts{Dilation: 2}},
		{name: "periodic-10x6-k1", x: [4]int{40, 7, 6, 10}, w: [4]int{5, 7, 1, 1}},
		{name: "zero-16x5-k3", x: [4]int{2, 4, 5, 16}, w: [4]int{10, 4, 3, 3}, opts: layers.ConvOpts{Pad: layers.Zero}},
		{name: "zero-1x3-k5-d2", x: [4]int{2, 2, 1, 3}, w: [4]int{3, 2, 5, 5}, opts: layers.ConvOpts{Pad: layers.Zero, Dilation: 2}},
		{name: "periodic-1x2-k3", x: [4]int{2, 2, 1, 2}, w: [4]int{3, 2, 3, 3}},
		{name: "zero-1x1-k3-s2", x: [4]int{3, 2, 1, 1}, w: [4]int{2, 2, 3, 3}, opts: layers.ConvOpts{Pad: layers.Zero, Stride: 2}},
		{name: "zero-33x40-k5-s2", x: [4]int{1, 3, 33, 40}, w: [4]int{10, 3, 5, 5}, opts: layers.ConvOpts{Pad: layers.Zero, Stride: 2}},
		{name: "periodic-34x36-k3-s2-d3", x: [4]int{1, 2, 34, 36}, w: [4]int{3, 2, 3, 3}, opts: layers.ConvOpts{Stride: 2, Dilation: 3}},
		// One and two output channels (the narrow forward path), as the last layer of a score network.
		{name: "periodic-16x16-k3-cout1", x: [4]int{5, 6, 16, 16}, w: [4]int{1, 6, 3, 3}},
		{name: "zero-9x37-k3-cout2", x: [4]int{2, 5, 9, 37}, w: [4]int{2, 5, 3, 3}, opts: layers.ConvOpts{Pad: layers.Zero}},
		{name: "periodic-7x5-k5-d2-cout1", x: [4]int{3, 3, 7, 5}, w: [4]int{1, 3, 5, 5}, opts: layers.ConvOpts{Dilation: 2}},
		// Narrow maps run over whole padded planes ("virtual rows", AVX-512): 8×8 as in the U-Net's
		// coarsest level, a group spanning several images, channels not a multiple of the kernels' blocks.
		{name: "zero-8x8-k3-virtual", x: [4]int{20, 12, 8, 8}, w: [4]int{10, 12, 3, 3}, opts: layers.ConvOpts{Pad: layers.Zero}},
		{name: "periodic-6x11-k3-virtual", x: [4]int{3, 5, 6, 11}, w: [4]int{9, 5, 3, 3}},
	}
	for _, mode := range layers.ConvKernelModes() {
		for k, c := range cases {
			for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
				t.Run(fmt.Sprintf("%s/%s/%v", mode, c.name, dt), func(t *testing.T) {
					defer layers.UseConvKernels(mode)()
					v := c.values(uint64(500 + k))
					want, ys := c.naive(v)
					rng := rand.New(rand.NewPCG(uint64(k), 1))
					r := randVals(rng, len(want), -1, 1)
					wdx, wdw := naiveConvGrads(v[0], c.x, v[1], c.w, r, c.opts)
					g := G.NewGraph()
					x := G.NewTensor(g, dt, 4, G.WithShape(c.x[:]...), G.WithName("x"), G.WithValue(layers.NewDense(dt, c.x[:], v[0])))
					w := G.NewTensor(g, dt, 4, G.WithShape(c.w[:]...), G.WithName("w"), G.WithValue(layers.NewDense(dt, c.w[:], v[1])))
					rn := G.NewTensor(g, dt, 4, G.WithShape(ys[:]...), G.WithName("r"), G.WithValue(layers.NewDense(dt, ys[:], r)))
					y, err := layers.Conv2D(x, w, c.opts)
					if err != nil {
						t.Fatal(err)
					}
					p, err := G.HadamardProd(y, rn)
					if err != nil {
						t.Fatal(err)
					}
					loss, err := G.Sum(p)
					if err != nil {
						t.Fatal(err)
					}
					grads, err := layers.Grad(loss, x, w)
					if err != nil {
						t.Fatal(err)
					}
					m := layers.MustNewTapeMachine(g)
					defer m.Close()
					if err := m.RunAll(); err != nil {
						t.Fatal(err)
					}
					for _, cmp := range []struct {
						what      string
						got, want []float64
					}{{"output", layers.ValueFloats(y.Value()), want}, {"dx", layers.ValueFloats(grads[0].Value()), wdx}, {"dw", layers.ValueFloats(grads[1].Value()), wdw}} {
						scale, worst := 1.0, 0.0
						for i := range cmp.want {
							scale = max(scale, math.Abs(cmp.want[i]))
							worst = max(worst, math.Abs(cmp.got[i]-cmp.want[i]))
						}
						tol := 1e-10
						if dt == tensor.Float32 {
							tol = 2e-3 * scale
						}
						if worst > tol {
							t.Errorf("%s: max deviation %.3g > %.3g", cmp.what, worst, tol)
						}
					}
				})
			}
		}
	}
}

// TestConvNetSecondOrder checks a small score-network-like chain — periodic 3×3 conv with bias, tanh,
// stride-2 down-sampling, 1×1 mixing, transposed stride-2 up-sampling with a residual and ChannelBias, and
// a nearest-neighbour up-sampled branch — at first and second order in all seven inputs (tolerance:
// gradTol).
func TestConvNetSecondOrder(t *testing.T) {
	shapes := [][]int{{2, 2, 4, 6}, {3, 2, 3, 3}, {3}, {4, 3, 3, 3}, {4, 4, 1, 1}, {4, 2, 3, 3}, {2}}
	rng := rand.New(rand.NewPCG(9, 9))
	vals, dirs := make([][]float64, len(shapes)), make([][]float64, len(shapes))
	for i, s := range shapes {
		vals[i], dirs[i] = randVals(rng, size(s), -0.8, 0.8), randVals(rng, size(s), -1, 1)
	}
	build := func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
		h, err := layers.Conv2DBias(in[0], in[1], in[2], layers.ConvOpts{})
		if err == nil {
			h, err = G.Tanh(h)
		}
		var d, u, up, l1, l2 *G.Node
		if err == nil {
			d, err = layers.Conv2D(h, in[3], layers.ConvOpts{Stride: 2}) // (2,4,2,3)
		}
		if err == nil {
			d, err = G.Tanh(d)
		}
		if err == nil {
			d, err = layers.Conv2D(d, in[4], layers.ConvOpts{})
		}
		if err == nil {
			u, err = layers.ConvTranspose2D(d, in[5], layers.ConvOpts{Stride: 2}) // (2,2,4,6)
		}
		if err == nil {
			u, err = G.Add(u, in[0])
		}
		if err == nil {
			u, err = layers.ChannelBias(u, in[6])
		}
		if err == nil {
			u, err = G.Tanh(u)
		}
		if err == nil {
			l1, err = wsum(g, u, "r1", 1)
		}
		if err == nil {
			up, err = layers.Upsample2x(d) // (2,4,4,6)
		}
		if err == nil {
			up, err = G.Tanh(up)
		}
		if err == nil {
			l2, err = wsum(g, up, "r2", 2)
		}
		if err != nil {
			return nil, err
		}
		return G.Add(l1, l2)
	}
	layerstest.GradCheck(t, shapes, vals, build, gradTol)
	layerstest.SecondOrderCheck(t, shapes, vals, dirs, build, gradTol)
}
