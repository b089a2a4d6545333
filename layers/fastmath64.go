package layers

import "math"

// exp64 is e^x in float64 over the whole float64 range, the scalar form of the vector kernel expF64AVX2
// (used on builds and CPUs without it): x is clamped to [−746, 710] (e^710 overflows and e^−746 rounds to
// 0 however they are computed; a NaN stays NaN), reduced to x = n·ln2 + r with |r| ≤ ln2/2 (n·ln2 in two
// parts, the first exact), e^r = 1 + r + r²·P(r) with P the Taylor polynomial of (e^r − 1 − r)/r² to r¹¹
// (truncation below 5·10⁻¹⁸ relative), and 2ⁿ applied as 2^{n₁}·2^{n−n₁} with n₁ = n>>1: both are normal
// floats, p·2^{n₁} is exact and the second product rounds once, to +Inf above the largest float64 and into
// the denormals below the smallest normal. Within 1 ulp of the correctly rounded e^x (the tests check 2).
func exp64(x float64) float64 {
	if x != x {
		return x
	}
	x = max(expLo64, min(expHi64, x))
	n := math.RoundToEven(x * math.Log2E)
	r := x - n*ln2Hi64
	r -= n * ln2Lo64
	p := expPoly64[0]
	for _, c := range expPoly64[1:] {
		p = p*r + c
	}
	e := 1 + (r*r*p + r)
	ni := int64(n)
	n1 := ni >> 1
	return e * math.Float64frombits(uint64(n1+1023)<<52) * math.Float64frombits(uint64(ni-n1+1023)<<52)
}

// The clamp bounds and the two parts of ln 2 (the first has 11 trailing zero bits, so n·ln2Hi64 is exact
// for |n| < 2¹¹) of exp64 and expF64AVX2.
const (
	expHi64 = 710
	expLo64 = -746
	ln2Hi64 = 6.93147180369123816490e-01
	ln2Lo64 = 1.90821492927058770002e-10
)

// expPoly64 are 1/13!, 1/12!, …, 1/2!: the Horner coefficients of P in exp64.
var expPoly64 = func() (c [12]float64) {
	f := 1.0
	inv := make([]float64, 14)
	for k := 1; k <= 13; k++ {
		f *= float64(k)
		inv[k] = 1 / f
	}
	for i := range c {
		c[i] = inv[13-i]
	}
	return c
}()
