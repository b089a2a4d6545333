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
	"rgflow/layers/bijectortest"
	"rgflow/layers/layerstest"
)

// hostNet evaluates feature-major networks on the host from a store's weights.
type hostNet struct {
	t     *testing.T
	store *layers.Store
	c     []float64 // (B, E) conditioning, sample-major
	b, e  int
}

func (h hostNet) param(name string) []float64 {
	p, ok := h.store.Get(name)
	if !ok {
		h.t.Fatalf("parameter %s missing (have %v)", name, h.store.Names())
	}
	return layers.Float64s(p)
}

// linear is W x + b (+ Wc c_{sample(col)} when cond) for x (in, n).
func (h hostNet) linear(prefix string, x []float64, in, out, n int, cond bool) []float64 {
	w, b := h.param(prefix+"/w"), h.param(prefix+"/b")
	var wc []float64
	if cond {
		wc = h.param(prefix + "/wc")
	}
	r := n / h.b
	y := make([]float64, out*n)
	for o := 0; o < out; o++ {
		for j := 0; j < n; j++ {
			s := b[o]
			for i := 0; i < in; i++ {
				s += w[o*in+i] * x[i*n+j]
			}
			for k := 0; k < len(wc)/out; k++ {
				s += wc[o*h.e+k] * h.c[(j/r)*h.e+k]
			}
			y[o*n+j] = s
		}
	}
	return y
}

func mapVals(x []float64, f func(float64) float64) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = f(v)
	}
	return y
}

func elu(v float64) float64 {
	if v > 0 {
		return v
	}
	return math.Expm1(v)
}

func swish(v float64) float64 { return v / (1 + math.Exp(-v)) }

func (h hostNet) mlp(prefix string, m layers.MLP, x []float64, in, out, n int) []float64 {
	widths := append(append([]int(nil), m.Hidden...), out)
	for i, w := range widths {
		x = h.linear(fmt.Sprintf("%s/l%d", prefix, i), x, in, w, n, i == 0 && h.c != nil)
		if i < len(widths)-1 {
			x = mapVals(x, elu)
		}
		in = w
	}
	return x
}

func (h hostNet) resmlp(prefix string, m layers.ResMLP, x []float64, in, out, n int) []float64 {
	cond := h.c != nil
	x = h.linear(prefix+"/in", x, in, m.Width, n, cond)
	for b := 0; b < m.Blocks; b++ {
		f := mapVals(x, swish)
		f = h.linear(fmt.Sprintf("%s/res%d/l0", prefix, b), f, m.Width, m.Width, n, cond)
		f = mapVals(f, swish)
		f = h.linear(fmt.Sprintf("%s/res%d/l1", prefix, b), f, m.Width, m.Width, n, false)
		for i := range x {
			x[i] = (x[i] + f[i]) / math.Sqrt2
		}
	}
	return h.linear(prefix+"/out", mapVals(x, swish), m.Width, out, n, false)
}

