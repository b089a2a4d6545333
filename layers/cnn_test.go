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

// convRef is the stride-1 convolution of the CNN's layers by the direct loop of naiveConv (conv_test.go):
// y[n,o] = bias[o] + Σ w[o,i,a,c]·x[n,i,y+a−p,x+c−p], p = (k−1)/2, indices wrapped (periodic) or dropped.
func convRef(x []float64, b, cin, h, w int, wt, bias []float64, cout, k int, periodic bool) []float64 {
	pad := layers.Zero
	if periodic {
		pad = layers.Periodic
	}
	y, _ := naiveConv(x, [4]int{b, cin, h, w}, wt, [4]int{cout, cin, k, k}, bias, layers.ConvOpts{Pad: pad})
	return y
}

// cnnRef evaluates a CNN without symmetrisation on the host from the store's weights.
func cnnRef(t *testing.T, store *layers.Store, net layers.CNN, x []float64, shape []int, emb []float64, e int) []float64 {
	get := func(name string) []float64 {
		p, ok := store.Get("cnn/" + name)
		if !ok {
			t.Fatalf("parameter %s missing (have %v)", name, store.Names())
		}
		return layers.Float64s(p)
	}
	opt := func(name string) []float64 {
		if net.NoBias {
			return nil
		}
		return get(name)
	}
	b, cin, h, w := shape[0], shape[1], shape[2], shape[3]
	k := net.Kernel
	periodic := net.Pad == layers.Periodic
	act := map[layers.Activation]func(float64) float64{"tanh": math.Tanh, "swish": swish, "elu": elu, "": elu}[net.Activation]
	for i, width := range net.Hidden {
		x = convRef(x, b, cin, h, w, get(fmt.Sprintf("conv%d/w", i)), opt(fmt.Sprintf("conv%d/b", i)), width, k, periodic)
		if net.Groups > 0 {
			bias := opt(fmt.Sprintf("norm%d/bias", i))
			if bias == nil {
				bias = make([]float64, width)
			}
			x = groupNormRef(x, []int{b, width, h, w}, net.Groups, layers.DefaultGroupNormEps, get(fmt.Sprintf("norm%d/scale", i)), bias)
		}
		if emb != nil {
			fw, fb := get(fmt.Sprintf("film%d/w", i)), get(fmt.Sprintf("film%d/b", i))
			gamma, beta := make([]float64, b*width), make([]float64, b*width)
			for s := 0; s < b; s++ {
				for c := 0; c < width; c++ {
					g, be := fb[c], fb[width+c]
					for j := 0; j < e; j++ {
						g += fw[c*e+j] * emb[s*e+j]
						be += fw[(width+c)*e+j] * emb[s*e+j]
					}
					gamma[s*width+c], beta[s*width+c] = g, be
				}
			}
			x = modulateRef(x, b, width, h*w, gamma, beta)
		}
		x = mapVals(x, act)
		cin = width
	}
	return convRef(x, b, cin, h, w, get("out/w"), opt("out/b"), net.Out, k, periodic)
}

// cnnFunc is a layerstest.FieldFunc running net (with a fixed embedding per sample when emb is set) on
// the store's weights, in the store's dtype.
func cnnFunc(store *layers.Store, net layers.CNN, emb []float64, e int) layerstest.FieldFunc {
	return func(x []float64, shape []int) ([]float64, []int, error) {
		g := G.NewGraph()
		s := layers.NewScope(g, store)
		dt := store.Dtype()
		xn := G.NewTensor(g, dt, 4, G.WithShape(shape...), G.WithName("x"), G.WithValue(layers.NewDense(dt, shape, x)))
		var en *G.Node
		if emb != nil {
			en = G.NewTensor(g, dt, 2, G.WithShape(shape[0], e), G.WithName("emb"), G.WithValue(layers.NewDense(dt, []int{shape[0], e}, emb)))
		}
		y, err := net.ApplyCond(s.Sub("cnn"), xn, en)
		if err != nil {
			return nil, nil, err
		}
		m := layers.MustNewTapeMachine(g)
		defer m.Close()
		if err := m.RunAll(); err != nil {
			return nil, nil, err
		}
		return layers.Float64s(y.Value().(tensor.Tensor)), []int(y.Shape()), nil
	}
}

