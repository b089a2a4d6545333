package layers

import (
	"fmt"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"strings"
	"testing"
)

// lanePlane returns the complex value of lane l at site (a, b) of a complex lane plane of side × side sites.
func lanePlane[T float](z []T, side, a, b, l int) complex128 {
	o := (a*side+b)*laneCS[T](side) + l
	return complex(float64(z[o]), float64(z[o+laneN]))
}

// laneFreqAt is the position at which a forward lane transform of n points (16 or 32) leaves frequency k,
// inverted by brute force from laneFreq16, laneFreq32.
func laneFreqAt(n, k int) int {
	for pos := 0; pos < n; pos++ {
		f := laneFreq16(pos)
		if n == 32 {
			f = laneFreq32(pos)
		}
		if f == k {
			return pos
		}
	}
	panic(fmt.Sprintf("no position holds frequency %d of %d", k, n))
}

// dftPhases returns e^{−2πi j/n} for j < n.
func dftPhases(n int) []complex128 {
	e := make([]complex128, n)
	for j := range e {
		e[j] = cmplx.Exp(complex(0, -2*math.Pi*float64(j)/float64(n)))
	}
	return e
}

func testFFT2Lanes[T float](t *testing.T, side int, tol float64) {
	// The 2-D lane transform against the defining sum Σ_x e^{−2πi k·x/side} z[x] evaluated term by term for
	// some lanes of two planes (frequency k read at the position laneFreq16/32 gives it), and the inverse
	// back to side²·z. Both sides are sums of side² order-one terms: tol relative to their number.
	rng := rand.New(rand.NewPCG(5, 6))
	const np = 2
	cs := laneCS[T](side)
	n := np * side * side * cs
	z := make([]T, n)
	for i := range z {
		z[i] = T(rng.NormFloat64())
	}
	orig := append([]T(nil), z...)
	fft2Lanes(z, np, side, false)
	plane := side * side * cs
	e := dftPhases(side)
	v := float64(side * side)
	lstep := 7
	if side == 32 {
		lstep = 13 // lanes 0, 13, 26: 3·1024² terms a plane
	}
	for q := 0; q < np; q++ {
		for l := 0; l < laneN; l += lstep {
			for k1 := 0; k1 < side; k1++ {
				for k2 := 0; k2 < side; k2++ {
					var want complex128
					for a := 0; a < side; a++ {
						for b := 0; b < side; b++ {
							want += lanePlane(orig[q*plane:], side, a, b, l) * e[(k1*a+k2*b)%side]
						}
					}
					got := lanePlane(z[q*plane:], side, laneFreqAt(side, k1), laneFreqAt(side, k2), l)
					if cmplx.Abs(got-want) > tol*v {
						t.Fatalf("plane %d lane %d: X̂[%d,%d] = %v, direct sum %v", q, l, k1, k2, got, want)
					}
				}
			}
		}
	}
	fft2Lanes(z, np, side, true)
	for i := range z {
		if i%cs >= 2*laneN {
			continue // the pad between sites
		}
		if want := v * float64(orig[i]); math.Abs(float64(z[i])-want) > tol*v {
			t.Fatalf("inverse: z[%d] = %.9g, want %.9g", i, z[i], want)
		}
	}
}

func TestFFT2LanesAgainstDirectDFT(t *testing.T) {
	// Every kernel form (AVX-512, AVX2, the Go loops) in both precisions, sides 16 and 32. Tolerances:
	// float64 1e-13 per term (a few ulp of the twiddles times the 8 or 10 radix-2-equivalent stages);
	// float32 2e-6 per term.
	for _, mode := range productModes() {
		t.Run(mode, func(t *testing.T) {
			defer useProductKernels(mode)()
			for _, side := range []int{16, 32} {
				t.Run(fmt.Sprint(side), func(t *testing.T) {
					t.Run("float64", func(t *testing.T) { testFFT2Lanes[float64](t, side, 1e-13) })
					t.Run("float32", func(t *testing.T) { testFFT2Lanes[float32](t, side, 2e-6) })
				})
			}
		})
	}
}

