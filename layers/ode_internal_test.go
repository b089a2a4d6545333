package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BenchmarkKernelField times one evaluation of the ode-gerdes velocity field (odd features φ, sin ωφ for
// ω = 1…4, whole-lattice D4 kernels) with its divergence, forward and backward (gradients for the
// weights and the field), at batch 256: the periodic convolution with a lattice-sized kernel against the
// circulant matrix product. Compare cpu-ns/op (the machine is shared).
func BenchmarkKernelField(b *testing.B) {
	for _, L := range []int{8, 16} {
		for _, circ := range []bool{false, true} {
			b.Run(fmt.Sprintf("L=%d/circulant=%v", L, circ), func(b *testing.B) {
				const batch = 256
				f := KernelField{Channels: 1, Freqs: []float64{1, 2, 3, 4}, Odd: true, D4: true, Circulant: circ}
				store := NewStore(tensor.Float64, 1)
				g := G.NewGraph()
				s := NewScope(g, store)
				shape := []int{batch, 1, L, L}
				x := s.Input("x", shape...)
				v, div, err := f.Velocity(s, x, 0.3)
				if err != nil {
					b.Fatal(err)
				}
				store.Perturb(rand.New(rand.NewPCG(1, 1)), 0.1)
				sq, _ := G.Square(v)
				sv, _ := G.Sum(sq)
				sd, _ := G.Sum(div)
				loss, _ := G.Add(sv, sd)
				_, params := s.Params()
				if _, err := Grad(loss, append(params, x)...); err != nil {
					b.Fatal(err)
				}
				m := MustNewTapeMachine(g)
				defer m.Close()
				xv := NewDense(tensor.Float64, shape, make([]float64, batch*L*L))
				cpu0 := processCPU()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := G.Let(x, xv); err != nil {
						b.Fatal(err)
					}
					if err := m.RunAll(); err != nil {
						b.Fatal(err)
					}
					m.Reset()
				}
				b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

func TestLinComb(t *testing.T) {
	// The gradients of Σ r ⊙ linComb(a, ca, b, cb) are ca·r and cb·r exactly (products by constants).
	const ca, cb = 0.75, -1.5
	shape := []int{2, 3, 4}
	r := make([]float64, 24)
	av := make([]float64, 24)
	for i := range r {
		r[i], av[i] = float64(i%7)-3, 0.1*float64(i)-1
	}
	store := NewStore(tensor.Float64, 1)
	g := G.NewGraph()
	s := NewScope(g, store)
	a, b := s.Input("a", shape...), s.Input("b", shape...)
	rc := G.NewConstant(NewDense(tensor.Float64, shape, r), G.In(g))
	l, err := linComb(a, ca, b, cb)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := G.HadamardProd(l, rc)
	cost, _ := G.Sum(p)
	grads, err := Grad(cost, a, b)
	if err != nil {
		t.Fatal(err)
	}
	var lv, ga, gb G.Value
	G.Read(l, &lv)
	G.Read(grads[0], &ga)
	G.Read(grads[1], &gb)
	m := MustNewTapeMachine(g)
	defer m.Close()
	G.Let(a, NewDense(tensor.Float64, shape, av))
	G.Let(b, NewDense(tensor.Float64, shape, r))
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	lvv, gav, gbv := ValueFloats(lv), ValueFloats(ga), ValueFloats(gb)
	for i := range r {
		if want := ca*av[i] + cb*r[i]; lvv[i] != want {
			t.Fatalf("linComb[%d] = %g, want %g", i, lvv[i], want)
		}
		if gav[i] != ca*r[i] || gbv[i] != cb*r[i] {
			t.Fatalf("gradients at %d: %g, %g, want %g, %g", i, gav[i], gbv[i], ca*r[i], cb*r[i])
		}
	}
}

// BenchmarkCNNField times one evaluation of the ode-cnn velocity field (two hidden layers of 16, odd) with
// its exact divergence, forward and backward, at batch 256 on 16×16; compare cpu-ns/op.
func BenchmarkCNNField(b *testing.B) {
	const batch, L = 256, 16
	f := CNNField{Channels: 1, Hidden: []int{16, 16}, Odd: true}
	store := NewStore(tensor.Float64, 1)
	g := G.NewGraph()
	s := NewScope(g, store)
	shape := []int{batch, 1, L, L}
	x := s.Input("x", shape...)
	v, div, err := f.Velocity(s, x, 0.3)
	if err != nil {
		b.Fatal(err)
	}
	store.Perturb(rand.New(rand.NewPCG(1, 1)), 0.1)
	sq, _ := G.Square(v)
	sv, _ := G.Sum(sq)
	sd, _ := G.Sum(div)
	loss, _ := G.Add(sv, sd)
	_, params := s.Params()
	if _, err := Grad(loss, append(params, x)...); err != nil {
		b.Fatal(err)
	}
	m := MustNewTapeMachine(g)
	defer m.Close()
	xv := NewDense(tensor.Float64, shape, make([]float64, batch*L*L))
	cpu0 := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := G.Let(x, xv); err != nil {
			b.Fatal(err)
		}
		if err := m.RunAll(); err != nil {
			b.Fatal(err)
		}
		m.Reset()
	}
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

func TestKernelFeatureDerivatives(t *testing.T) {
	// Each order of the fused feature op against central differences of the order below (step 1e-5:
	// truncation ≈ h²/6·|h⁽ᵏ⁺³⁾| ≲ 1e-10·ω³ with ω ≤ 2.5; rounding ≈ 1e-16/1e-5), and order 0 against
	// math.Sin / math.Cos directly.
	x := []float64{-1.3, 0.2, 0.7, 2.9, -0.4, 1.1}
	for _, freqs := range [][]float64{{1, 2.5}, {1, 2}} {
		checkFeatureDerivatives(t, freqs, x)
	}
}

// checkFeatureDerivatives runs the checks of TestKernelFeatureDerivatives for two frequencies; {1, 2} takes
// the angle-addition path, {1, 2.5} one sincos per frequency.
func checkFeatureDerivatives(t *testing.T, freqs []float64, x []float64) {
	eval := func(order int, xs []float64, odd bool) []float64 {
		op := featOp{order: order, freqs: freqs, odd: odd, b: 2, c: 1, v: 3}
		out, err := op.Do(NewDense(tensor.Float64, []int{2, 1, 3}, xs))
		if err != nil {
			t.Fatal(err)
		}
		return ValueFloats(out)
	}
	for _, odd := range []bool{false, true} {
		f0 := eval(0, x, odd)
		nf := 3
		if !odd {
			nf = 5
		}
		for b := 0; b < 2; b++ {
			for i := 0; i < 3; i++ {
				xv := x[b*3+i]
				w := freqs[1]
				want := []float64{xv, math.Sin(xv), math.Sin(w * xv), math.Cos(xv), math.Cos(w * xv)}[:nf]
				for f := 0; f < nf; f++ {
					// a few ulp: the angle-addition path is not correctly rounded
					if got := f0[b*nf*3+f*3+i]; math.Abs(got-want[f]) > 1e-15 {
						t.Errorf("freqs %v odd=%v: feature %d at x=%g: %g, want %g", freqs, odd, f, xv, got, want[f])
					}
				}
			}
		}
		const h = 1e-5
		for order := 0; order < 3; order++ {
			d := eval(order+1, x, odd)
			for j := range x {
				xp, xm := append([]float64(nil), x...), append([]float64(nil), x...)
				xp[j] += h
				xm[j] -= h
				fp, fm := eval(order, xp, odd), eval(order, xm, odd)
				b, i := j/3, j%3
				for f := 0; f < nf; f++ {
					k := b*nf*3 + f*3 + i
					fd := (fp[k] - fm[k]) / (2 * h)
					if math.Abs(fd-d[k]) > 1e-8 {
						t.Errorf("odd=%v order %d feature %d x=%g: derivative %g, finite difference %g", odd, order+1, f, x[j], d[k], fd)
					}
				}
			}
		}
	}
}

func TestSincos32(t *testing.T) {
	// Against math.Sincos on a grid over [−300, 300] (every quadrant, reductions up to k ≈ 190) and at
	// the quadrant boundaries; the bound 5e-9 is the Taylor truncation (1.7e-9) plus the reduction's
	// rounding (|x|·1e-16 ≲ 3e-14), with margin. Beyond 2^20, infinities and NaN fall back to math.Sincos.
	xs := []float64{0, math.Pi / 4, math.Pi / 2, math.Pi, -math.Pi / 2, 3 * math.Pi / 4, 1 << 21, math.Inf(1), math.NaN()}
	for x := -300.0; x <= 300; x += 0.0137 {
		xs = append(xs, x)
	}
	for _, x := range xs {
		s, c := sincos32(x)
		ws, wc := math.Sincos(x)
		if math.IsNaN(ws) {
			if !math.IsNaN(s) || !math.IsNaN(c) {
				t.Fatalf("sincos32(%g) = %g, %g, want NaN", x, s, c)
			}
			continue
		}
		if math.Abs(s-ws) > 5e-9 || math.Abs(c-wc) > 5e-9 {
			t.Fatalf("sincos32(%g) = %g, %g, want %g, %g", x, s, c, ws, wc)
		}
	}
}

func TestSincos64(t *testing.T) {
	// Against math.Sincos on the same grid: both are within about an ulp of the true values, so they agree
	// to 4e-16 absolute (|values| ≤ 1, ulp 1.1e-16 near 1); exactly odd / even in x.
	xs := []float64{0, math.Pi / 4, math.Pi / 2, math.Pi, -math.Pi / 2, 3 * math.Pi / 4, 1e-300, 1 << 21, math.Inf(-1), math.NaN()}
	for x := -300.0; x <= 300; x += 0.0137 {
		xs = append(xs, x)
	}
	for _, x := range xs {
		s, c := sincos64(x)
		ws, wc := math.Sincos(x)
		if math.IsNaN(ws) {
			if !math.IsNaN(s) || !math.IsNaN(c) {
				t.Fatalf("sincos64(%g) = %g, %g, want NaN", x, s, c)
			}
			continue
		}
		if math.Abs(s-ws) > 4e-16 || math.Abs(c-wc) > 4e-16 {
			t.Fatalf("sincos64(%g) = %g, %g, want %g, %g (off by %g, %g)", x, s, c, ws, wc, s-ws, c-wc)
		}
		if ns, nc := sincos64(-x); ns != -s || nc != c {
			t.Fatalf("sincos64(−%g) = %g, %g, want %g, %g", x, ns, nc, -s, c)
		}
	}
}

func TestCircConvFloat32(t *testing.T) {
	// The three ops in float32 against the direct periodic sums in float64 on 8×8 (radix-2 path, the
	// row-vector column transforms) and 5×6 (direct DFTs, odd H): the float32 inputs are exactly
	// representable, the spectra are complex128, so the only float32 error is the final rounding of each
	// output (relative 6e-8 of values up to ~30: 1e-5 absolute leaves margin). The float64 ops are
	// checked against the same sums to 1e-12 (FFT round-off of partial sums ≲ 30).
	for _, sz := range [][2]int{{8, 8}, {5, 6}} {
		hh, ww := sz[0], sz[1]
		v := hh * ww
		const nb, nj, no = 3, 3, 2
		rng := rand.New(rand.NewPCG(uint64(v), 7))
		rnd := func(n int) ([]float64, []float32) {
			d := make([]float64, n)
			f := make([]float32, n)
			for i := range d {
				f[i] = float32(rng.NormFloat64())
				d[i] = float64(f[i])
			}
			return d, f
		}
		// direct: out[n,o,x] = Σ_j Σ_y w[o,j,x−y] h[n,j,y]
		fwd := func(h, w []float64) []float64 {
			out := make([]float64, nb*no*v)
			for n := 0; n < nb; n++ {
				for o := 0; o < no; o++ {
					for x := 0; x < v; x++ {
						for j := 0; j < nj; j++ {
							for y := 0; y < v; y++ {
								r := ((x/ww-y/ww+hh)%hh)*ww + (x%ww-y%ww+ww)%ww
								out[(n*no+o)*v+x] += w[(o*nj+j)*v+r] * h[(n*nj+j)*v+y]
							}
						}
					}
				}
			}
			return out
		}
		// the adjoints by brute force: T(g, w)[n,j,y] = Σ_o Σ_x w[o,j,x−y] g[n,o,x];
		// Wg(h, g)[o,j,r] = Σ_n Σ_x g[n,o,x] h[n,j,x−r]
		bwdData := func(g, w []float64) []float64 {
			out := make([]float64, nb*nj*v)
			for n := 0; n < nb; n++ {
				for j := 0; j < nj; j++ {
					for y := 0; y < v; y++ {
						for o := 0; o < no; o++ {
							for x := 0; x < v; x++ {
								r := ((x/ww-y/ww+hh)%hh)*ww + (x%ww-y%ww+ww)%ww
								out[(n*nj+j)*v+y] += w[(o*nj+j)*v+r] * g[(n*no+o)*v+x]
							}
						}
					}
				}
			}
			return out
		}
		bwdW := func(h, g []float64) []float64 {
			out := make([]float64, no*nj*v)
			for o := 0; o < no; o++ {
				for j := 0; j < nj; j++ {
					for r := 0; r < v; r++ {
						for n := 0; n < nb; n++ {
							for x := 0; x < v; x++ {
								y := ((x/ww-r/ww+hh)%hh)*ww + (x%ww-r%ww+ww)%ww
								out[(o*nj+j)*v+r] += g[(n*no+o)*v+x] * h[(n*nj+j)*v+y]
							}
						}
					}
				}
			}
			return out
		}
		h64, h32 := rnd(nb * nj * v)
		w64, w32 := rnd(no * nj * v)
		g64, g32 := rnd(nb * no * v)
		cases := []struct {
			kind     convKind
			a64, b64 []float64
			a32, b32 []float32
			n        int
			want     []float64
		}{
			{convFwd, h64, w64, h32, w32, nb * no * v, fwd(h64, w64)},
			{convBwdData, g64, w64, g32, w32, nb * nj * v, bwdData(g64, w64)},
			{convBwdWeight, h64, g64, h32, g32, no * nj * v, bwdW(h64, g64)},
		}
		for _, c := range cases {
			op := circOp{kind: c.kind, b: nb, j: nj, o: no, hh: hh, ww: ww}
			o64 := make([]float64, c.n)
			o32 := make([]float32, c.n)
			circCompute(op, c.a64, c.b64, o64)
			circCompute(op, c.a32, c.b32, o32)
			for i, want := range c.want {
				if d := math.Abs(o64[i] - want); d > 1e-12 {
					t.Fatalf("%v float64: out[%d] off by %g", op, i, d)
				}
				if d := math.Abs(float64(o32[i]) - want); d > 1e-5 {
					t.Fatalf("%v float32: out[%d] = %g, want %g", op, i, o32[i], want)
				}
			}
		}
	}
}

func TestKernelFeaturesFloat32(t *testing.T) {
	// Orders 0–3 in float32 (sincos32) against math.Sin / math.Cos in float64 of the same float32 inputs, on both the angle-addition path ({1, 2, 3}) and one sincos per frequency
	// ({1, 2.5}): float32 rounding of values up to ω³ ≤ 27 (relative 6e-8) plus sincos32's 5e-9 times ω³.
	x32 := []float64{-2.75, -1.3, 0.2, 0.7, 2.9, 11.5}
	for _, freqs := range [][]float64{{1, 2, 3}, {1, 2.5}} {
		for _, odd := range []bool{false, true} {
			for order := 0; order < 4; order++ {
				op := featOp{order: order, freqs: freqs, odd: odd, b: 2, c: 1, v: 3}
				out, err := op.Do(NewDense(tensor.Float32, []int{2, 1, 3}, x32))
				if err != nil {
					t.Fatal(err)
				}
				got := ValueFloats(out)
				nf := op.nf()
				for b := 0; b < 2; b++ {
					for i := 0; i < 3; i++ {
						x := float64(float32(x32[b*3+i])) // the op's input, rounded to float32
						want := make([]float64, nf)
						switch order {
						case 0:
							want[0] = x
						case 1:
							want[0] = 1
						}
						for k, w := range freqs {
							p := math.Pow(w, float64(order))
							// d^n/dx^n sin(ωx) = ω^n sin(ωx + nπ/2), likewise cos
							want[1+k] = p * math.Sin(w*x+float64(order)*math.Pi/2)
							if !odd {
								want[1+len(freqs)+k] = p * math.Cos(w*x+float64(order)*math.Pi/2)
							}
						}
						for f := range want {
							g := got[(b*nf+f)*3+i]
							if d := math.Abs(g - want[f]); d > 1e-7*(1+math.Abs(want[f]))+5e-9*27 {
								t.Fatalf("freqs %v odd %v order %d: feature %d at x=%g: %g, want %g", freqs, odd, order, f, x, g, want[f])
							}
						}
					}
				}
			}
		}
	}
}
