package layers

import (
	"fmt"
	"math"
	"math/big"
)

// exp32 is e^x in float32 over the whole float32 range (Cephes expf: range reduction by ln 2 in two parts
// and a degree-5 minimax polynomial), several times faster than float64 math.Exp: within 2 ulp of the
// correctly rounded value for normal results, +Inf exactly where e^x exceeds the largest float32
// (x > 88.7228391), gradual underflow to the denormals below x ≈ −87.34 and 0 below x ≈ −103.97; NaN stays
// NaN. The vector kernel expF32AVX2 evaluates the same steps (with fused multiply-adds), so a slice gives
// the same class of result (finite, ±Inf, 0, NaN) at every position.
func exp32(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
	)
	if x != x {
		return x
	}
	// Clamp to [expLo32, expHi32]: e^89 overflows and e^−104 rounds to 0 however they are computed, and the
	// clamp keeps the exponent n below within [−150, 128].
	if x > expHi32 {
		x = expHi32
	} else if x < expLo32 {
		x = expLo32
	}
	// Round x·log2(e) to the nearest integer with the 1.5·2²³ shifter (exact for |x·log2 e| < 2²²).
	const shifter = 12582912
	fx := (x*log2e + shifter) - shifter
	r := x - fx*c1 - fx*c2
	z := r * r
	p := ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
	p = p*z + r + 1
	// 2ⁿ in two halves, both normal floats for n in [−150, 128]: p·2^{n₁} is exact and the second product
	// rounds once, to +Inf above the largest float32 and into the denormals below the smallest normal.
	n := int32(fx)
	n1 := n >> 1
	return p * math.Float32frombits(uint32(n1+127)<<23) * math.Float32frombits(uint32(n-n1+127)<<23)
}

// The clamp bounds of exp32 and expF32AVX2 (eluConst32[12], [13]).
const (
	expHi32 = 89
	expLo32 = -104
)

// expT is e^x in the precision of T.
func expT[T float](x T) T {
	switch v := any(x).(type) {
	case float32:
		return T(exp32(v))
	default:
		return T(math.Exp(float64(x)))
	}
}

// tanhT is tanh x in the precision of T, from expT: tanh x = 1 − 2/(e^{2x} + 1), with the odd
// symmetry used for x < 0 so that small |x| keep their relative precision to a few ulp.
func tanhT[T float](x T) T {
	if _, ok := any(x).(float64); ok {
		return T(math.Tanh(float64(x)))
	}
	a := x
	if a < 0 {
		a = -a
	}
	var t T
	if a < 0.3 {
		// Odd Taylor series to x¹¹: truncation < 3e-9 relative here, where 1 − 2/(e^{2x}+1) would cancel.
		z := a * a
		t = a * (1 + z*(-1.0/3+z*(2.0/15+z*(-17.0/315+z*(62.0/2835+z*(-1382.0/155925))))))
	} else {
		t = 1 - 2/(expT(2*a)+1)
	}
	if x < 0 {
		return -t
	}
	return t
}

// The products below are the three shapes the fused ops need, for feature-major matrices with a long
// column count n. With AVX2+FMA (gemm_amd64.s) each output row is accumulated in registers over all k
// terms, 32 float32 / 16 float64 columns at a time; otherwise, and for the last few columns, plain loops.
// gonum's Sgemm/Dgemm would split these shapes into 64-column blocks and run them on goroutines
// (allocating and competing for cores); these stay on the calling goroutine and allocate nothing.

// The kernel wrappers (axpyRowsVec, dotVec, eluGradVector, swishVector; the same on every build) check the
// lengths of their slices with these before any assembly reads or writes them, and panic with a message
// naming the kernel and the lengths: a mismatch is a bug in the caller, and the assembly loops would
// otherwise read or write past the end of a slice.

// checkAxpyLens checks that b holds the (len(a)−1)·ldb + len(c) elements axpyRows reads.
func checkAxpyLens(nc, na, nb, ldb int) {
	if na == 0 {
		return
	}
	if ldb < 0 || (na-1)*ldb+nc > nb {
		panic(fmt.Sprintf("layers: axpyRows: b has %d elements, %d rows of stride ldb=%d over %d columns need %d",
			nb, na, ldb, nc, (na-1)*ldb+nc))
	}
}

