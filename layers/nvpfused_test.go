package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers/layerstest"
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
	grads, err := Grad(loss, append([]*G.Node{xn}, params...)...)
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
	m := MustNewTapeMachine(g)
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
			// One pass over all 37 columns, and passes of 8 columns (four whole ones and a last one of 5).
			for _, chunk := range []int{0, 8} {
				fused.chunk = chunk
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
							t.Errorf("%v inverse=%v chunk=%d: %s[%d] fused %.12g, reference %.12g", dt, inverse, chunk, k, i, gv[i], wv[i])
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
			if _, err := Grad(loss, params...); err != nil {
				b.Fatal(err)
			}
			m := MustNewTapeMachine(g)
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

// fusedPair returns a fused stack and its unfused reference with the same splits and nets.
func fusedPair(dim int) (fused, ref *RealNVP) {
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
	return mk(false), mk(true)
}

func randVec(rng *rand.Rand, k int) []float64 {
	out := make([]float64, k)
	for i := range out {
		out[i] = rng.NormFloat64()
	}
	return out
}

// closeTo reports the first entry of got that differs from want by more than tol·(1 + max|want|).
func nearRel(got, want []float64, tol float64) (int, bool) {
	scale := 0.0
	for _, a := range want {
		scale = math.Max(scale, math.Abs(a))
	}
	if len(got) != len(want) {
		return -1, false
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > tol*(1+scale) {
			return i, false
		}
	}
	return 0, true
}

// A fused graph with its machine, built once and run many times.
type fusedMachine struct {
	x     *G.Node
	reads map[string]*G.Value
	m     G.VM
	dim   int
	n     int
}

func newFusedMachine(t *testing.T, r *RealNVP, store *Store, dim, n int, inverse, withGrad bool, w, v []float64) *fusedMachine {
	t.Helper()
	g := G.NewGraph()
	s := NewScope(g, store)
	fm := &fusedMachine{x: s.Input("x", dim, n), reads: map[string]*G.Value{}, dim: dim, n: n}
	var y, ld *G.Node
	var err error
	if inverse {
		y, ld, err = r.Inverse(s, fm.x)
	} else {
		y, ld, err = r.Forward(s, fm.x)
	}
	if err != nil {
		t.Fatal(err)
	}
	keep := func(name string, n *G.Node) {
		var val G.Value
		fm.reads[name] = &val
		G.Read(n, fm.reads[name])
	}
	keep("y", y)
	keep("ld", ld)
	if withGrad {
		wy, _ := G.HadamardProd(y, G.NewConstant(NewDense(store.Dtype(), []int{dim, n}, w), G.WithName("w")))
		vl, _ := G.HadamardProd(ld, G.NewConstant(NewDense(store.Dtype(), []int{n}, v), G.WithName("v")))
		a, _ := G.Sum(wy)
		b, _ := G.Sum(vl)
		loss, _ := G.Add(a, b)
		names, params := s.Params()
		grads, err := G.Grad(loss, append([]*G.Node{fm.x}, params...)...)
		if err != nil {
			t.Fatal(err)
		}
		keep("grad/x", grads[0])
		for i, nm := range names {
			keep("grad/"+nm, grads[i+1])
		}
	}
	fm.m = MustNewTapeMachine(g)
	return fm
}

func (fm *fusedMachine) run(x []float64, dt tensor.Dtype) (map[string][]float64, error) {
	defer fm.m.Reset()
	if err := G.Let(fm.x, NewDense(dt, []int{fm.dim, fm.n}, x)); err != nil {
		return nil, err
	}
	if err := fm.m.RunAll(); err != nil {
		return nil, err
	}
	out := map[string][]float64{}
	for k, p := range fm.reads {
		out[k] = ValueFloats(*p)
	}
	return out, nil
}

// Graphs that share one store run in any interleaving, also concurrently: two training machines (forward
// and backward) and a sampling machine (inverse, forward only, another batch) give, round after round,
// the values and gradients of the unfused reference for their own inputs. float64; 1e-10 relative as in
// TestFusedRealNVPMatchesUnfused.
func TestFusedMachinesShareStore(t *testing.T) {
	const dim, n, nSample = 8, 37, 11
	dt := tensor.Float64
	fused, ref := fusedPair(dim)
	store := NewStore(dt, 3)
	rng := rand.New(rand.NewPCG(6, 7))
	w, v := randVec(rng, dim*n), randVec(rng, n)
	_ = fusedCase(t, ref, store, w, w, v, dim, n, false) // creates the parameters
	store.Perturb(rng, 0.4)
	train1 := newFusedMachine(t, fused, store, dim, n, false, true, w, v)
	train2 := newFusedMachine(t, fused, store, dim, n, false, true, w, v)
	sampler := newFusedMachine(t, fused, store, dim, nSample, true, false, nil, nil)
	defer train1.m.Close()
	defer train2.m.Close()
	defer sampler.m.Close()
	check := func(what string, got, want map[string][]float64) {
		t.Helper()
		for k, wv := range want {
			if i, ok := nearRel(got[k], wv, 1e-10); !ok {
				t.Errorf("%s: %s differs from the reference at %d", what, k, i)
			}
		}
	}
	for round := 0; round < 3; round++ {
		x1, x2, z := randVec(rng, dim*n), randVec(rng, dim*n), randVec(rng, dim*nSample)
		want1 := fusedCase(t, ref, store, x1, w, v, dim, n, false)
		want2 := fusedCase(t, ref, store, x2, w, v, dim, n, false)
		wantS := fusedCase(t, ref, store, z, make([]float64, dim*nSample), make([]float64, nSample), dim, nSample, true)
		delete(wantS, "grad/x")
		for k := range wantS {
			if k != "y" && k != "ld" {
				delete(wantS, k)
			}
		}
		if round < 2 { // one after the other, in changing order
			s, err := sampler.run(z, dt)
			if err != nil {
				t.Fatal(err)
			}
			check("sampler", s, wantS)
			first, second, x1f, x2f, w1, w2 := train1, train2, x1, x2, want1, want2
			if round == 1 {
				first, second, x1f, x2f, w1, w2 = train2, train1, x2, x1, want2, want1
			}
			g1, err := first.run(x1f, dt)
			if err != nil {
				t.Fatal(err)
			}
			if s, err = sampler.run(z, dt); err != nil {
				t.Fatal(err)
			}
			g2, err := second.run(x2f, dt)
			if err != nil {
				t.Fatal(err)
			}
			check("first trainer", g1, w1)
			check("second trainer", g2, w2)
			check("sampler between trainers", s, wantS)
			continue
		}
		// Concurrently: each machine in its own goroutine, the store only read.
		type res struct {
			vals map[string][]float64
			err  error
		}
		ch := make([]chan res, 3)
		for i, job := range []struct {
			fm *fusedMachine
			x  []float64
		}{{train1, x1}, {train2, x2}, {sampler, z}} {
			ch[i] = make(chan res, 1)
			go func() {
				var r res
				for k := 0; k < 5 && r.err == nil; k++ {
					r.vals, r.err = job.fm.run(job.x, dt)
				}
				ch[i] <- r
			}()
		}
		for i, want := range []map[string][]float64{want1, want2, wantS} {
			r := <-ch[i]
			if r.err != nil {
				t.Fatal(r.err)
			}
			check(fmt.Sprintf("concurrent machine %d", i), r.vals, want)
		}
	}
}

// The backward op reads the activations of the forward run it is given, not those of the forward run
// that happened last: running the forward op on another batch between a forward run and its backward
// changes nothing. A reader given activations that were already released fails instead of computing.
func TestFusedBackwardUsesItsOwnForward(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		const dim, n = 8, 23
		fused, ref := fusedPair(dim)
		store := NewStore(dt, 5)
		rng := rand.New(rand.NewPCG(8, 9))
		w, v := randVec(rng, dim*n), randVec(rng, n)
		x1, x2 := randVec(rng, dim*n), randVec(rng, dim*n)
		_ = fusedCase(t, ref, store, x1, w, v, dim, n, false)
		store.Perturb(rng, 0.4)
		want := fusedCase(t, ref, store, x1, w, v, dim, n, false)

		// Build the fused graph with its gradient, then drive its ops by hand.
		g := G.NewGraph()
		s := NewScope(g, store)
		xn := s.Input("x", dim, n)
		y, ld, err := fused.Forward(s, xn)
		if err != nil {
			t.Fatal(err)
		}
		sy, _ := G.Sum(y)
		sl, _ := G.Sum(ld)
		loss, _ := G.Add(sy, sl)
		names, params := s.Params()
		if _, err := G.Grad(loss, params...); err != nil {
			t.Fatal(err)
		}
		var fwd *nvpOp
		var out *nvpOutOp
		var grad *nvpGradOp
		for _, nd := range g.AllNodes() {
			switch op := nd.Op().(type) {
			case *nvpOp:
				fwd = op
			case *nvpOutOp:
				out = op
			case *nvpGradOp:
				grad = op
			}
		}
		if fwd == nil || out == nil || grad == nil {
			t.Fatal("the fused graph lacks its forward, unpack or backward op")
		}
		ps := make([]G.Value, len(names))
		for i, nm := range names {
			ps[i], _ = store.Get(nm)
		}
		dense := func(shape []int, d []float64) G.Value { return NewDense(dt, shape, d) }
		a1, err := fwd.Do(dense([]int{dim, n}, x1)) // the parameters come from fwd's parameter nodes
		if err != nil {
			t.Fatal(err)
		}
		a2, err := fwd.Do(dense([]int{dim, n}, x2)) // another batch in between
		if err != nil {
			t.Fatal(err)
		}
		gOut := dense([]int{dim + 1, n}, append(append([]float64(nil), w...), v...))
		packed, err := grad.Do(a1, gOut)
		if err != nil {
			t.Fatal(err)
		}
		yl, err := out.Do(append(append([]G.Value{dense([]int{dim, n}, x1)}, ps...), a1)...)
		if err != nil {
			t.Fatal(err)
		}
		tol := 1e-10 // as in TestFusedRealNVPMatchesUnfused
		if dt == tensor.Float32 {
			tol = 2e-4
		}
		got := ValueFloats(yl)
		if i, ok := nearRel(got[:dim*n], want["y"], tol); !ok {
			t.Errorf("%v: y differs from the reference at %d", dt, i)
		}
		if i, ok := nearRel(got[dim*n:], want["ld"], tol); !ok {
			t.Errorf("%v: log-det differs from the reference at %d", dt, i)
		}
		pg := ValueFloats(packed)
		if i, ok := nearRel(pg[:dim*n], want["grad/x"], tol); !ok {
			t.Errorf("%v: grad/x differs from the reference at %d", dt, i)
		}
		off := dim * n
		for _, nm := range names {
			wv := want["grad/"+nm]
			if i, ok := nearRel(pg[off:off+len(wv)], wv, tol); !ok {
				t.Errorf("%v: grad/%s differs from the reference at %d", dt, nm, i)
			}
			off += len(wv)
		}
		// Both readers of a1 have read it: its buffer is released, and another read fails.
		if _, err := grad.Do(a1, gOut); err == nil {
			t.Errorf("%v: a backward run on released activations succeeded", dt)
		}
		// a2 is still intact.
		if _, err := out.Do(append(append([]G.Value{dense([]int{dim, n}, x2)}, ps...), a2)...); err != nil {
			t.Errorf("%v: unpacking the second run: %v", dt, err)
		}
	}
}

