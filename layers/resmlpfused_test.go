package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers/layerstest"
)

// resPair returns a fused residual-MLP stack (RG-Flow's joint conditioner) and its unfused reference with
// the same splits and net: 8 rows (a 2-channel 2×2 block, checkerboard split), 3 couplings.
func resPair(width, blocks int, weightNorm bool) (fused, ref *RealNVP) {
	mk := func(unfused bool) *RealNVP {
		return &RealNVP{Dim: 8, Couplings: 3, Joint: true, Unfused: unfused,
			S:      ResMLP{Width: width, Blocks: blocks, WeightNorm: weightNorm, ZeroLast: true},
			Splits: []Split{CheckerboardSplit(2, 2), CheckerboardSplit(2, 2)}}
	}
	return mk(false), mk(true)
}

// roundVals rounds v to the precision of dt (so that float32 runs see exactly the inputs the reference sees).
func roundVals(dt tensor.Dtype, v []float64) []float64 {
	if dt == tensor.Float32 {
		for i := range v {
			v[i] = float64(float32(v[i]))
		}
	}
	return v
}

// The fused op computes what the graph of elementary ops computes: outputs, log-dets and the gradient with
// respect to x and every parameter, in both directions, with and without weight normalisation, with 0 and 2
// residual blocks, in one pass over all columns and in passes of 8 (four whole ones and one of 5). float64:
// 1e-10 relative to the largest entry (both evaluate the same float64 expressions and differ only in the
// order of sums and in the last ulp of exp, tanh and the sigmoid; measured: below 3e-15). float32: 2e-5
// relative (the two evaluate different float32 exp, tanh and sigmoid, a few ulp apart, and the differences
// grow through three couplings of products over widths up to 12; measured: below 1.2e-6, so 2e-5 leaves a
// margin of 16 for other kernels, e.g. the AVX2 or pure-Go ones, while a wrong term is O(1)).
func TestFusedResMLPMatchesUnfused(t *testing.T) {
	const dim, n = 8, 37
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		for _, wn := range []bool{true, false} {
			for _, blocks := range []int{0, 2} {
				for _, inverse := range []bool{false, true} {
					name := fmt.Sprintf("%v/weightnorm=%v/blocks=%d/inverse=%v", dt, wn, blocks, inverse)
					fused, ref := resPair(12, blocks, wn)
					if !fused.resFusable() || ref.resFusable() || fused.fusable() {
						t.Fatal("resFusable() wrong")
					}
					rng := rand.New(rand.NewPCG(4, 5))
					store := NewStore(dt, 1)
					x := roundVals(dt, randVec(rng, dim*n))
					w, v := roundVals(dt, randVec(rng, dim*n)), roundVals(dt, randVec(rng, n))
					_ = fusedCase(t, ref, store, x, w, v, dim, n, inverse) // creates the parameters
					store.Perturb(rng, 0.4)
					want := fusedCase(t, ref, store, x, w, v, dim, n, inverse)
					tol := 1e-10
					if dt == tensor.Float32 {
						tol = 2e-5
					}
					for _, chunk := range []int{0, 8} {
						fused.chunk = chunk
						got := fusedCase(t, fused, store, x, w, v, dim, n, inverse)
						if len(got) != len(want) {
							t.Errorf("%s: fused has %d values, reference %d", name, len(got), len(want))
						}
						worst := 0.0
						for k, wv := range want {
							gv, ok := got[k]
							if !ok {
								t.Errorf("%s: fused graph has no %s", name, k)
								continue
							}
							scale := 0.0
							for _, a := range wv {
								scale = math.Max(scale, math.Abs(a))
							}
							if len(gv) != len(wv) {
								t.Errorf("%s: %s has %d values fused, %d reference", name, k, len(gv), len(wv))
								continue
							}
							for i := range wv {
								d := math.Abs(gv[i]-wv[i]) / (1 + scale)
								worst = math.Max(worst, d)
								if d > tol {
									t.Errorf("%s chunk=%d: %s[%d] fused %.12g, reference %.12g", name, chunk, k, i, gv[i], wv[i])
									break
								}
							}
						}
						t.Logf("%s chunk=%d: largest relative difference %.2g", name, chunk, worst)
					}
				}
			}
		}
	}
}