func TestConditionedNetworks(t *testing.T) {
	const in, out, b, e, r = 3, 2, 2, 4, 3 // 3 columns per sample
	n := b * r
	rng := rand.New(rand.NewPCG(11, 1))
	x := randVals(rng, in*n, -1, 1)
	c := randVals(rng, b*e, -1, 1)
	nets := []struct {
		name string
		net  layers.CondConditioner
		host func(h hostNet) []float64
	}{
		{"mlp", layers.MLP{Hidden: []int{5, 4}, Activation: "elu", ZeroLast: true}, nil},
		{"resmlp", layers.ResMLP{Width: 5, Blocks: 2, ZeroLast: true}, nil},
	}
	nets[0].host = func(h hostNet) []float64 { return h.mlp("net", nets[0].net.(layers.MLP), x, in, out, n) }
	nets[1].host = func(h hostNet) []float64 { return h.resmlp("net", nets[1].net.(layers.ResMLP), x, in, out, n) }
	for _, tc := range nets {
		t.Run(tc.name, func(t *testing.T) {
			store := layers.NewStore(tensor.Float64, 3)
			apply := func(in []*G.Node) (*G.Node, error) {
				s := layers.NewScope(in[0].Graph(), store).Sub("net")
				return tc.net.ApplyCond(s, in[0], in[1], out)
			}
			shapes := [][]int{{in, n}, {b, e}}
			evalNodes(t, tensor.Float64, shapes, [][]float64{x, c}, apply) // create the parameters
			store.Perturb(rand.New(rand.NewPCG(4, 4)), 0.4)
			got := evalNodes(t, tensor.Float64, shapes, [][]float64{x, c}, apply)
			// Sums of ≤ 10 products through ≤ 6 layers: float64 rounding, ≤ 1e-14.
			compareVals(t, got, tc.host(hostNet{t: t, store: store, c: c, b: b, e: e}), 1e-12)

			// Without c: the unconditioned network, with no "wc" parameter.
			plain := layers.NewStore(tensor.Float64, 3)
			got = evalNodes(t, tensor.Float64, [][]int{{in, n}}, [][]float64{x}, func(in []*G.Node) (*G.Node, error) {
				return tc.net.Apply(layers.NewScope(in[0].Graph(), plain).Sub("net"), in[0], out)
			})
			for _, name := range plain.Names() {
				if strings.HasSuffix(name, "/wc") {
					t.Errorf("unconditioned network has a conditioning weight %s", name)
				}
				w, _ := store.Get(name)
				if err := plain.Set(name, w.Shape(), layers.Float64s(w)); err != nil {
					t.Fatal(err)
				}
			}
			got = evalNodes(t, tensor.Float64, [][]int{{in, n}}, [][]float64{x}, func(in []*G.Node) (*G.Node, error) {
				return tc.net.Apply(layers.NewScope(in[0].Graph(), plain).Sub("net"), in[0], out)
			})
			compareVals(t, got, tc.host(hostNet{t: t, store: plain, b: b, e: e}), 1e-12)

			// Gradients with respect to x and c, first and second order.
			build := func(g *G.ExprGraph, nodes []*G.Node) (*G.Node, error) {
				y, err := apply(nodes)
				if err != nil {
					return nil, err
				}
				return aliasLoss(g, nodes[0], y, 41)
			}
			vals := [][]float64{x, c}
			layerstest.GradCheck(t, shapes, vals, build, gradTol)
			layerstest.SecondOrderCheck(t, shapes, vals, [][]float64{randVals(rng, len(x), -1, 1), randVals(rng, len(c), -1, 1)}, build, gradTol)
		})
	}
}

func TestConditioningScalarPerSample(t *testing.T) {
	// c of shape (B) is the same as (B, 1).
	rng := rand.New(rand.NewPCG(12, 1))
	x := randVals(rng, 3*4, -1, 1)
	c := randVals(rng, 2, -1, 1)
	net := layers.MLP{Hidden: []int{4}, Activation: "elu"}
	run := func(cshape []int) []float64 {
		store := layers.NewStore(tensor.Float64, 5)
		return evalNodes(t, tensor.Float64, [][]int{{3, 4}, cshape}, [][]float64{x, c}, func(in []*G.Node) (*G.Node, error) {
			return net.ApplyCond(layers.NewScope(in[0].Graph(), store), in[0], in[1], 2)
		})
	}
	a, b := run([]int{2}), run([]int{2, 1})
	compareVals(t, a, b, 0)
}

func TestConditioningErrors(t *testing.T) {
	g := G.NewGraph()
	s := layers.NewScope(g, layers.NewStore(tensor.Float64, 1))
	x := G.NewTensor(g, tensor.Float64, 2, G.WithShape(3, 5), G.WithName("x"))
	c := G.NewTensor(g, tensor.Float64, 2, G.WithShape(2, 4), G.WithName("c"))
	if _, err := (layers.MLP{Hidden: []int{4}}).ApplyCond(s.Sub("m"), x, c, 2); err == nil || !strings.Contains(err.Error(), "5 columns") {
		t.Errorf("5 columns for 2 samples: error %v", err)
	}
	if _, err := (layers.Conditioned{}).Apply(s, x, 2); err == nil || !strings.Contains(err.Error(), "nil network") {
		t.Errorf("nil network: error %v", err)
	}
}

// condBlocks is a BlockLayer whose block bijector is a RealNVP conditioned on a per-sample vector
// c_b = (cos(b+1), sin(b+1)·k, …), built as a graph constant of the input's batch, so the conformance
// suite can drive it like any bijector (its Jacobian check runs on sample 0 alone, which keeps c_0).
type condBlocks struct {
	hier layers.Hierarchy
	e    int
	net  func(c *G.Node) *layers.RealNVP
}

func (cb condBlocks) cond(s *layers.Scope, batch int) *G.Node {
	v := make([]float64, batch*cb.e)
	for b := 0; b < batch; b++ {
		for k := 0; k < cb.e; k++ {
			v[b*cb.e+k] = math.Cos(float64((b+1)*(k+1))) * 1.5
		}
	}
	return G.NewConstant(layers.NewDense(s.Dtype(), []int{batch, cb.e}, v), G.In(s.Graph()), G.WithName(fmt.Sprintf("cond%d", batch)))
}

func (cb condBlocks) layer(s *layers.Scope, x *G.Node) *layers.BlockLayer {
	return &layers.BlockLayer{Name: "blocks", Hier: cb.hier, Level: 0, Channels: 1, Inner: cb.net(cb.cond(s, x.Shape()[0]))}
}