// checkSameLen checks that two slices a kernel walks together have the same length.
func checkSameLen(kernel, a string, na int, b string, nb int) {
	if na != nb {
		panic(fmt.Sprintf("layers: %s: len(%s) = %d but len(%s) = %d, want equal lengths", kernel, a, na, b, nb))
	}
}

// axpyRows does c[j] += Σ_l a[l]·b[l·ldb + j] for every column j of c.
func axpyRows[T float](c, a, b []T, ldb int) {
	for j := axpyRowsVec(c, a, b, ldb); j < len(c); j++ {
		s := c[j]
		for l, v := range a {
			s += v * b[l*ldb+j]
		}
		c[j] = s
	}
}

// axpyRowsSet sets c[j] = init + Σ_l a[l]·b[l·ldb + j] for every column j of c: one pass with AVX-512,
// else a fill and axpyRows.
func axpyRowsSet[T float](c, a, b []T, ldb int, init T) {
	if axpyRowsSetVec(c, a, b, ldb, init) {
		return
	}
	fill(c, init)
	axpyRows(c, a, b, ldb)
}

// dot is Σ a[t]·b[t].
func dot[T float](a, b []T) T {
	s, t := dotVec(a, b)
	for ; t < len(a); t++ {
		s += a[t] * b[t]
	}
	return s
}

// mulAB accumulates C (m×n) += A (m×k) · B (k×n), all row-major with leading dimensions k, n, n.
func mulAB[T float](m, n, k int, a, b, c []T) { mulABCols(m, k, a, b, c, n, 0, n) }

// mulAtB sets C (k×n) = Aᵀ · B for A (m×k), B (m×n).
func mulAtB[T float](m, n, k int, a, b, c []T) { mulAtBCols(m, k, a, b, c, n, 0, n) }

// mulABt accumulates C (m×k) += A (m×n) · Bᵀ for B (k×n): dot products of length n.
func mulABt[T float](m, n, k int, a, b, c []T) { mulABtCols(m, k, a, b, c, n, 0, n) }

// mulABSet sets C (m×n) = A (m×k) · B (k×n) without reading C: four rows per pass where the CPU has the
// kernel.
func mulABSet[T float](m, n, k int, a, b, c []T) {
	var zero [4]T
	i := 0
	for ; i+4 <= m; i += 4 {
		if !axpy4Vec(c, i*n, n, n, a[i*k:], k, 1, k, b, n, &zero) {
			break
		}
	}
	for ; i < m; i++ {
		axpyRowsSet(c[i*n:(i+1)*n], a[i*k:(i+1)*k], b, n, 0)
	}
}

// The Cols forms restrict the long dimension to the columns [lo, hi) of matrices whose rows are ld long,
// so that a caller can run a chain of products over a block of columns that stays in cache.

// mulABCols accumulates C[:, lo:hi] += A (m×k) · B[:, lo:hi] for B (k×ld) and C (m×ld).
func mulABCols[T float](m, k int, a, b, c []T, ld, lo, hi int) {
	for i := 0; i < m; i++ {
		axpyRows(c[i*ld+lo:i*ld+hi], a[i*k:(i+1)*k], b[lo:], ld)
	}
}

// mulABBiasCols sets C[:, lo:hi] = A (m×k) · B[:, lo:hi] + bias (bias[i] added to row i): four rows per
// pass where the CPU has the kernel.
func mulABBiasCols[T float](m, k int, a, b, bias, c []T, ld, lo, hi int) {
	i := 0
	for ; i+4 <= m; i += 4 {
		if !axpy4Vec(c, i*ld+lo, hi-lo, ld, a[i*k:], k, 1, k, b[lo:], ld, (*[4]T)(bias[i:i+4])) {
			break
		}
	}
	for ; i < m; i++ {
		axpyRowsSet(c[i*ld+lo:i*ld+hi], a[i*k:(i+1)*k], b[lo:], ld, bias[i])
	}
}