// The fused ops' gradients match central finite differences of the loss Σ w⊙y + Σ v⊙ld: with respect to x
// (layerstest.GradCheck, tolerance 1e-6: see layerstest.Step) and with respect to a sample of the
// parameters (the first, last and a random entry of every parameter tensor; the same step and tolerance,
// float64), in both directions, with weight normalisation.
func TestFusedResMLPGradCheck(t *testing.T) {
	const dim, n = 8, 5
	fused, ref := resPair(6, 1, true)
	store := NewStore(tensor.Float64, 2)
	rng := rand.New(rand.NewPCG(2, 3))
	w, v, x := randVec(rng, dim*n), randVec(rng, n), randVec(rng, dim*n)
	_ = fusedCase(t, ref, store, x, w, v, dim, n, false)
	store.Perturb(rng, 0.3)
	loss := func(vals map[string][]float64) float64 {
		s := 0.0
		for i, a := range vals["y"] {
			s += w[i] * a
		}
		for i, a := range vals["ld"] {
			s += v[i] * a
		}
		return s
	}
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

		got := fusedCase(t, fused, store, x, w, v, dim, n, inverse)
		checked := 0
		for _, nm := range store.SortedNames() {
			p, _ := store.Get(nm)
			d := p.Data().([]float64)
			for _, i := range []int{0, len(d) - 1, rng.IntN(len(d))} {
				x0 := d[i]
				d[i] = x0 + layerstest.Step
				fp := loss(fusedCase(t, fused, store, x, w, v, dim, n, inverse))
				d[i] = x0 - layerstest.Step
				fm := loss(fusedCase(t, fused, store, x, w, v, dim, n, inverse))
				d[i] = x0
				fd := (fp - fm) / (2 * layerstest.Step)
				sym := got["grad/"+nm][i]
				if math.Abs(sym-fd) > 1e-6*math.Max(1, math.Max(math.Abs(sym), math.Abs(fd))) {
					t.Errorf("inverse=%v: ∂loss/∂%s[%d]: fused %.10g, finite differences %.10g", inverse, nm, i, sym, fd)
				}
				checked++
			}
		}
		if checked < 3*12 { // 3 couplings × (3 layers × v, g, b + scale)
			t.Errorf("only %d parameter entries checked", checked)
		}
	}
}

// layers.Grad refuses to differentiate through the fused op's backward pass (a force inside the loss, as in
// an objective that differentiates twice), naming RealNVP.Unfused, and accepts the same graph unfused.
func TestFusedResMLPRefusesSecondOrder(t *testing.T) {
	fused, ref := resPair(5, 1, true)
	for _, r := range []*RealNVP{fused, ref} {
		g := G.NewGraph()
		s := NewScope(g, NewStore(tensor.Float64, 1))
		x := s.Input("x", 8, 3)
		y, _, err := r.Forward(s, x)
		if err != nil {
			t.Fatal(err)
		}
		e := G.Must(G.Sum(G.Must(G.Square(y))))
		f, err := Grad(e, x)
		if err != nil {
			t.Fatal(err)
		}
		loss := G.Must(G.Sum(G.Must(G.Square(f[0]))))
		_, params := s.Params()
		_, err = Grad(loss, params...)
		switch {
		case r.Unfused && err != nil:
			t.Errorf("unfused: %v", err)
		case !r.Unfused && (err == nil || !strings.Contains(err.Error(), "Unfused")):
			t.Errorf("fused: error %v, want one pointing to RealNVP.Unfused", err)
		}
	}
}