// trained returns a store holding net's parameters, perturbed away from their initialisation.
func trained(t *testing.T, net layers.CNN, shape []int, emb []float64, e int, seed uint64) *layers.Store {
	t.Helper()
	store := layers.NewStore(tensor.Float64, seed)
	if _, _, err := cnnFunc(store, net, emb, e)(make([]float64, size(shape)), shape); err != nil {
		t.Fatal(err)
	}
	store.Perturb(rand.New(rand.NewPCG(seed, 2)), 0.3)
	return store
}

func TestCNNForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 1))
	shape := []int{2, 2, 4, 5}
	x := randVals(rng, size(shape), -1, 1)
	const e = 3
	emb := randVals(rng, 2*e, -1, 1)
	for _, tc := range []struct {
		net  layers.CNN
		cond bool
	}{
		{layers.CNN{In: 2, Out: 1, Hidden: []int{3}, Kernel: 3, Activation: "tanh"}, false},
		{layers.CNN{In: 2, Out: 2, Hidden: []int{4, 2}, Kernel: 3, Pad: layers.Zero, Activation: "swish", Groups: 2}, true},
		{layers.CNN{In: 2, Out: 1, Width: 2, Depth: 2, Kernel: 5, Activation: "elu", Groups: 1, NoBias: true}, true},
	} {
		var ce []float64
		if tc.cond {
			ce = emb
		}
		net := tc.net
		store := trained(t, net, shape, ce, e, 7)
		got, gotShape, err := cnnFunc(store, net, ce, e)(x, shape)
		if err != nil {
			t.Fatal(err)
		}
		if gotShape[1] != net.Out || gotShape[2] != 4 || gotShape[3] != 5 {
			t.Fatalf("output shape %v", gotShape)
		}
		if len(net.Hidden) == 0 {
			net.Hidden = []int{net.Width, net.Width}
		}
		// Sums of ≤ 50 products through ≤ 3 layers in float64: ≤ 1e-14 relative.
		want := cnnRef(t, store, net, x, shape, ce, e)
		compareVals(t, got, want, 1e-12)

		// float32, same weights (rounded): inputs and weights rounded to 2⁻²⁴, sums of ≤ 50 O(0.3) terms and
		// GroupNorm's division by a spread of O(0.1–1): 1e-4 absolute on O(1) outputs.
		s32 := layers.NewStore(tensor.Float32, 0)
		for _, name := range store.Names() {
			p, _ := store.Get(name)
			v := layers.Float64s(p)
			s32.Param(name, p.Shape(), func(_ *rand.Rand, _ []int, d []float64) { copy(d, v) })
		}
		got32, _, err := cnnFunc(s32, tc.net, ce, e)(x, shape)
		if err != nil {
			t.Fatal(err)
		}
		compareVals(t, got32, want, 1e-4)
	}
}

func TestCNNIdentityPieces(t *testing.T) {
	// ZeroLast: the output is exactly 0 at initialisation; the parameter count is the sum of the layers'.
	net := layers.CNN{In: 1, Out: 2, Hidden: []int{4, 4}, Kernel: 3, Activation: "tanh", Groups: 2, ZeroLast: true}
	store := layers.NewStore(tensor.Float64, 1)
	y, _, err := cnnFunc(store, net, []float64{0.5, -1}, 1)([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9}, []int{2, 1, 3, 3})
	if err != nil {
		t.Fatal(err)
	}
	if m := maxAbsVals(y); m != 0 {
		t.Errorf("ZeroLast output max |y| = %g, want 0", m)
	}
	// conv0 4·1·9+4, norm0 8, film0 8·1+8, conv1 4·4·9+4, norm1 8, film1 16, out 2·4·9+2.
	if want := 40 + 8 + 16 + 148 + 8 + 16 + 74; store.NumParams() != want {
		t.Errorf("%d parameters, want %d (%v)", store.NumParams(), want, store.Names())
	}
}