// mulAtBCols sets C[:, lo:hi] = Aᵀ · B[:, lo:hi] for A (m×k), B (m×ld) and C (k×ld).
func mulAtBCols[T float](m, k int, a, b, c []T, ld, lo, hi int) {
	var buf [64]T
	col := buf[:]
	if m > len(buf) {
		col = make([]T, m)
	}
	var zero [4]T
	i := 0
	for ; i+4 <= k && m > 0; i += 4 { // four rows of C per pass: A's columns i…i+3 read with stride k
		if !axpy4Vec(c, i*ld+lo, hi-lo, ld, a[i:], 1, k, m, b[lo:], ld, &zero) {
			break
		}
	}
	for ; i < k; i++ {
		for l := 0; l < m; l++ {
			col[l] = a[l*k+i]
		}
		axpyRowsSet(c[i*ld+lo:i*ld+hi], col[:m], b[lo:], ld, 0)
	}
}

// mulABtCols accumulates C (m×k) += A[:, lo:hi] · B[:, lo:hi]ᵀ for A (m×ld), B (k×ld): four rows of B at
// a time where a kernel does four dot products in one pass, one at a time otherwise.
func mulABtCols[T float](m, k int, a, b, c []T, ld, lo, hi int) {
	mulABtColsStrided(m, k, a, b, c, k, 1, ld, lo, hi)
}

// mulABtColsStrided is mulABtCols with C's element (i, j) at c[i·ci + j·cj].
func mulABtColsStrided[T float](m, k int, a, b, c []T, ci, cj, ld, lo, hi int) {
	var four [4]T
	for i := 0; i < m; i++ {
		ai := a[i*ld+lo : i*ld+hi]
		j := 0
		for ; j+4 <= k; j += 4 {
			if !dot4Vec(ai, b[j*ld+lo:(j+3)*ld+hi], ld, &four) {
				break
			}
			for q, v := range four {
				c[i*ci+(j+q)*cj] += v
			}
		}
		for ; j < k; j++ {
			c[i*ci+j*cj] += dot(ai, b[j*ld+lo:j*ld+hi])
		}
	}
}

// mulABtColsWide is mulABtCols arranged so that the four-row kernel runs over the longer of m and k: when
// k < 4 ≤ m it computes Cᵀ = B·Aᵀ instead (the same sums, written to the same places).
func mulABtColsWide[T float](m, k int, a, b, c []T, ld, lo, hi int) {
	if k < 4 && m >= 4 {
		mulABtColsStrided(k, m, b, a, c, 1, k, ld, lo, hi)
		return
	}
	mulABtCols(m, k, a, b, c, ld, lo, hi)
}

// eluInPlace replaces every x by ELU(x): with AVX2+FMA kernels where the CPU has them (elu_amd64.s; the
// remainder padded to a whole vector), and on other CPUs (or with the purego build tag) with the scalar
// loops below, one type dispatch per slice.
func eluInPlace[T float](x []T) {
	x = x[eluVector(x):]
	if len(x) > 0 && vectorKernels() {
		// The tail through the vector kernel as well, padded to a whole vector, so that every position of a
		// slice gets bit-identical results.
		var buf [16]T
		copy(buf[:], x)
		eluVector(buf[:])
		copy(x, buf[:])
		return
	}
	switch v := any(x).(type) {
	case []float32:
		// Branch-free: the sign of a is random, and a mispredicted branch costs more than the exp
		// (measured: 11 against 3 ns per element); Go's float min/max are not single instructions
		// either. Evaluate e^{−|a|} − 1 always and select on the sign bit.
		for i, a := range v {
			b := math.Float32bits(a)
			x := math.Float32frombits(b | 0x80000000) // −|a|
			if x < -87 {
				x = -87 // e^−87 − 1 = −1 in float32
			}
			// exp32 inlined (the call costs as much as the polynomial).
			fx := (x*1.44269504088896341 + 12582912) - 12582912
			r := x - fx*0.693359375 - fx*-2.12194440e-4
			p := ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
			e := (p*(r*r) + r + 1) * math.Float32frombits(uint32(int32(fx)+127)<<23)
			neg := math.Float32bits(e - 1)
			m := uint32(int32(b) >> 31) // all ones when a is negative
			v[i] = math.Float32frombits(b&^m | neg&m)
		}
	case []float64:
		elu64Scalar(v)
	}
}