func testFFT32Lanes[T float](t *testing.T, inverse bool, tol float64) {
	// Three 32-point transforms (stride 70, step 2300 elements: neither a plane's layout) on every lane
	// against the defining sums: forward X[k] = Σ_n e^{−2πi kn/32} x[n] read at laneFreqAt(32, k); inverse
	// x[n] = Σ_k e^{+2πi kn/32} X[k] with X[k] taken from position laneFreqAt(32, k). 32 order-one terms:
	// tol relative to their number.
	const stride, count, step = 70, 3, 2300
	rng := rand.New(rand.NewPCG(11, 12))
	z := make([]T, (count-1)*step+31*stride+2*laneN)
	for i := range z {
		z[i] = T(rng.NormFloat64())
	}
	orig := append([]T(nil), z...)
	fft32Lanes(z, stride, count, step, inverse)
	e := dftPhases(32)
	at := func(buf []T, tr, pos, l int) complex128 {
		o := tr*step + pos*stride + l
		return complex(float64(buf[o]), float64(buf[o+laneN]))
	}
	for tr := 0; tr < count; tr++ {
		for l := 0; l < laneN; l++ {
			for k := 0; k < 32; k++ {
				var want complex128
				for n := 0; n < 32; n++ {
					if inverse {
						want += at(orig, tr, laneFreqAt(32, n), l) * cmplx.Conj(e[k*n%32])
					} else {
						want += at(orig, tr, n, l) * e[k*n%32]
					}
				}
				pos := laneFreqAt(32, k)
				if inverse {
					pos = k
				}
				if got := at(z, tr, pos, l); cmplx.Abs(got-want) > tol*32 {
					t.Fatalf("transform %d lane %d: [%d] = %v, direct sum %v", tr, l, k, got, want)
				}
			}
		}
	}
}

func TestFFT32LanesAgainstDirectDFT(t *testing.T) {
	// Every kernel form, both precisions, forward and inverse. Tolerances as for the 2-D transform:
	// float64 1e-13, float32 2e-6 per term.
	for _, mode := range productModes() {
		t.Run(mode, func(t *testing.T) {
			defer useProductKernels(mode)()
			for _, inv := range []bool{false, true} {
				t.Run(fmt.Sprint("inverse=", inv), func(t *testing.T) {
					t.Run("float64", func(t *testing.T) { testFFT32Lanes[float64](t, inv, 1e-13) })
					t.Run("float32", func(t *testing.T) { testFFT32Lanes[float32](t, inv, 2e-6) })
				})
			}
		})
	}
}

func TestFFT32LanesBounds(t *testing.T) {
	// A transform reaching past the slice panics with the sizes.
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "fft32Lanes") {
			t.Fatalf("recovered %v, want the bounds message", r)
		}
	}()
	fft32Lanes(make([]float64, 32*2*laneN-1), 2*laneN, 1, 0, false)
}

func TestFFT16LanesBounds(t *testing.T) {
	// A transform reaching past the slice panics with the sizes instead of letting the assembly run off.
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "fft16Lanes") {
			t.Fatalf("recovered %v, want the bounds message", r)
		}
	}()
	fft16Lanes(make([]float64, 16*2*laneN-1), 2*laneN, 1, 0, false)
}

// lanePlanFor plans a fused integration of field kf on a (b, C, side, side) batch without a graph.
func lanePlanFor(kf KernelField, side, b, steps int, method string, t0, t1 float64, kinetic bool) *odePlan {
	_, _, param, np := kf.kernelGeom(side, side)
	return &odePlan{b: b, c: kf.Channels, h: side, w: side, freqs: kf.freqs(), odd: kf.Odd, nf: kf.Features(),
		k: kf.timeBasis(), np: np, param: param, steps: steps, t0: t0, t1: t1, tab: ODE{Method: method}.tableau(),
		kinetic: kinetic, lanes: true}
}

// runEngine runs one engine forward and backward: the outputs [x(t₁) | log-det | kinetic] and [∂x | ∂w].
func runEngine[T float](p *odePlan, lanes bool, x, w, gout []T) (out, grad []T, err error) {
	p.lanes = lanes
	acts := make([]T, p.actsSize())
	odeForwardAny(p, x, w, acts)
	grad = make([]T, p.xSize()+p.wSize())
	err = odeBackwardAny(p, w, acts, gout, grad)
	return append([]T(nil), acts[:p.outSize()]...), grad, err
}

type laneCase struct {
	name    string
	kf      KernelField
	side    int
	b       int
	steps   int
	method  string
	t0, t1  float64
	kinetic bool
	scale   float64
}

