package layers

import (
	"fmt"
	"math"
	"math/big"
	"strings"
	"testing"
)

// rangeValues32 sweeps the whole float32 line: ±2^e·{1, 1.5} for every binary exponent (denormals
// included), ±0, ±Inf, NaN, ±MaxFloat32, the smallest normal and denormal, a dense grid over [−110, 95],
// and each threshold of e^x with its neighbours one ulp either side: overflow (the largest x with e^x
// finite), the smallest normal result and the last non-zero denormal result.
func rangeValues32() []float32 {
	var xs []float32
	add := func(v ...float32) { xs = append(xs, v...) }
	for e := -149; e <= 127; e++ {
		for _, m := range []float64{1, 1.5} {
			v := float32(math.Ldexp(m, e))
			add(v, -v)
		}
	}
	inf := float32(math.Inf(1))
	add(0, float32(math.Copysign(0, -1)), inf, -inf, float32(math.NaN()),
		math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, 0x1p-126, -0x1p-126)
	for x := float32(-110); x < 95; x += 0.0371 {
		add(x)
	}
	// Thresholds from the float64 reference: the largest float32 x whose correctly rounded e^x is finite,
	// the smallest with a normal result and the smallest with a non-zero one.
	for _, t := range []float64{math.Log(math.MaxFloat32), math.Log(0x1p-126), math.Log(0x1p-150)} {
		x := float32(t)
		for i := 0; i < 3; i++ {
			x = math.Nextafter32(x, -inf)
		}
		for i := 0; i < 7; i++ {
			add(x)
			x = math.Nextafter32(x, inf)
		}
	}
	return xs
}

// class is the kind of a float: what a non-finite guard or an underflow check sees.
func class(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case v == 0:
		return "0"
	}
	return "finite"
}

// ulp32 is the spacing of float32 numbers at |v| (2⁻¹⁴⁹ in the denormals).
func ulp32(v float64) float64 {
	a := float32(math.Abs(v))
	return float64(math.Nextafter32(a, float32(math.Inf(1))) - a)
}

// The float32 exp, scalar (exp32) and vector (expInPlace over a slice), over the whole float32 range: the
// class of every result (finite, +Inf, 0, NaN) is that of the correctly rounded e^x (from float64
// math.Exp), and the value is within 2 ulp of it (the polynomial's 2 ulp bound of exp32; in the denormals
// an ulp is 2⁻¹⁴⁹). Then the same value at every position of slices of every length up to three vectors
// and a tail gives the same bits as the value alone, so what happens to an element never depends on where
// it sits in a slice.
func TestExpWholeRange(t *testing.T) {
	xs := rangeValues32()
	check := func(path string, x, got float32) {
		t.Helper()
		want := float64(float32(math.Exp(float64(x))))
		if class(float64(got)) != class(want) {
			t.Errorf("%s: e^%v = %v (%s), want %v (%s)", path, x, got, class(float64(got)), want, class(want))
			return
		}
		if class(want) == "finite" {
			if d := math.Abs(float64(got)-want) / ulp32(want); d > 2 {
				t.Errorf("%s: e^%v = %v, want %v (%.1f ulp)", path, x, got, want, d)
			}
		}
	}
	vec := append([]float32(nil), xs...)
	expInPlace(vec)
	for i, x := range xs {
		check("exp32", x, exp32(x))
		check("expInPlace", x, vec[i])
	}
	positionIndependent(t, "exp", xs, expInPlace[float32])
}

// positionIndependent applies f to slices holding x at every position, with lengths 1 … 3·8+7 (every
// position modulo the float32 and float64 vector widths, whole vectors and tails), and requires the bits
// of f({x}) everywhere. The other elements cycle through the whole value list, so the lanes beside x hold
// NaN, ±Inf, denormals and ordinary numbers in turn.
func positionIndependent[T float](t *testing.T, name string, xs []T, f func([]T)) {
	t.Helper()
	bits := func(v T) uint64 {
		if v32, ok := any(v).(float32); ok {
			return uint64(math.Float32bits(v32))
		}
		return math.Float64bits(float64(v))
	}
	fails := 0
	buf := make([]T, 31)
	for i, x := range xs {
		alone := []T{x}
		f(alone)
		for n := 1; n <= len(buf); n++ {
			for p := 0; p < n; p++ {
				s := buf[:n]
				for j := range s {
					s[j] = xs[(i+7*j+1)%len(xs)]
				}
				s[p] = x
				f(s)
				if bits(s[p]) != bits(alone[0]) && !(s[p] != s[p] && alone[0] != alone[0]) {
					if fails++; fails <= 10 {
						t.Errorf("%s(%v) at position %d of %d: %v, alone %v", name, x, p, n, s[p], alone[0])
					}
				}
			}
		}
	}
}

