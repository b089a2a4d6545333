package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// fusedCase builds y, ld of a RealNVP on x (dim, n) and the gradients of Σ w⊙y + Σ v⊙ld with respect to x
// and every parameter, and returns their values.
func fusedCase(t *testing.T, r *RealNVP, store *Store, x, w, v []float64, dim, n int, inverse bool) (vals map[string][]float64) {
	t.Helper()
	g := G.NewGraph()
	s := NewScope(g, store)
	xn := s.Input("x", dim, n)
	var y, ld *G.Node
	var err error
	if inverse {
		y, ld, err = r.Inverse(s, xn)
	} else {
		y, ld, err = r.Forward(s, xn)
	}
	if err != nil {
		t.Fatal(err)
	}
	dt := store.Dtype()
	wy, _ := G.HadamardProd(y, G.NewConstant(NewDense(dt, []int{dim, n}, w), G.WithName("w")))
	vl, _ := G.HadamardProd(ld, G.NewConstant(NewDense(dt, []int{n}, v), G.WithName("v")))
	a, _ := G.Sum(wy)
	b, _ := G.Sum(vl)
	loss, _ := G.Add(a, b)
	names, params := s.Params()
	grads, err := G.Grad(loss, append([]*G.Node{xn}, params...)...)
	if err != nil {
		t.Fatal(err)
	}
	vals = map[string][]float64{}
	reads := map[string]*G.Value{}
	keep := func(name string, n *G.Node) {
		var val G.Value
		reads[name] = &val
		G.Read(n, reads[name])
	}
	keep("y", y)
	keep("ld", ld)
	keep("grad/x", grads[0])
	for i, nm := range names {
		keep("grad/"+nm, grads[i+1])
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := G.Let(xn, NewDense(dt, []int{dim, n}, x)); err != nil {
		t.Fatal(err)
	}
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	for k, p := range reads {
		vals[k] = ValueFloats(*p)
	}
	return vals
}

// The fused op computes exactly what the graph of elementary ops computes: outputs, log-dets and every
// gradient, in both directions. float64: 1e-10 relative (rounding differs only in summation order);
// float32: 2e-4 relative (fast exp/tanh are a few ulp from the float64-evaluated reference ops).
func TestFusedRealNVPMatchesUnfused(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		for _, inverse := range []bool{false, true} {
			dim, n := 8, 37
			rng := rand.New(rand.NewPCG(4, 5))
			mk := func(unfused bool) *RealNVP {
				r := &RealNVP{Dim: dim, Couplings: 5, Unfused: unfused,
					S: MLP{Hidden: []int{7, 6}, Activation: "elu"},
					T: MLP{Hidden: []int{7, 6}, Activation: "elu", ZeroLast: true}}
				mr := rand.New(rand.NewPCG(9, 9))
				for i := 0; i < 3; i++ {
					r.Splits = append(r.Splits, RandomHalfSplit(mr, dim))
				}
				return r
			}
			fused, ref := mk(false), mk(true)
			if !fused.fusable() || ref.fusable() {
				t.Fatal("fusable() wrong")
			}
			store := NewStore(dt, 1)
			rv := func(k int, sc float64) []float64 {
				out := make([]float64, k)
				for i := range out {
					out[i] = sc * rng.NormFloat64()
					if dt == tensor.Float32 {
						out[i] = float64(float32(out[i]))
					}
				}
				return out
			}
			x, w, v := rv(dim*n, 1), rv(dim*n, 1), rv(n, 1)
			_ = fusedCase(t, ref, store, x, w, v, dim, n, inverse) // creates the parameters
			store.Perturb(rng, 0.4)
			want := fusedCase(t, ref, store, x, w, v, dim, n, inverse)
			got := fusedCase(t, fused, store, x, w, v, dim, n, inverse)
			tol := 1e-10
			if dt == tensor.Float32 {
				tol = 2e-4
			}
			for k, wv := range want {
				gv, ok := got[k]
				if !ok {
					t.Errorf("%v inverse=%v: fused graph has no %s", dt, inverse, k)
					continue
				}
				scale := 0.0
				for _, a := range wv {
					scale = math.Max(scale, math.Abs(a))
				}
				for i := range wv {
					if d := math.Abs(gv[i] - wv[i]); d > tol*(1+scale) {
						t.Errorf("%v inverse=%v: %s[%d] fused %.12g, reference %.12g", dt, inverse, k, i, gv[i], wv[i])
						break
					}
				}
			}
			if len(got) != len(want) {
				t.Errorf("fused has %d values, reference %d", len(got), len(want))
			}
		}
	}
}

func BenchmarkFusedVsUnfused(b *testing.B) {
	for _, unfused := range []bool{false, true} {
		b.Run(fmt.Sprintf("unfused=%v", unfused), func(b *testing.B) {
			r := &RealNVP{Dim: 4, Couplings: 10, Unfused: unfused,
				S: MLP{Hidden: []int{10, 10, 10}, Activation: "elu"},
				T: MLP{Hidden: []int{10, 10, 10}, Activation: "elu", ZeroLast: true}}
			mr := rand.New(rand.NewPCG(9, 9))
			for i := 0; i < 5; i++ {
				r.Splits = append(r.Splits, RandomHalfSplit(mr, 4))
			}
			store := NewStore(tensor.Float32, 1)
			g := G.NewGraph()
			s := NewScope(g, store)
			n := 4096
			xn := s.Input("x", 4, n)
			y, ld, _ := r.Inverse(s, xn)
			a, _ := G.Sum(y)
			c, _ := G.Sum(ld)
			loss, _ := G.Add(a, c)
			_, params := s.Params()
			if _, err := G.Grad(loss, params...); err != nil {
				b.Fatal(err)
			}
			m := G.NewTapeMachine(g)
			defer m.Close()
			xv := NewDense(tensor.Float32, []int{4, n}, nil)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				G.Let(xn, xv)
				if err := m.RunAll(); err != nil {
					b.Fatal(err)
				}
				m.Reset()
			}
		})
	}
}