func laneCases() []laneCase {
	gerdes := KernelField{Channels: 1, Freqs: []float64{1, 2, 3, 4}, Odd: true, D4: true}
	return []laneCase{
		// the ode-gerdes field; 33 samples: two blocks, the second with one live lane
		{"gerdes-33", gerdes, 16, 33, 2, "rk4", 1, 0, true, 0.02},
		// sin and cos features of non-integer frequencies, two channels (an even number of features), midpoint
		{"2ch-cos-midpoint", KernelField{Channels: 2, Freqs: []float64{1.5, 0.7}, TimeBasis: 2}, 16, 3, 2, "midpoint", 0, 1, false, 0.05},
		// two channels, odd harmonic features (the kept sin/cos of every channel), Euler, kinetic
		{"2ch-odd-euler", KernelField{Channels: 2, Freqs: []float64{1, 2}, Odd: true}, 16, 2, 3, "euler", 0, 1, true, 0.05},
		// an odd number of features: the last pair's second slot is empty
		{"odd-fc", KernelField{Channels: 1, Freqs: []float64{1, 2}, Odd: true, D4: true, TimeBasis: 1}, 16, 5, 2, "rk4", 0, 1, false, 0.05},
		// 32×32 (the radix-2 step over the 16-point transforms): the ode-gerdes field, two blocks again
		{"gerdes-33-32x32", gerdes, 32, 33, 1, "rk4", 1, 0, true, 0.01},
		// 32×32, two channels, sin and cos features, midpoint
		{"2ch-cos-midpoint-32x32", KernelField{Channels: 2, Freqs: []float64{1.5, 0.7}, TimeBasis: 2}, 32, 2, 1, "midpoint", 0, 1, false, 0.02},
	}
}

func laneInputs(p *odePlan, tc laneCase, seed uint64) (x, w, gout []float64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	x = make([]float64, p.xSize())
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	w = make([]float64, p.wSize())
	for i := range w {
		w[i] = tc.scale * rng.NormFloat64()
	}
	gout = make([]float64, p.outSize())
	for i := range gout {
		gout[i] = rng.NormFloat64()
	}
	if !tc.kinetic {
		clear(gout[p.xSize()+p.b:])
	}
	return x, w, gout
}

func TestODELaneEngineMatchesSampleEngine(t *testing.T) {
	// The lane engine (full complex spectra by pairs of features, adjoints on the sites) against the
	// per-sample engine (half spectra, adjoints as spectra), float64: the same sums in different orders,
	// so they agree to rounding: 1e-11 relative to the largest value of each output (a few hundred
	// roundings of order-one terms through the stages). Every kernel form of the lane FFTs and sincos.
	for _, mode := range productModes() {
		restore := useProductKernels(mode)
		for _, tc := range laneCases() {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				p := lanePlanFor(tc.kf, tc.side, tc.b, tc.steps, tc.method, tc.t0, tc.t1, tc.kinetic)
				x, w, gout := laneInputs(p, tc, 1)
				o1, g1, err := runEngine(p, false, x, w, gout)
				if err != nil {
					t.Fatal(err)
				}
				o2, g2, err := runEngine(p, true, x, w, gout)
				if err != nil {
					t.Fatal(err)
				}
				compare := func(what string, a, b []float64) {
					var m float64
					for _, v := range a {
						m = max(m, math.Abs(v))
					}
					for i := range a {
						if d := math.Abs(a[i] - b[i]); d > 1e-11*m || math.IsNaN(b[i]) {
							t.Fatalf("%s[%d]: per-sample %.15g, lanes %.15g (max %g)", what, i, a[i], b[i], m)
						}
					}
				}
				n := p.xSize()
				compare("x(t1)", o1[:n], o2[:n])
				compare("log-det", o1[n:n+p.b], o2[n:n+p.b])
				compare("kinetic", o1[n+p.b:], o2[n+p.b:])
				compare("dx", g1[:n], g2[:n])
				compare("dw", g1[n:], g2[n:])
			})
		}
		restore()
	}
}