// ELU (float32 and float64) over the whole range: the class and value of every result as the float64
// reference x > 0 ? x : expm1(x), rounded to the type (float64 within 2 ulp; float32 within 2.5e-7
// absolute, the rounding of e^x − 1 near 0, or 2 ulp), and position-independent, on every kernel set this
// CPU runs (scalar loops, AVX2, AVX-512); the AVX2 and AVX-512 kernels give the same bits.
func TestELUWholeRange(t *testing.T) {
	results := map[string][2][]uint64{}
	for _, mode := range productModes() {
		t.Run(mode, func(t *testing.T) {
			defer useProductKernels(mode)()
			results[mode] = testELUWholeRange(t)
		})
	}
	a, ok1 := results["avx2"]
	b, ok2 := results["avx512"]
	if ok1 && ok2 {
		for k := range a {
			for i := range a[k] {
				if a[k][i] != b[k][i] {
					t.Errorf("ELU (dtype %d) element %d: AVX2 bits %#x, AVX-512 bits %#x", k, i, a[k][i], b[k][i])
					break
				}
			}
		}
	}
}

// testELUWholeRange checks ELU on the kernels in use and returns the bits of its float32 and float64 results.
func testELUWholeRange(t *testing.T) [2][]uint64 {
	xs32 := rangeValues32()
	var xs64 []float64
	for _, x := range xs32 {
		xs64 = append(xs64, float64(x))
	}
	for e := -1074; e <= 1023; e += 7 {
		v := math.Ldexp(1, e)
		xs64 = append(xs64, v, -v)
	}
	xs64 = append(xs64, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64)
	v32 := append([]float32(nil), xs32...)
	eluInPlace(v32)
	for i, x := range xs32 {
		want := float64(float32(elu64(float64(x))))
		got := float64(v32[i])
		// e^x − 1 is computed as such, so a tiny negative x gives 0 (within the absolute bound): 0 and finite
		// count as one class here.
		finite := func(v float64) bool { return class(v) == "0" || class(v) == "finite" }
		if class(got) != class(want) && !(finite(got) && finite(want)) {
			t.Errorf("float32 ELU(%v) = %v, want %v", x, got, want)
		} else if finite(want) && math.Abs(got-want) > math.Max(2.5e-7, 2*ulp32(want)) {
			t.Errorf("float32 ELU(%v) = %v, want %v", x, got, want)
		}
	}
	v64 := append([]float64(nil), xs64...)
	eluInPlace(v64)
	for i, x := range xs64 {
		want, got := elu64(x), v64[i]
		ulp := math.Abs(math.Nextafter(want, 0) - want)
		if want == 0 {
			ulp = math.SmallestNonzeroFloat64
		}
		if class(got) != class(want) || class(want) == "finite" && math.Abs(got-want) > 2*ulp {
			t.Errorf("float64 ELU(%v) = %v, want %v", x, got, want)
		}
	}
	// The vector kernels evaluate elu64Scalar's steps: the same bits (NaN: any NaN).
	ref := append([]float64(nil), xs64...)
	elu64Scalar(ref)
	for i, x := range xs64 {
		if math.Float64bits(v64[i]) != math.Float64bits(ref[i]) && !(math.IsNaN(v64[i]) && math.IsNaN(ref[i])) {
			t.Errorf("float64 ELU(%v) = %v, elu64Scalar %v", x, v64[i], ref[i])
		}
	}
	positionIndependent(t, "ELU32", xs32, eluInPlace[float32])
	positionIndependent(t, "ELU64", xs64, eluInPlace[float64])
	var bits [2][]uint64
	for _, v := range v32 {
		bits[0] = append(bits[0], uint64(math.Float32bits(v)))
	}
	for _, v := range v64 {
		bits[1] = append(bits[1], math.Float64bits(v))
	}
	return bits
}

