package layers

import "math"

// sincosInPlace sets s[i], c[i] = sin x[i], cos x[i] (s and c as long as x). With AVX-512 or AVX2+FMA
// (fastmath_sincos_amd64.s): x = k·π/2 + r, |r| ≤ π/4, with π/2 in three parts and fused multiply-adds,
// then the Taylor series of sin r and cos r (float64 to r¹⁷ and r¹⁸: a few ulp; float32 to r⁹ and r¹⁰ in
// float32 arithmetic: about one ulp of 1), rotated by the quadrant with bit operations; elements with
// |x| ≥ sincosLimit (2^20 for float64, 2^13 for float32), infinities and NaN go to math.Sincos. Elsewhere
// (and for the tail that does not fill a vector) the scalar sincos64 (float64) or sincos32 rounded to
// float32.
func sincosInPlace[T float](x, s, c []T) {
	s, c = s[:len(x)], c[:len(x)]
	n, outside := sincosVector(x, s, c)
	if outside {
		lim := sincosLimit[T]()
		for i, v := range x[:n] {
			if !(math.Abs(float64(v)) < lim) {
				a, b := math.Sincos(float64(v))
				s[i], c[i] = T(a), T(b)
			}
		}
	}
	_, is32 := any(x).([]float32)
	for i := n; i < len(x); i++ {
		var a, b float64
		if is32 {
			a, b = sincos32(float64(x[i]))
		} else {
			a, b = sincos64(float64(x[i]))
		}
		s[i], c[i] = T(a), T(b)
	}
}

// sincosLimit is the |x| from which the vector kernels leave an element to math.Sincos.
func sincosLimit[T float]() float64 {
	var z T
	if _, ok := any(z).(float32); ok {
		return 1 << 13
	}
	return 1 << 20
}