// elu64Scalar is the float64 ELU of every x in place, branch-free apart from a rarely taken clamp, the
// same steps as the vector kernels eluF64AVX2 and eluF64AVX512 (elu_amd64.s, elu512_amd64.s) one element
// at a time, so that every path gives the same bits. For a ≤ 0, with x = max(a, −40) (e^−40 < 2⁻⁵⁷: the
// result is −1 to double precision):
//
//	k = round(x·16/ln2) (the 1.5·2⁵² shifter, one fused multiply-add), r = x − k·ln2/16 (ln2 in two parts,
//	the first product exact), |r| ≤ ln2/32; k = 16n + j, j = k mod 16;
//	s = 2ⁿ·2^{j/16} = hi + lo (hi the rounded table value, lo the remainder, both scaled exactly by 2ⁿ);
//	q = e^r − 1 ≈ r + r²·P(r), P of degree 5 (elu64Poly: relative error of q below 3.1·10⁻¹⁸, 0.014 ulp);
//	e^x − 1 = (hi − 1) + (hi·q + lo)   (the lo·q term, below 2⁻⁵⁴·|q|, dropped).
//
// Near 0 (k = 0: hi = 1, lo = 0) the result is q alone, so tiny arguments keep their relative accuracy;
// for −16 ≤ k < 0, hi ∈ [½, 1) and hi − 1 is exact (Sterbenz), which is where the result can be small;
// further out the result lies in [½, 1) in magnitude and each of the two roundings costs at most half an
// ulp. The tests measure at most 1 ulp against math.Expm1 (whose own error is below 1 ulp).
// 2ⁿ comes from the shifter's bits (k sits in the low mantissa bits): ((bits >> 4) << 52) + bits(1.0), and
// the table index is the low four bits, which is what the AVX-512 permute reads.
func elu64Scalar(v []float64) {
	t := &eluConst64
	for i, a := range v {
		b := math.Float64bits(a)
		x := math.Float64frombits(b | 1<<63)
		if x < -40 {
			x = -40
		}
		kd := math.FMA(x, elu64Inv, elu64Shifter)
		kf := kd - elu64Shifter
		r := math.FMA(-kf, elu64Ln2Hi, x)
		r = math.FMA(-kf, elu64Ln2Lo, r)
		kb := math.Float64bits(kd)
		p2 := math.Float64frombits((kb>>4)<<52 + 0x3ff0000000000000)
		hi, lo := t.hi[kb&15]*p2, t.lo[kb&15]*p2
		p := t.c[9][0]
		for _, c := range t.c[10:15] { // a4, …, a0
			p = math.FMA(p, r, c[0])
		}
		r2 := r * r
		q := math.FMA(r2, p, r)
		neg := math.Float64bits((hi - 1) + math.FMA(hi, q, lo))
		m := uint64(int64(b) >> 63) // all ones when a is negative
		v[i] = math.Float64frombits(b&^m | neg&m)
	}
}

// The reduction constants of the float64 ELU (elu64Scalar): 16/ln2, the 1.5·2⁵² shifter, and ln2/16 in two
// parts (the first with 21 trailing zero bits, so k·elu64Ln2Hi is exact for |k| < 2²¹; here |k| ≤ 924).
const (
	elu64Inv     = 16 / math.Ln2
	elu64Shifter = 6755399441055744
	elu64Ln2Hi   = 6.93147180369123816490e-01 / 16
	elu64Ln2Lo   = 1.90821492927058770002e-10 / 16
)

// eluConsts64 are the constants of the float64 ELU, the layout its vector kernels read: c rows (each
// repeated over four lanes) 0 the clamp −40, 1 16/ln2, 2 the shifter, 3 ln2/16 hi, 4 lo, 5 1.0, 6 the sign
// bit, 7 the integer 15 (the AVX2 table-index mask), 8 unused (zero), 9…14 the coefficients a5, a4, …, a0
// of elu64Poly, 15 1/16 (AVX-512: n = k/16 for its scale instruction, which takes 2^⌊n⌋); then 2^{j/16} for j = 0…15 as
// hi and lo (exp2Table16). Byte offsets: c 0, hi 512, lo 640.
type eluConsts64 struct {
	c      [16][4]float64
	hi, lo [16]float64
}