// Swish and its derivative in float32 over the whole range: every position of a slice (vector lanes and
// the scalar tail) gives a result of the same class as the value alone in a slice of one (the scalar
// path), within 2e-6 absolute plus 2e-6 relative (as TestActivationsFloat32).
func TestSwishWholeRange(t *testing.T) {
	xs := rangeValues32()
	for _, k := range []actKind{actSwish, actSwishD1} {
		n := 8*3 + 5
		for _, x := range xs {
			alone := []float32{0}
			applyAct32(alone, []float32{x}, k)
			src := make([]float32, n)
			for p := range src {
				src[p] = x
			}
			dst := make([]float32, n)
			applyAct32(dst, src, k)
			for p, got := range dst {
				a, b := float64(got), float64(alone[0])
				if class(a) != class(b) && !(math.Abs(a-b) <= 2e-6) || class(b) == "finite" && math.Abs(a-b) > 2e-6+2e-6*math.Abs(b) {
					t.Errorf("%s(%v) at position %d of %d: %v, alone %v", k, x, p, n, got, alone[0])
					break
				}
			}
		}
	}
}

// The Go wrappers of the assembly kernels panic with a message naming the kernel and the lengths when
// slices do not match, on every build (vector or scalar), before anything is read or written.
func TestKernelLengthChecks(t *testing.T) {
	mustPanic := func(name, want string, f func()) {
		t.Helper()
		defer func() {
			t.Helper()
			r := recover()
			if r == nil {
				t.Errorf("%s: no panic", name)
				return
			}
			if msg := fmt.Sprint(r); !strings.Contains(msg, want) {
				t.Errorf("%s: panic %q, want it to mention %q", name, msg, want)
			}
		}()
		f()
	}
	mustPanic("dot f32", "dot: len(a) = 16 but len(b) = 15", func() { dotVec(make([]float32, 16), make([]float32, 15)) })
	mustPanic("dot f64", "dot: len(a) = 8 but len(b) = 9", func() { dot(make([]float64, 8), make([]float64, 9)) })
	mustPanic("axpyRows f32", "axpyRows: b has 40 elements, 3 rows of stride ldb=16 over 16 columns need 48",
		func() { axpyRowsVec(make([]float32, 16), make([]float32, 3), make([]float32, 40), 16) })
	mustPanic("axpyRows f64", "axpyRows: b has 47 elements", func() { axpyRows(make([]float64, 16), make([]float64, 3), make([]float64, 47), 16) })
	mustPanic("eluGrad", "eluGrad: len(g) = 16 but len(y) = 8", func() { eluGradInPlace(make([]float32, 16), make([]float32, 8)) })
	mustPanic("swish", "swish: len(dst) = 8 but len(x) = 16", func() { swishVector(make([]float32, 8), make([]float32, 16), false) })
	// Matching lengths (and a longer b for axpyRows) are fine.
	axpyRows(make([]float32, 16), make([]float32, 3), make([]float32, 48), 16)
	dot(make([]float32, 9), make([]float32, 9))
}

// BenchmarkExpInPlace is the float32 exp pass of the fused coupling over 4096 values of [−8, 2) (plus a
// 5-element tail), the path the vector kernel and its padded tail take.
func BenchmarkExpInPlace(b *testing.B) {
	src := make([]float32, 4101)
	for i := range src {
		src[i] = float32(i%200)/20 - 8
	}
	x := make([]float32, len(src))
	for i := 0; i < b.N; i++ {
		copy(x, src)
		expInPlace(x)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(src)), "ns/exp")
}