// The fused ops' gradient with respect to the stack's input matches central finite differences, both
// directions (the parameter gradients are checked against the unfused graph above, whose ops have their
// own finite-difference tests). Tolerance 1e-6: see layerstest.Step.
func TestFusedRealNVPGradCheck(t *testing.T) {
	const dim, n = 8, 5
	fused, ref := fusedPair(dim)
	store := NewStore(tensor.Float64, 2)
	rng := rand.New(rand.NewPCG(2, 3))
	w, v, x := randVec(rng, dim*n), randVec(rng, n), randVec(rng, dim*n)
	_ = fusedCase(t, ref, store, x, w, v, dim, n, false)
	store.Perturb(rng, 0.3)
	for _, inverse := range []bool{false, true} {
		build := func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
			s := NewScope(g, store)
			apply := fused.Forward
			if inverse {
				apply = fused.Inverse
			}
			y, ld, err := apply(s, in[0])
			if err != nil {
				return nil, err
			}
			wy, _ := G.HadamardProd(y, G.NewConstant(NewDense(tensor.Float64, []int{dim, n}, w), G.WithName("w")))
			vl, _ := G.HadamardProd(ld, G.NewConstant(NewDense(tensor.Float64, []int{n}, v), G.WithName("v")))
			a, _ := G.Sum(wy)
			b, _ := G.Sum(vl)
			return G.Add(a, b)
		}
		layerstest.GradCheck(t, [][]int{{dim, n}}, [][]float64{x}, build, 1e-6)
	}
}