// eluConst64 is the one set of float64 ELU constants (read-only after initialisation).
var eluConst64 = func() (t eluConsts64) {
	row := func(i int, v float64) { t.c[i] = [4]float64{v, v, v, v} }
	row(0, -40)
	row(1, elu64Inv)
	row(2, elu64Shifter)
	row(3, elu64Ln2Hi)
	row(4, elu64Ln2Lo)
	row(5, 1)
	row(6, math.Float64frombits(1<<63))
	row(7, math.Float64frombits(15))
	for i, a := range elu64Poly() { // row 8 unused (zero)
		row(9+i, a)
	}
	row(15, 1.0/16)
	for j := range t.hi {
		t.hi[j], t.lo[j] = exp2Table16[j][0], exp2Table16[j][1]
	}
	return t
}()

// elu64Poly returns the coefficients a5, a4, …, a0 of P(r) = a0 + a1·r + … + a5·r⁵ with
// q(r) = r + r²·P(r) ≈ e^r − 1 for |r| ≤ h = ln2/32 (the reduced argument of elu64Scalar).
//
// The Taylor series gives P_T(r) = Σ_{m≥0} r^m/(m+2)!. Its degree-6 truncation has the term r⁶/8!, which
// Chebyshev economisation folds into the lower even coefficients: with u = r/h, u⁶ = T₆(u)/32 +
// 1.5u⁴ − 0.5625u² + 1/32, and |T₆(u)| ≤ 1 on [−1, 1], so replacing r⁶ by h²·1.5r⁴ − h⁴·0.5625r² + h⁶/32
// errs by at most h⁶/32 (then divided by 8!). Hence for |r| ≤ h
//
//	|P_T(r) − P(r)| ≤ h⁶/(32·8!) + (h⁷/9!)·(1 + h) + 2⁻⁵⁴ ≈ 8.0·10⁻¹⁷ + 6.3·10⁻¹⁸ + 5.6·10⁻¹⁷
//
// (the last term: rounding a0 = ½ + h⁶/(32·8!) to float64, which gives ½ + 2⁻⁵³; the roundings of the
// other coefficients weigh |r| or more times less), so |q − (e^r − 1)| = r²·|P_T − P| ≤ 6.7·10⁻²⁰ and,
// relative to |e^r − 1| ≥ 0.989|r|, ≤ 3.1·10⁻¹⁸ (0.014 ulp), against 3·10⁻²¹ absolute for the degree-8
// Taylor polynomial it replaces (one fused multiply-add fewer per element). q(r) = r + r²·P keeps full
// relative accuracy near 0. TestELU64PolyBound checks the bound in 200-bit arithmetic with these float64
// coefficients (measured: 2.2·10⁻¹⁸), TestELU64Accuracy the whole ELU (within 1 ulp).
func elu64Poly() [6]float64 {
	h := math.Ln2 / 32
	h2 := h * h
	f8 := 40320.0 // 8!
	return [6]float64{
		1.0 / 5040,               // 1/7!
		1.0/720 + 1.5*h2/f8,      // 1/6! + 1.5h²/8!
		1.0 / 120,                // 1/5!
		1.0/24 - 0.5625*h2*h2/f8, // 1/4! − 0.5625h⁴/8!
		1.0 / 6,                  // 1/3!
		0.5 + h2*h2*h2/(32*f8),   // 1/2! + h⁶/(32·8!) (= ½ + 2⁻⁵³ after rounding)
	}
}

// exp2Table16[j] holds 2^{j/16} as an unevaluated sum hi + lo (hi correctly rounded, lo the remainder),
// computed once by Newton's method in 200-bit arithmetic.
var exp2Table16 = func() (t [16][2]float64) {
	for j := range t {
		target := new(big.Float).SetPrec(200).SetMantExp(big.NewFloat(1), j) // 2^j
		y := new(big.Float).SetPrec(200).SetFloat64(math.Exp2(float64(j) / 16))
		for it := 0; it < 4; it++ { // y ← y − (y¹⁶ − 2^j)/(16 y¹⁵)
			y15 := new(big.Float).SetPrec(200).SetFloat64(1)
			for k := 0; k < 15; k++ {
				y15.Mul(y15, y)
			}
			f := new(big.Float).SetPrec(200).Mul(y15, y)
			f.Sub(f, target)
			d := new(big.Float).SetPrec(200).Mul(y15, big.NewFloat(16))
			y.Sub(y, f.Quo(f, d))
		}
		hi, _ := y.Float64()
		rest := new(big.Float).SetPrec(200).Sub(y, big.NewFloat(hi))
		lo, _ := rest.Float64()
		t[j] = [2]float64{hi, lo}
	}
	return t
}()