// rangeValues64 sweeps the whole float64 line as rangeValues32 does the float32 one: ±2^e·{1, 1.5} for
// every binary exponent (denormals included), ±0, ±Inf, NaN, ±MaxFloat64, the smallest normal and
// denormal, a grid over [−750, 712], and three ulps either side of each threshold of e^x (overflow, the
// smallest normal result, the last non-zero denormal result).
func rangeValues64() []float64 {
	var xs []float64
	for e := -1074; e <= 1023; e++ {
		for _, m := range []float64{1, 1.5} {
			v := math.Ldexp(m, e)
			xs = append(xs, v, -v)
		}
	}
	inf := math.Inf(1)
	xs = append(xs, 0, math.Copysign(0, -1), inf, -inf, math.NaN(), math.MaxFloat64, -math.MaxFloat64,
		math.SmallestNonzeroFloat64, 0x1p-1022, -0x1p-1022)
	for x := -750.0; x < 712; x += 0.1373 {
		xs = append(xs, x)
	}
	for _, t := range []float64{math.Log(math.MaxFloat64), math.Log(0x1p-1022), math.Log(0x1p-1075)} {
		x := t
		for i := 0; i < 3; i++ {
			x = math.Nextafter(x, -inf)
		}
		for i := 0; i < 7; i++ {
			xs = append(xs, x)
			x = math.Nextafter(x, inf)
		}
	}
	return xs
}

// expBig returns the correctly rounded float64 e^x, computed independently of the code under test in
// 192-bit arithmetic: x = k·ln2 + r with ln 2 = 2·atanh(1/3) summed as a series, e^r by its Taylor series
// (|r| ≤ 0.35: 45 terms leave less than 10⁻⁶⁰), 2^k applied exactly, and one rounding to float64
// (big.Float rounds into the denormals and overflows to ±Inf).
func expBig() func(x float64) float64 {
	const prec = 192
	nf := func() *big.Float { return new(big.Float).SetPrec(prec) }
	// ln 2 = Σ_i 2/((2i+1)·3^{2i+1}).
	ln2 := nf()
	pow := nf().SetInt64(3) // 3^{2i+1}
	for i := int64(0); i < 70; i++ {
		ln2.Add(ln2, nf().Quo(nf().SetInt64(2), nf().Mul(pow, nf().SetInt64(2*i+1))))
		pow.Mul(pow, nf().SetInt64(9))
	}
	return func(x float64) float64 {
		switch {
		case math.IsNaN(x):
			return x
		case x > 800:
			return math.Inf(1)
		case x < -800:
			return 0
		}
		k := math.Round(x / math.Ln2)
		r := nf().Sub(nf().SetFloat64(x), nf().Mul(nf().SetFloat64(k), ln2))
		sum, term := nf().SetInt64(1), nf().SetInt64(1)
		for i := int64(1); i < 45; i++ {
			term.Quo(term.Mul(term, r), nf().SetInt64(i))
			sum.Add(sum, term)
		}
		sum.SetMantExp(sum, int(k))
		f, _ := sum.Float64()
		return f
	}
}

// ulp64 is the spacing of float64 numbers at |v| (2⁻¹⁰⁷⁴ in the denormals).
func ulp64(v float64) float64 {
	a := math.Abs(v)
	return math.Nextafter(a, math.Inf(1)) - a
}

// The float64 exp, scalar (exp64) and over a slice (expInPlace: the vector kernel where the CPU has it,
// and on every build the scalar loop with the vector kernels switched off), over the whole float64 range:
// the class of every result (finite, +Inf, 0, NaN) is that of the correctly rounded e^x (expBig), and the
// value is within 2 ulp of it (exp64's error analysis gives 1; in the denormals an ulp is 2⁻¹⁰⁷⁴). Then
// every position of slices of every length up to 31 gives the same bits as the value alone.
func TestExp64WholeRange(t *testing.T) {
	xs := rangeValues64()
	want := make([]float64, len(xs))
	ref := expBig()
	for i, x := range xs {
		want[i] = ref(x)
	}
	worst := 0.0
	check := func(path string, i int, got float64) {
		t.Helper()
		x, w := xs[i], want[i]
		if class(got) != class(w) {
			t.Errorf("%s: e^%v = %v (%s), want %v (%s)", path, x, got, class(got), w, class(w))
			return
		}
		if class(w) == "finite" {
			d := math.Abs(got-w) / ulp64(w)
			worst = max(worst, d)
			if d > 2 {
				t.Errorf("%s: e^%v = %v, want %v (%.1f ulp)", path, x, got, w, d)
			}
		}
	}
	for i, x := range xs {
		check("exp64", i, exp64(x))
	}
	for _, mode := range productModes()[:min(2, len(productModes()))] { // scalar, then the AVX2 kernel
		restore := useProductKernels(mode)
		vec := append([]float64(nil), xs...)
		expInPlace(vec)
		for i := range xs {
			check("expInPlace/"+mode, i, vec[i])
		}
		// Positions: every 16th value (the sweep's variety at a sixteenth of the cost) and the specials.
		var few []float64
		for i := 0; i < len(xs); i += 16 {
			few = append(few, xs[i])
		}
		few = append(few, 0, math.Inf(1), math.Inf(-1), math.NaN(), 710, -746, 709.78, -745.13)
		positionIndependent(t, "exp64/"+mode, few, expInPlace[float64])
		restore()
	}
	t.Logf("largest error %.2f ulp over %d values", worst, len(xs))
}

