//go:build amd64 && !purego

package layers

import "fmt"

//go:noescape
func dot4x4F32AVX512(a []float32, lda int, b []float32, ldb int, n int, out *[16]float32)

//go:noescape
func dot4x4F64AVX512(a []float64, lda int, b []float64, ldb int, n int, out *[16]float64)

// dot4x4Vec sets out[4i + j] = Σ_{t<n} a[i·lda + t]·b[j·ldb + t] for i, j = 0…3 in one pass with AVX-512
// (nvpfused_amd64.s) and reports true; without AVX-512 it does nothing and returns false. It panics, naming
// the slice, when a row would run past a or b.
func dot4x4Vec[T float](a []T, lda int, b []T, ldb, n int, out *[16]T) bool {
	if n < 0 || 3*lda+n > len(a) || 3*ldb+n > len(b) {
		panic(fmt.Sprintf("layers: dot4x4: 4 rows of %d from a (%d elements, stride %d) and b (%d, stride %d)", n, len(a), lda, len(b), ldb))
	}
	if !hasAVX512 {
		return false
	}
	switch aa := any(a).(type) {
	case []float32:
		dot4x4F32AVX512(aa, lda, any(b).([]float32), ldb, n, any(out).(*[16]float32))
	case []float64:
		dot4x4F64AVX512(aa, lda, any(b).([]float64), ldb, n, any(out).(*[16]float64))
	}
	return true
}