func maxAbsVals(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(x))
	}
	return m
}

func TestCNNGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(32, 1))
	shape := []int{2, 1, 3, 3}
	const e = 2
	net := layers.CNN{In: 1, Out: 1, Hidden: []int{2}, Kernel: 3, Activation: "swish", Groups: 1}
	store := trained(t, net, shape, make([]float64, 2*e), e, 9)
	for _, sym := range []bool{false, true} {
		net.D4, net.Odd, net.SymmetricKernels = sym, sym, sym
		build := func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
			y, err := net.ApplyCond(layers.NewScope(g, store).Sub("cnn"), in[0], in[1])
			if err != nil {
				return nil, err
			}
			return aliasLoss(g, in[0], y, 61)
		}
		shapes := [][]int{shape, {2, e}}
		vals := [][]float64{randVals(rng, size(shape), -1, 1), randVals(rng, 2*e, -1, 1)}
		layerstest.GradCheck(t, shapes, vals, build, gradTol)
		layerstest.SecondOrderCheck(t, shapes, vals, [][]float64{randVals(rng, size(shape), -1, 1), randVals(rng, 2*e, -1, 1)}, build, gradTol)
	}
}

// equivTol: f(gx) and g f(x) run the same arithmetic except for the order of the GroupNorm sums and of
// the symmetrisation average: a few float64 roundings of O(1) values, 1e-12.
const equivTol = 1e-12