// BenchmarkExpInPlace64 is the float64 exp pass of the fused coupling over 4096 values of [−8, 2) (plus a
// 3-element tail), against math.Exp over the same values.
func BenchmarkExpInPlace64(b *testing.B) {
	src := make([]float64, 4099)
	for i := range src {
		src[i] = float64(i%200)/20 - 8
	}
	x := make([]float64, len(src))
	b.Run("expInPlace", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			copy(x, src)
			expInPlace(x)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(src)), "ns/exp")
	})
	b.Run("math.Exp", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for j, v := range src {
				x[j] = math.Exp(v)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(src)), "ns/exp")
	})
}

// tanhInPlace gives the same bits on the kernel sets this CPU runs (the AVX-512 steps around the ELU and the
// Go loops do the same exact operations and the same two roundings; see below for the float32 scalar set),
// over the whole float32 range and beyond in float64, and at every position of a slice.
func TestTanhKernelsAgree(t *testing.T) {
	xs32 := rangeValues32()
	var xs64 []float64
	for _, x := range xs32 {
		xs64 = append(xs64, float64(x)/3)
	}
	for e := -1074; e <= 1023; e += 5 {
		v := math.Ldexp(1.25, e)
		xs64 = append(xs64, v, -v)
	}
	run := func(mode string) ([]float32, []float64) {
		defer useProductKernels(mode)()
		v32, v64 := append([]float32(nil), xs32...), append([]float64(nil), xs64...)
		tanhInPlace(v32, make([]float32, len(v32)))
		tanhInPlace(v64, make([]float64, len(v64)))
		return v32, v64
	}
	// float64: every set against the scalar loops (elu64Scalar takes the vector kernels' steps); float32:
	// the vector sets against each other (the scalar float32 ELU loop has no fused multiply-adds).
	var r32 []float32
	var r64 []float64
	for _, mode := range productModes() {
		v32, v64 := run(mode)
		if r64 == nil {
			r64 = v64
		}
		for i := range v64 {
			if math.Float64bits(v64[i]) != math.Float64bits(r64[i]) && !(v64[i] != v64[i] && r64[i] != r64[i]) {
				t.Errorf("%s: float64 tanh(%v) = %v, the scalar loops give %v", mode, xs64[i], v64[i], r64[i])
			}
		}
		if mode == "scalar" {
			continue
		}
		if r32 == nil {
			r32 = v32
		}
		for i := range v32 {
			if math.Float32bits(v32[i]) != math.Float32bits(r32[i]) && !(v32[i] != v32[i] && r32[i] != r32[i]) {
				t.Errorf("%s: float32 tanh(%v) = %v, the first vector set gives %v", mode, xs32[i], v32[i], r32[i])
			}
		}
	}
	tanh32 := func(x []float32) { tanhInPlace(x, make([]float32, len(x))) }
	tanh64 := func(x []float64) { tanhInPlace(x, make([]float64, len(x))) }
	positionIndependent(t, "tanh32", xs32[:200], tanh32)
	positionIndependent(t, "tanh64", xs64[:200], tanh64)
}
