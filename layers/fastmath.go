package layers

import (
	"math"

	"gonum.org/v1/gonum/blas/gonum"
)

// exp32 is e^x in float32 to within 2 ulp on [−87, 88] (Cephes expf: range reduction by ln 2 in two
// parts and a degree-5 minimax polynomial), several times faster than float64 math.Exp. Below −87 it
// returns 0, above 88 +Inf; NaN stays NaN.
func exp32(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
	)
	if x != x {
		return x
	}
	if x > 88.72283 {
		return float32(math.Inf(1))
	}
	if x < -87.33654 {
		return 0
	}
	// Round x·log2(e) to the nearest integer with the 1.5·2²³ shifter (exact for |x·log2 e| < 2²²).
	const shifter = 12582912
	fx := (x*log2e + shifter) - shifter
	r := x - fx*c1 - fx*c2
	z := r * r
	p := ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
	p = p*z + r + 1
	return p * math.Float32frombits(uint32(int32(fx)+127)<<23)
}

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

// eluT is x for x > 0 and e^x − 1 otherwise (float64 uses Expm1).
func eluT[T float](x T) T {
	if x > 0 {
		return x
	}
	if _, ok := any(x).(float64); ok {
		return T(math.Expm1(float64(x)))
	}
	return expT(x) - 1
}

// The products below are the three shapes the fused ops need, for feature-major matrices with a long
// column count n: each is a loop of level-1 BLAS calls of length n (gonum's SIMD axpy and dot kernels).
// gonum's Sgemm/Dgemm would split these shapes into 64-column blocks and run them on goroutines (allocating
// and competing for cores); these stay on the calling goroutine and allocate nothing.

// mulAB accumulates C (m×n) += A (m×k) · B (k×n), all row-major with leading dimensions k, n, n.
func mulAB[T float](m, n, k int, a, b, c []T) {
	var impl gonum.Implementation
	switch cc := any(c).(type) {
	case []float32:
		aa, bb := any(a).([]float32), any(b).([]float32)
		for i := 0; i < m; i++ {
			ci := cc[i*n : (i+1)*n]
			for l := 0; l < k; l++ {
				if v := aa[i*k+l]; v != 0 {
					impl.Saxpy(n, v, bb[l*n:(l+1)*n], 1, ci, 1)
				}
			}
		}
	case []float64:
		aa, bb := any(a).([]float64), any(b).([]float64)
		for i := 0; i < m; i++ {
			ci := cc[i*n : (i+1)*n]
			for l := 0; l < k; l++ {
				if v := aa[i*k+l]; v != 0 {
					impl.Daxpy(n, v, bb[l*n:(l+1)*n], 1, ci, 1)
				}
			}
		}
	}
}

// mulAtB sets C (k×n) = Aᵀ · B for A (m×k), B (m×n).
func mulAtB[T float](m, n, k int, a, b, c []T) {
	for i := range c[:k*n] {
		c[i] = 0
	}
	var impl gonum.Implementation
	switch cc := any(c).(type) {
	case []float32:
		aa, bb := any(a).([]float32), any(b).([]float32)
		for i := 0; i < k; i++ {
			ci := cc[i*n : (i+1)*n]
			for l := 0; l < m; l++ {
				if v := aa[l*k+i]; v != 0 {
					impl.Saxpy(n, v, bb[l*n:(l+1)*n], 1, ci, 1)
				}
			}
		}
	case []float64:
		aa, bb := any(a).([]float64), any(b).([]float64)
		for i := 0; i < k; i++ {
			ci := cc[i*n : (i+1)*n]
			for l := 0; l < m; l++ {
				if v := aa[l*k+i]; v != 0 {
					impl.Daxpy(n, v, bb[l*n:(l+1)*n], 1, ci, 1)
				}
			}
		}
	}
}

// mulABt accumulates C (m×k) += A (m×n) · Bᵀ for B (k×n): dot products of length n.
func mulABt[T float](m, n, k int, a, b, c []T) {
	var impl gonum.Implementation
	switch cc := any(c).(type) {
	case []float32:
		aa, bb := any(a).([]float32), any(b).([]float32)
		for i := 0; i < m; i++ {
			for j := 0; j < k; j++ {
				cc[i*k+j] += impl.Sdot(n, aa[i*n:(i+1)*n], 1, bb[j*n:(j+1)*n], 1)
			}
		}
	case []float64:
		aa, bb := any(a).([]float64), any(b).([]float64)
		for i := 0; i < m; i++ {
			for j := 0; j < k; j++ {
				cc[i*k+j] += impl.Ddot(n, aa[i*n:(i+1)*n], 1, bb[j*n:(j+1)*n], 1)
			}
		}
	}
}

// eluInPlace replaces every x by ELU(x), with one type dispatch per slice.
func eluInPlace[T float](x []T) {
	switch v := any(x).(type) {
	case []float32:
		for i, a := range v {
			if a <= 0 {
				v[i] = exp32(a) - 1
			}
		}
	case []float64:
		for i, a := range v {
			if a <= 0 {
				v[i] = math.Expm1(a)
			}
		}
	}
}