func (cb condBlocks) Forward(s *layers.Scope, x *G.Node) (*G.Node, *G.Node, error) {
	return cb.layer(s, x).Forward(s, x)
}

func (cb condBlocks) Inverse(s *layers.Scope, z *G.Node) (*G.Node, *G.Node, error) {
	return cb.layer(s, z).Inverse(s, z)
}

func TestConditionedCouplingConformance(t *testing.T) {
	// A conditioned coupling inside a block layer (columns = sample·blocks + block) is a bijector of x
	// for every c: the whole conformance suite, including a non-zero gradient for every conditioning
	// weight.
	hier, err := layers.NewHierarchy(4, 2)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(13, 1))
	splits := []layers.Split{layers.RandomHalfSplit(rng, 4), layers.RandomHalfSplit(rng, 4)}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		cb := condBlocks{hier: hier, e: 3, net: func(c *G.Node) *layers.RealNVP {
			return &layers.RealNVP{Dim: 4, Couplings: 3, Splits: splits,
				S: layers.Conditioned{Net: layers.MLP{Hidden: []int{6}, Activation: "elu"}, C: c},
				T: layers.Conditioned{Net: layers.ResMLP{Width: 6, Blocks: 1, ZeroLast: true}, C: c}}
		}}
		bijectortest.Run(t, bijectortest.Case{Name: "conditioned-blocks/" + dt.String(), Bijector: cb, Shape: []int{3, 1, 4, 4}, Dtype: dt, Seed: 9})
	}
}

func TestConditioningIsPerSample(t *testing.T) {
	// Changing sample 1's conditioning vector changes sample 1's output and nothing else.
	hier, _ := layers.NewHierarchy(4, 2)
	rng := rand.New(rand.NewPCG(14, 1))
	splits := []layers.Split{layers.RandomHalfSplit(rng, 4)}
	store := layers.NewStore(tensor.Float64, 2)
	x := randVals(rng, 3*16, -1, 1)
	run := func(c []float64) []float64 {
		return evalNodes(t, tensor.Float64, [][]int{{3, 1, 4, 4}, {3, 2}}, [][]float64{x, c}, func(in []*G.Node) (*G.Node, error) {
			nvp := &layers.RealNVP{Dim: 4, Couplings: 2, Splits: splits,
				S: layers.Conditioned{Net: layers.MLP{Hidden: []int{6}, Activation: "tanh"}, C: in[1]},
				T: layers.Conditioned{Net: layers.MLP{Hidden: []int{6}, Activation: "tanh"}, C: in[1]}}
			bl := &layers.BlockLayer{Name: "b", Hier: hier, Channels: 1, Inner: nvp}
			z, _, err := bl.Forward(layers.NewScope(in[0].Graph(), store), in[0])
			return z, err
		})
	}
	c := []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6}
	run(c)
	store.Perturb(rand.New(rand.NewPCG(3, 3)), 0.5)
	z0 := run(c)
	c[2] += 1
	z1 := run(c)
	for i := range z0 {
		changed := z0[i] != z1[i]
		if sample := i / 16; changed != (sample == 1) {
			t.Fatalf("element %d (sample %d): changed = %v", i, sample, changed)
		}
	}
}

func TestConditionedWeightNormGradients(t *testing.T) {
	// The weight-normalised ResMLP (RG-Flow's conditioner) with conditioning, first and second order.
	rng := rand.New(rand.NewPCG(15, 1))
	const in, b, r, e = 4, 2, 2, 3
	store := layers.NewStore(tensor.Float64, 6)
	net := layers.ResMLP{Width: 5, Blocks: 1, WeightNorm: true}
	build := func(g *G.ExprGraph, nodes []*G.Node) (*G.Node, error) {
		y, err := net.ApplyCond(layers.NewScope(g, store).Sub("net"), nodes[0], nodes[1], 3)
		if err != nil {
			return nil, err
		}
		return aliasLoss(g, nodes[0], y, 42)
	}
	shapes := [][]int{{in, b * r}, {b, e}}
	vals := [][]float64{randVals(rng, in*b*r, -1, 1), randVals(rng, b*e, -1, 1)}
	layerstest.GradCheck(t, shapes, vals, build, gradTol)
	layerstest.SecondOrderCheck(t, shapes, vals, [][]float64{randVals(rng, in*b*r, -1, 1), randVals(rng, b*e, -1, 1)}, build, gradTol)
	if _, ok := store.Get("net/res0/l0/wc"); !ok {
		t.Errorf("no conditioning weight in the residual block: %v", store.Names())
	}
}