// eluGradTo sets dst = g·ELU'(x) given y = ELU(x), in one pass: the same numbers as eluGradInPlace on a
// copy of g.
func eluGradTo[T float](dst, g, y []T) {
	k := eluGradToVector(dst, g, y)
	dst, g, y = dst[k:], g[k:], y[k:]
	for j, v := range y {
		dst[j] = g[j] * (min(v, 0) + 1)
	}
}

// eluGradInPlace multiplies g by ELU'(x) given y = ELU(x): 1 for y > 0 and y + 1 otherwise.
func eluGradInPlace[T float](g, y []T) {
	k := eluGradVector(g, y)
	g, y = g[k:], y[k:]
	// min(y, 0) + 1 as the vector kernels compute it: a NaN y (of either sign) gives NaN, +Inf gives 1.
	switch gv := any(g).(type) {
	case []float32:
		yv := any(y).([]float32)
		for j, v := range yv[:len(gv)] {
			gv[j] *= min(v, 0) + 1
		}
	case []float64:
		yv := any(y).([]float64)
		for j, v := range yv[:len(gv)] {
			gv[j] *= min(v, 0) + 1
		}
	}
}

// expInPlace replaces every x by e^x (float32: the exp32 polynomial, float64: exp64, vectorised where the
// CPU allows; the last elements that do not fill a vector go through the vector kernel too, padded, so every
// position is computed alike).
func expInPlace[T float](x []T) {
	switch v := any(x).(type) {
	case []float32:
		k := expVector(v)
		if tail := v[k:]; len(tail) > 0 && vectorKernels() {
			var buf [8]float32
			copy(buf[:], tail)
			expVector(buf[:])
			copy(tail, buf[:])
			return
		}
		for i := k; i < len(v); i++ {
			v[i] = exp32(v[i])
		}
	case []float64:
		k := expVector64(v)
		if tail := v[k:]; len(tail) > 0 && vectorKernels() {
			var buf [4]float64
			copy(buf[:], tail)
			expVector64(buf[:])
			copy(tail, buf[:])
			return
		}
		for i := k; i < len(v); i++ {
			v[i] = exp64(v[i])
		}
	}
}

// tanhInPlace replaces every x by tanh x, through tanh|x| = −m/(2 + m) with m = e^{−2|x|} − 1 from the ELU
// kernels (float32: absolute error about one ulp of 1; float64: a few ulp) and the sign of x; scratch has
// len(x). NaN stays NaN. The absolute value and the sign are bit operations, not branches: the signs of a
// coupling's s-net outputs are random, and a branch on them was mispredicted about every other element.
func tanhInPlace[T float](x, scratch []T) {
	m := scratch[:len(x)]
	k := tanhPrepVector(m, x) // the same operations, exact, on a leading part where the CPU has the kernel
	switch v := any(x).(type) {
	case []float32:
		m := any(m).([]float32)
		for i, a := range v[k:] {
			m[k+i] = -2 * math.Float32frombits(math.Float32bits(a)&^(1<<31))
		}
		eluInPlace(m)
		k = tanhDoneVector(v, m) // the same two roundings
		for i, a := range v[k:] {
			t := -m[k+i] / (2 + m[k+i])
			v[k+i] = math.Float32frombits(math.Float32bits(t)&^(1<<31) | math.Float32bits(a)&(1<<31))
		}
	case []float64:
		m := any(m).([]float64)
		for i, a := range v[k:] {
			m[k+i] = -2 * math.Abs(a)
		}
		eluInPlace(m)
		k = tanhDoneVector(v, m)
		for i, a := range v[k:] {
			t := -m[k+i] / (2 + m[k+i])
			v[k+i] = math.Float64frombits(math.Float64bits(t)&^(1<<63) | math.Float64bits(a)&(1<<63))
		}
	}
}