// The backward op reads the activations of the forward run it is given: two training machines and an
// inverse (sampling) machine on one store, run one after the other in changing order and then concurrently,
// each give the reference's values and gradients for their own inputs; and activations read by all their
// readers are released (a further read fails).
func TestFusedResMLPMachinesShareStore(t *testing.T) {
	const dim, n, nSample = 8, 21, 9
	dt := tensor.Float64
	fused, ref := resPair(7, 1, true)
	store := NewStore(dt, 3)
	rng := rand.New(rand.NewPCG(6, 7))
	w, v := randVec(rng, dim*n), randVec(rng, n)
	_ = fusedCase(t, ref, store, w, w, v, dim, n, false)
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
			if i, ok := nearRel(got[k], wv, 1e-10); !ok { // as in TestFusedResMLPMatchesUnfused
				t.Errorf("%s: %s differs from the reference at %d", what, k, i)
			}
		}
	}
	x1, x2, z := randVec(rng, dim*n), randVec(rng, dim*n), randVec(rng, dim*nSample)
	want1 := fusedCase(t, ref, store, x1, w, v, dim, n, false)
	want2 := fusedCase(t, ref, store, x2, w, v, dim, n, false)
	all := fusedCase(t, ref, store, z, make([]float64, dim*nSample), make([]float64, nSample), dim, nSample, true)
	wantS := map[string][]float64{"y": all["y"], "ld": all["ld"]}
	for round := 0; round < 2; round++ {
		first, second, xa, xb, wa, wb := train1, train2, x1, x2, want1, want2
		if round == 1 {
			first, second, xa, xb, wa, wb = train2, train1, x2, x1, want2, want1
		}
		g1, err := first.run(xa, dt)
		if err != nil {
			t.Fatal(err)
		}
		s, err := sampler.run(z, dt)
		if err != nil {
			t.Fatal(err)
		}
		g2, err := second.run(xb, dt)
		if err != nil {
			t.Fatal(err)
		}
		check("first trainer", g1, wa)
		check("second trainer", g2, wb)
		check("sampler", s, wantS)
	}
	type res struct {
		vals map[string][]float64
		err  error
	}
	jobs := []struct {
		fm   *fusedMachine
		x    []float64
		want map[string][]float64
	}{{train1, x1, want1}, {train2, x2, want2}, {sampler, z, wantS}}
	ch := make([]chan res, len(jobs))
	for i, job := range jobs {
		ch[i] = make(chan res, 1)
		go func() {
			var r res
			for k := 0; k < 4 && r.err == nil; k++ {
				r.vals, r.err = job.fm.run(job.x, dt)
			}
			ch[i] <- r
		}()
	}
	for i, job := range jobs {
		r := <-ch[i]
		if r.err != nil {
			t.Fatal(r.err)
		}
		check(fmt.Sprintf("concurrent machine %d", i), r.vals, job.want)
	}

	// By hand: a forward run, another batch's forward run, then the first run's backward and unpacking.
	g := G.NewGraph()
	sc := NewScope(g, store)
	xn := sc.Input("x", dim, n)
	y, ld, err := fused.Forward(sc, xn)
	if err != nil {
		t.Fatal(err)
	}
	loss := G.Must(G.Add(G.Must(G.Sum(y)), G.Must(G.Sum(ld))))
	names, params := sc.Params()
	if _, err := G.Grad(loss, params...); err != nil {
		t.Fatal(err)
	}
	var fwd *resOp
	var out *resOutOp
	var grad *resGradOp
	for _, nd := range g.AllNodes() {
		switch op := nd.Op().(type) {
		case *resOp:
			fwd = op
		case *resOutOp:
			out = op
		case *resGradOp:
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
	a1, err := fwd.Do(append([]G.Value{NewDense(dt, []int{dim, n}, x1)}, ps...)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fwd.Do(append([]G.Value{NewDense(dt, []int{dim, n}, x2)}, ps...)...); err != nil {
		t.Fatal(err)
	}
	gOut := NewDense(dt, []int{dim + 1, n}, append(slices.Clone(w), v...))
	packed, err := grad.Do(append(append([]G.Value(nil), ps...), a1, gOut)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := out.Do(append(append([]G.Value{NewDense(dt, []int{dim, n}, x1)}, ps...), a1)...); err != nil {
		t.Fatal(err)
	}
	pg := ValueFloats(packed)
	if i, ok := nearRel(pg[:dim*n], want1["grad/x"], 1e-10); !ok {
		t.Errorf("by hand: grad/x differs from the reference at %d", i)
	}
	off := dim * n
	for _, nm := range names {
		wv := want1["grad/"+nm]
		if i, ok := nearRel(pg[off:off+len(wv)], wv, 1e-10); !ok {
			t.Errorf("by hand: grad/%s differs from the reference at %d", nm, i)
		}
		off += len(wv)
	}
	if _, err := grad.Do(append(append([]G.Value(nil), ps...), a1, gOut)...); err == nil || !strings.Contains(err.Error(), "released") {
		t.Errorf("a backward run on released activations: error %v, want one saying they were released", err)
	}
}

// The fused op of a training step of rgflow-small's level-0 block bijector (16 rows, 4 couplings, width 64,
// one residual block, weight norm, 2048 columns: batch 32 of 32×32 images in 4×4 blocks), against the graph.
func BenchmarkFusedResMLP(b *testing.B) {
	for _, cfg := range []struct {
		unfused bool
		chunk   int
	}{{false, 0}, {false, 256}, {false, 512}, {false, 2048}, {true, 0}} {
		unfused := cfg.unfused
		b.Run(fmt.Sprintf("unfused=%v/chunk=%d", unfused, cfg.chunk), func(b *testing.B) {
			r := &RealNVP{Dim: 16, Couplings: 4, Joint: true, Unfused: unfused, chunk: cfg.chunk,
				S:      ResMLP{Width: 64, Blocks: 1, WeightNorm: true, ZeroLast: true},
				Splits: []Split{CheckerboardSplit(1, 4), CheckerboardSplit(1, 4)}}
			store := NewStore(tensor.Float32, 1)
			g := G.NewGraph()
			s := NewScope(g, store)
			const n = 2048
			xn := s.Input("x", 16, n)
			y, ld, err := r.Forward(s, xn)
			if err != nil {
				b.Fatal(err)
			}
			loss := G.Must(G.Add(G.Must(G.Sum(y)), G.Must(G.Sum(ld))))
			_, params := s.Params()
			if _, err := Grad(loss, params...); err != nil {
				b.Fatal(err)
			}
			m := MustNewTapeMachine(g)
			defer m.Close()
			xv := NewDense(tensor.Float32, []int{16, n}, randVec(rand.New(rand.NewPCG(1, 2)), 16*n))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			for i := 0; i < b.N; i++ {
				if err := G.Let(xn, xv); err != nil {
					b.Fatal(err)
				}
				if err := m.RunAll(); err != nil {
					b.Fatal(err)
				}
				m.Reset()
			}
			if cpu := processCPU() - cpu0; cpu > 0 { // CPU time: a loaded machine's waits for a core not counted
				b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
			}
		})
	}
}

// The product and elementwise kernels of the fused op against direct loops, over lengths that cover the
// vector bodies and every remainder: the weight-gradient product to rounding (1e-12 relative in float64,
// 1e-5 in float32: sums of up to 70 products in another order), the elementwise kernels bit for bit
// (they round each operation as the loops do), and the fused swish/swish' kernel bit for bit against the
// Swish op's own kernels.
func TestFusedResMLPKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 7, 8, 9, 15, 16, 17, 33, 70} {
		for _, mk := range [][2]int{{4, 4}, {8, 12}, {5, 7}, {16, 3}, {3, 9}} {
			m, k := mk[0], mk[1]
			const ld, lo = 80, 3
			a, b := randVec(rng, m*ld), randVec(rng, k*ld)
			for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
				var got []float64
				c0 := randVec(rng, m*k)
				if dt == tensor.Float32 {
					a32, b32, c32 := f32s(a), f32s(b), f32s(c0)
					mulABtCols4x4(m, k, a32, b32, c32, ld, lo, lo+n)
					got = f64s(c32)
				} else {
					c := slices.Clone(c0)
					mulABtCols4x4(m, k, a, b, c, ld, lo, lo+n)
					got = c
				}
				tol := 1e-12
				if dt == tensor.Float32 {
					tol = 1e-5
				}
				for i := 0; i < m; i++ {
					for j := 0; j < k; j++ {
						want := c0[i*k+j]
						for q := lo; q < lo+n; q++ {
							want += a[i*ld+q] * b[j*ld+q]
						}
						if d := math.Abs(got[i*k+j] - want); d > tol*(1+math.Abs(want)+float64(n)) {
							t.Errorf("%v n=%d m=%d k=%d: C[%d,%d] = %g, want %g", dt, n, m, k, i, j, got[i*k+j], want)
						}
					}
				}
			}
		}
		x, y, z := randVec(rng, n), randVec(rng, n), randVec(rng, n)
		const s = 0.7071067811865476
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			if dt == tensor.Float32 {
				x32, y32, z32 := f32s(x), f32s(y), f32s(z)
				m, as, sm := slices.Clone(x32), slices.Clone(x32), slices.Clone(x32)
				mulRowsInPlace(m, y32, 1, n, 0, n)
				addScaleRows(as, y32, float32(s), 1, n, 0, n)
				scaleAddMulRows(sm, y32, z32, float32(s), 1, n, 0, n)
				for j := range x32 {
					if m[j] != x32[j]*y32[j] || as[j] != (x32[j]+y32[j])*float32(s) || sm[j] != float32(x32[j]*float32(s))+float32(y32[j]*z32[j]) {
						t.Fatalf("float32 n=%d: elementwise kernels differ from the loops at %d", n, j)
					}
				}
				sw, sd, wantA, wantD := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
				swishWithGrad(sw, sd, x32, 1, n, 0, n)
				applyAct32(wantA, x32, actSwish)
				applyAct32(wantD, x32, actSwishD1)
				if !slices.Equal(sw, wantA) || !slices.Equal(sd, wantD) {
					t.Errorf("float32 n=%d: swish and swish' differ from the Swish op's kernels", n)
				}
				continue
			}
			m, as, sm := slices.Clone(x), slices.Clone(x), slices.Clone(x)
			mulRowsInPlace(m, y, 1, n, 0, n)
			addScaleRows(as, y, s, 1, n, 0, n)
			scaleAddMulRows(sm, y, z, s, 1, n, 0, n)
			for j := range x {
				if m[j] != x[j]*y[j] || as[j] != (x[j]+y[j])*s || sm[j] != float64(x[j]*s)+float64(y[j]*z[j]) {
					t.Fatalf("float64 n=%d: elementwise kernels differ from the loops at %d", n, j)
				}
			}
			// float64 swish against the formulas (math.Exp; the fused op's exp is within 1 ulp).
			sw, sd := make([]float64, n), make([]float64, n)
			swishWithGrad(sw, sd, x, 1, n, 0, n)
			for j, v := range x {
				sg := 1 / (1 + math.Exp(-v))
				if math.Abs(sw[j]-v*sg) > 1e-15*(1+math.Abs(v)) || math.Abs(sd[j]-sg*(1+v*(1-sg))) > 1e-15 {
					t.Errorf("float64 swish(%g) = %g, %g, want %g, %g", v, sw[j], sd[j], v*sg, sg*(1+v*(1-sg)))
				}
			}
		}
	}
}

func f32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, a := range v {
		out[i] = float32(a)
	}
	return out
}

func f64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, a := range v {
		out[i] = float64(a)
	}
	return out
}