func TestODELaneEngineFloat32AgreesWithFloat64(t *testing.T) {
	// The lane engine in float32 (storage, FFTs, products and sincos all in float32) against itself in
	// float64 on the same inputs: 2e-6 relative to the largest value of each output (float32's ε = 6e-8
	// times the few tens of roundings along a path through the stages; measured 4e-7 at most, ∂x and ∂w).
	for _, tc := range laneCases() {
		t.Run(tc.name, func(t *testing.T) {
			p := lanePlanFor(tc.kf, tc.side, tc.b, tc.steps, tc.method, tc.t0, tc.t1, tc.kinetic)
			x, w, gout := laneInputs(p, tc, 2)
			o64, g64, err := runEngine(p, true, x, w, gout)
			if err != nil {
				t.Fatal(err)
			}
			f32 := func(v []float64) []float32 {
				r := make([]float32, len(v))
				for i, e := range v {
					r[i] = float32(e)
				}
				return r
			}
			o32, g32, err := runEngine(p, true, f32(x), f32(w), f32(gout))
			if err != nil {
				t.Fatal(err)
			}
			compare := func(what string, a []float64, b []float32, tol float64) {
				var m, worst float64
				for _, v := range a {
					m = max(m, math.Abs(v))
				}
				for i := range a {
					worst = max(worst, math.Abs(a[i]-float64(b[i])))
					if math.IsNaN(float64(b[i])) {
						worst = math.Inf(1)
					}
				}
				t.Logf("%s: max |float32 − float64| = %.3g of %.3g", what, worst, m)
				if worst > tol*m {
					t.Errorf("%s: float32 differs by %.3g, more than %.3g of the largest value %.3g", what, worst, tol, m)
				}
			}
			n := p.xSize()
			compare("x(t1)", o64[:n], o32[:n], 2e-6)
			compare("log-det", o64[n:n+p.b], o32[n:n+p.b], 2e-6)
			compare("kinetic", o64[n+p.b:], o32[n+p.b:], 2e-6)
			compare("dx", g64[:n], g32[:n], 2e-6)
			compare("dw", g64[n:], g32[n:], 2e-6)
		})
	}
}

func TestODELaneEngineSymmetries(t *testing.T) {
	for _, side := range []int{16, 32} {
		t.Run(fmt.Sprint(side), func(t *testing.T) { testLaneSymmetries(t, side) })
	}
}

func testLaneSymmetries(t *testing.T, L int) {
	// The lane engine's flow of the ode-gerdes field (odd features, D4 kernels) commutes with the lattice
	// translations, the rotation by 90° and φ → −φ, and its log-det is invariant under them, float64:
	// the four inputs x, x shifted by (3, 5), x rotated and −x integrated in one batch. 1e-12 relative to
	// the largest value (the same sums in different orders, a few hundred roundings). Sides 16 and 32.
	tc := laneCases()[0]
	p := lanePlanFor(tc.kf, L, 4, 3, "rk4", 1, 0, false)
	rng := rand.New(rand.NewPCG(9, 10))
	v := L * L
	base := make([]float64, v)
	for i := range base {
		base[i] = rng.NormFloat64()
	}
	shift := func(x []float64) []float64 {
		y := make([]float64, v)
		for a := 0; a < L; a++ {
			for b := 0; b < L; b++ {
				y[((a+3)%L)*L+(b+5)%L] = x[a*L+b]
			}
		}
		return y
	}
	rot := func(x []float64) []float64 {
		y := make([]float64, v)
		for a := 0; a < L; a++ {
			for b := 0; b < L; b++ {
				y[b*L+(L-1-a)] = x[a*L+b]
			}
		}
		return y
	}
	neg := func(x []float64) []float64 {
		y := make([]float64, v)
		for i, e := range x {
			y[i] = -e
		}
		return y
	}
	x := append(append(append(append([]float64(nil), base...), shift(base)...), rot(base)...), neg(base)...)
	w := make([]float64, p.wSize())
	for i := range w {
		w[i] = tc.scale * rng.NormFloat64()
	}
	p.lanes = true
	acts := make([]float64, p.actsSize())
	odeForwardAny(p, x, w, acts)
	out := acts[:p.xSize()]
	ld := acts[p.xSize() : p.xSize()+p.b]
	var m float64
	for _, e := range out {
		m = max(m, math.Abs(e))
	}
	moved := 0.0
	for i := range base {
		moved = max(moved, math.Abs(out[i]-base[i]))
	}
	if moved < 1e-3 || math.Abs(ld[0]) < 1e-3 {
		t.Fatalf("trivial test: the field moved x by %.3g, log-det %g", moved, ld[0])
	}
	y0 := out[:v]
	for k, want := range [][]float64{shift(y0), rot(y0), neg(y0)} {
		got := out[(k+1)*v : (k+2)*v]
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-12*m {
				t.Fatalf("transform %d: site %d: %.15g, want %.15g", k, i, got[i], want[i])
			}
		}
		if math.Abs(ld[k+1]-ld[0]) > 1e-12*max(1, math.Abs(ld[0])) {
			t.Fatalf("transform %d: log-det %.15g, want %.15g", k, ld[k+1], ld[0])
		}
	}
}