func TestCNNEquivariance(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 1))
	shape := []int{2, 2, 6, 6}
	x := randVals(rng, size(shape), -1, 1)
	const e = 3
	emb := randVals(rng, 2*e, -1, 1)
	translations := []layers.LatticeTransform{layers.Translation{DX: 1}, layers.Translation{DY: -2}, layers.Translation{DX: 3, DY: 5}}
	var d4 []layers.LatticeTransform
	for _, g := range layers.D4Group()[1:] {
		d4 = append(d4, g)
	}
	pass := func(t *testing.T, f layerstest.FieldFunc, gs []layers.LatticeTransform) {
		t.Helper()
		for _, g := range gs {
			layerstest.CheckEquivariance(t, f, x, shape, g, equivTol)
		}
	}
	fail := func(t *testing.T, f layerstest.FieldFunc, gs []layers.LatticeTransform) {
		t.Helper()
		for _, g := range gs {
			if len(layerstest.Failures(t, func(tb testing.TB) { layerstest.CheckEquivariance(tb, f, x, shape, g, equivTol) })) == 0 {
				t.Errorf("equivariant under %v, which this network should not be", g)
			}
		}
	}
	base := layers.CNN{In: 2, Out: 2, Hidden: []int{4, 4}, Kernel: 3, Activation: "tanh", Groups: 2}

	t.Run("periodic", func(t *testing.T) {
		net := base
		f := cnnFunc(trained(t, net, shape, emb, e, 1), net, emb, e)
		pass(t, f, translations)
		fail(t, f, append(append([]layers.LatticeTransform(nil), d4...), layers.SignFlip{}))
	})
	t.Run("zero-padding", func(t *testing.T) {
		net := base
		net.Pad = layers.Zero
		fail(t, cnnFunc(trained(t, net, shape, emb, e, 2), net, emb, e), translations)
	})
	t.Run("periodic-D4", func(t *testing.T) {
		net := base
		net.D4 = true
		f := cnnFunc(trained(t, net, shape, emb, e, 3), net, emb, e)
		pass(t, f, d4)
		pass(t, f, translations)
		fail(t, f, []layers.LatticeTransform{layers.SignFlip{}})
	})
	t.Run("zero-padding-D4", func(t *testing.T) {
		net := base
		net.Pad, net.D4 = layers.Zero, true
		f := cnnFunc(trained(t, net, shape, emb, e, 4), net, emb, e)
		pass(t, f, d4)
		fail(t, f, translations[:1])
	})
	t.Run("symmetric-kernels", func(t *testing.T) {
		for _, pad := range []layers.Padding{layers.Periodic, layers.Zero} {
			net := base
			net.Pad, net.SymmetricKernels = pad, true
			f := cnnFunc(trained(t, net, shape, emb, e, 8), net, emb, e)
			pass(t, f, d4)
			if pad == layers.Periodic {
				pass(t, f, translations)
			}
		}
	})
	t.Run("odd", func(t *testing.T) {
		net := base
		net.Odd = true
		f := cnnFunc(trained(t, net, shape, emb, e, 5), net, emb, e)
		pass(t, f, []layers.LatticeTransform{layers.SignFlip{}, layers.Sequence{layers.SignFlip{}, layers.Translation{DX: 2}}})
	})
	t.Run("odd-by-construction", func(t *testing.T) {
		// No biases, tanh, no conditioning: odd without averaging (GroupNorm without a shift is odd).
		net := base
		net.NoBias = true
		f := cnnFunc(trained(t, net, shape, nil, 0, 6), net, nil, 0)
		pass(t, f, []layers.LatticeTransform{layers.SignFlip{}})
		withBias := base
		fail(t, cnnFunc(trained(t, withBias, shape, nil, 0, 6), withBias, nil, 0), []layers.LatticeTransform{layers.SignFlip{}})
	})
	t.Run("D4-odd", func(t *testing.T) {
		net := base
		net.D4, net.Odd = true, true
		f := cnnFunc(trained(t, net, shape, emb, e, 7), net, emb, e)
		pass(t, f, append(append([]layers.LatticeTransform(nil), d4...), layers.SignFlip{}, layers.Sequence{layers.D4{Rot: 1, Flip: true}, layers.SignFlip{}, layers.Translation{DX: 1, DY: 1}}))
	})
}

func TestCNNErrors(t *testing.T) {
	g := G.NewGraph()
	s := layers.NewScope(g, layers.NewStore(tensor.Float64, 1))
	x := G.NewTensor(g, tensor.Float64, 4, G.WithShape(2, 1, 4, 6), G.WithName("x"))
	emb := G.NewTensor(g, tensor.Float64, 2, G.WithShape(3, 2), G.WithName("emb"))
	for _, tc := range []struct {
		net  layers.CNN
		emb  *G.Node
		want string
	}{
		{layers.CNN{In: 2, Out: 1, Hidden: []int{2}}, nil, "want (B, 2, H, W)"},
		{layers.CNN{In: 1, Out: 1, Hidden: []int{2}, Kernel: 4}, nil, "kernel size 4"},
		{layers.CNN{In: 1, Out: 1, Hidden: []int{3}, Groups: 2}, nil, "2 groups do not divide width 3"},
		{layers.CNN{In: 1, Out: 1, Hidden: []int{2}, D4: true}, nil, "square lattice"},
		{layers.CNN{In: 1, Out: 1, Hidden: []int{0}}, nil, "width 0"},
		{layers.CNN{In: 1, Out: 0}, nil, "channels 1 → 0"},
		{layers.CNN{In: 1, Out: 1, Hidden: []int{2}}, emb, "want (2, E)"},
		{layers.CNN{In: 1, Out: 1, Hidden: []int{2}, Activation: "gelu"}, nil, "unknown activation"},
	} {
		_, err := tc.net.ApplyCond(s, x, tc.emb)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.net, err, tc.want)
		}
	}
}
