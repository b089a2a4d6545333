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

//go:noescape
func dotBlk1x1F32AVX512(a []float32, lda int, b []float32, ldb int, n int, out *[20]float32)

//go:noescape
func dotBlk1x2F32AVX512(a []float32, lda int, b []float32, ldb int, n int, out *[20]float32)

//go:noescape
func dotBlk1x3F32AVX512(a []float32, lda int, b []float32, ldb int, n int, out *[20]float32)

//go:noescape
func dotBlk1x4F32AVX512(a []float32, lda int, b []float32, ldb int, n int, out *[20]float32)

//go:noescape
func dotBlk2x1F32AVX512(a []float32, lda int, b []float32, ldb int, n int, out *[20]float32)

//go:noescape
func dotBlk2x2F32AVX512(a []float32, lda int, b []float32, ldb int, n int, out *[20]float32)

//go:noescape
func dotBlk2x3F32AVX512(a []float32, lda int, b []float32, ldb int, n int, out *[20]float32)

//go:noescape
func dotBlk2x4F32AVX512(a []float32, lda int, b []float32, ldb int, n int, out *[20]float32)

//go:noescape
func dotBlk3x1F32AVX512(a []float32, lda int, b []float32, ldb int, n int, out *[20]float32)

//go:noescape
func dotBlk3x2F32AVX512(a []float32, lda int, b []float32, ldb int, n int, out *[20]float32)

//go:noescape
func dotBlk3x3F32AVX512(a []float32, lda int, b []float32, ldb int, n int, out *[20]float32)

//go:noescape
func dotBlk3x4F32AVX512(a []float32, lda int, b []float32, ldb int, n int, out *[20]float32)

//go:noescape
func dotBlk4x1F32AVX512(a []float32, lda int, b []float32, ldb int, n int, out *[20]float32)

//go:noescape
func dotBlk4x2F32AVX512(a []float32, lda int, b []float32, ldb int, n int, out *[20]float32)

//go:noescape
func dotBlk4x3F32AVX512(a []float32, lda int, b []float32, ldb int, n int, out *[20]float32)

//go:noescape
func dotBlk4x4F32AVX512(a []float32, lda int, b []float32, ldb int, n int, out *[20]float32)

//go:noescape
func dotBlk1x1F64AVX512(a []float64, lda int, b []float64, ldb int, n int, out *[20]float64)

//go:noescape
func dotBlk1x2F64AVX512(a []float64, lda int, b []float64, ldb int, n int, out *[20]float64)

//go:noescape
func dotBlk1x3F64AVX512(a []float64, lda int, b []float64, ldb int, n int, out *[20]float64)

//go:noescape
func dotBlk1x4F64AVX512(a []float64, lda int, b []float64, ldb int, n int, out *[20]float64)

//go:noescape
func dotBlk2x1F64AVX512(a []float64, lda int, b []float64, ldb int, n int, out *[20]float64)

//go:noescape
func dotBlk2x2F64AVX512(a []float64, lda int, b []float64, ldb int, n int, out *[20]float64)

//go:noescape
func dotBlk2x3F64AVX512(a []float64, lda int, b []float64, ldb int, n int, out *[20]float64)

//go:noescape
func dotBlk2x4F64AVX512(a []float64, lda int, b []float64, ldb int, n int, out *[20]float64)

//go:noescape
func dotBlk3x1F64AVX512(a []float64, lda int, b []float64, ldb int, n int, out *[20]float64)

//go:noescape
func dotBlk3x2F64AVX512(a []float64, lda int, b []float64, ldb int, n int, out *[20]float64)

//go:noescape
func dotBlk3x3F64AVX512(a []float64, lda int, b []float64, ldb int, n int, out *[20]float64)

//go:noescape
func dotBlk3x4F64AVX512(a []float64, lda int, b []float64, ldb int, n int, out *[20]float64)

//go:noescape
func dotBlk4x1F64AVX512(a []float64, lda int, b []float64, ldb int, n int, out *[20]float64)

//go:noescape
func dotBlk4x2F64AVX512(a []float64, lda int, b []float64, ldb int, n int, out *[20]float64)

//go:noescape
func dotBlk4x3F64AVX512(a []float64, lda int, b []float64, ldb int, n int, out *[20]float64)

//go:noescape
func dotBlk4x4F64AVX512(a []float64, lda int, b []float64, ldb int, n int, out *[20]float64)

// dotBlkF32 and dotBlkF64 are the block kernels above by [M−1][N−1].
var (
	dotBlkF32 = [4][4]func(a []float32, lda int, b []float32, ldb int, n int, out *[20]float32){
		{dotBlk1x1F32AVX512, dotBlk1x2F32AVX512, dotBlk1x3F32AVX512, dotBlk1x4F32AVX512},
		{dotBlk2x1F32AVX512, dotBlk2x2F32AVX512, dotBlk2x3F32AVX512, dotBlk2x4F32AVX512},
		{dotBlk3x1F32AVX512, dotBlk3x2F32AVX512, dotBlk3x3F32AVX512, dotBlk3x4F32AVX512},
		{dotBlk4x1F32AVX512, dotBlk4x2F32AVX512, dotBlk4x3F32AVX512, dotBlk4x4F32AVX512}}
	dotBlkF64 = [4][4]func(a []float64, lda int, b []float64, ldb int, n int, out *[20]float64){
		{dotBlk1x1F64AVX512, dotBlk1x2F64AVX512, dotBlk1x3F64AVX512, dotBlk1x4F64AVX512},
		{dotBlk2x1F64AVX512, dotBlk2x2F64AVX512, dotBlk2x3F64AVX512, dotBlk2x4F64AVX512},
		{dotBlk3x1F64AVX512, dotBlk3x2F64AVX512, dotBlk3x3F64AVX512, dotBlk3x4F64AVX512},
		{dotBlk4x1F64AVX512, dotBlk4x2F64AVX512, dotBlk4x3F64AVX512, dotBlk4x4F64AVX512}}
)

// dotBlkVec sets out[4i + j] = Σ_{t<n} a[i·lda + t]·b[j·ldb + t] for i < M, j < N (1 ≤ M, N ≤ 4) and
// out[16 + i] = Σ_{t<n} a[i·lda + t] in one pass with AVX-512 (nvpfused_amd64.s) and reports true; without
// AVX-512 it does nothing and returns false. It panics, naming the slice, when a row would run past a or b.
func dotBlkVec[T float](M, N int, a []T, lda int, b []T, ldb, n int, out *[20]T) bool {
	if M < 1 || M > 4 || N < 1 || N > 4 || n < 0 || (M-1)*lda+n > len(a) || (N-1)*ldb+n > len(b) {
		panic(fmt.Sprintf("layers: dotBlk: %d×%d rows of %d from a (%d elements, stride %d) and b (%d, stride %d)", M, N, n, len(a), lda, len(b), ldb))
	}
	if !hasAVX512 {
		return false
	}
	switch aa := any(a).(type) {
	case []float32:
		dotBlkF32[M-1][N-1](aa, lda, any(b).([]float32), ldb, n, any(out).(*[20]float32))
	case []float64:
		dotBlkF64[M-1][N-1](aa, lda, any(b).([]float64), ldb, n, any(out).(*[20]float64))
	}
	return true
}

//go:noescape
func rowsAxpy1F32AVX512(c []float32, ldc int, a []float32, sr, sl, k int, b []float32, ldb int, init *float32)

//go:noescape
func rowsAxpy2F32AVX512(c []float32, ldc int, a []float32, sr, sl, k int, b []float32, ldb int, init *float32)

//go:noescape
func rowsAxpy3F32AVX512(c []float32, ldc int, a []float32, sr, sl, k int, b []float32, ldb int, init *float32)

//go:noescape
func rowsAxpy4F32AVX512(c []float32, ldc int, a []float32, sr, sl, k int, b []float32, ldb int, init *float32)

//go:noescape
func rowsAxpy5F32AVX512(c []float32, ldc int, a []float32, sr, sl, k int, b []float32, ldb int, init *float32)

//go:noescape
func rowsAxpy6F32AVX512(c []float32, ldc int, a []float32, sr, sl, k int, b []float32, ldb int, init *float32)

//go:noescape
func rowsAxpy7F32AVX512(c []float32, ldc int, a []float32, sr, sl, k int, b []float32, ldb int, init *float32)

//go:noescape
func rowsAxpy8F32AVX512(c []float32, ldc int, a []float32, sr, sl, k int, b []float32, ldb int, init *float32)

//go:noescape
func rowsAxpy1F64AVX512(c []float64, ldc int, a []float64, sr, sl, k int, b []float64, ldb int, init *float64)

//go:noescape
func rowsAxpy2F64AVX512(c []float64, ldc int, a []float64, sr, sl, k int, b []float64, ldb int, init *float64)

//go:noescape
func rowsAxpy3F64AVX512(c []float64, ldc int, a []float64, sr, sl, k int, b []float64, ldb int, init *float64)

//go:noescape
func rowsAxpy4F64AVX512(c []float64, ldc int, a []float64, sr, sl, k int, b []float64, ldb int, init *float64)

//go:noescape
func rowsAxpy5F64AVX512(c []float64, ldc int, a []float64, sr, sl, k int, b []float64, ldb int, init *float64)

//go:noescape
func rowsAxpy6F64AVX512(c []float64, ldc int, a []float64, sr, sl, k int, b []float64, ldb int, init *float64)

//go:noescape
func rowsAxpy7F64AVX512(c []float64, ldc int, a []float64, sr, sl, k int, b []float64, ldb int, init *float64)

//go:noescape
func rowsAxpy8F64AVX512(c []float64, ldc int, a []float64, sr, sl, k int, b []float64, ldb int, init *float64)

// axpyRF32 and axpyRF64 are the kernels above by row count R (index R, 1…8).
var (
	axpyRF32 = [...]func(c []float32, ldc int, a []float32, sr, sl, k int, b []float32, ldb int, init *float32){nil,
		rowsAxpy1F32AVX512, rowsAxpy2F32AVX512, rowsAxpy3F32AVX512, rowsAxpy4F32AVX512, rowsAxpy5F32AVX512, rowsAxpy6F32AVX512, rowsAxpy7F32AVX512, rowsAxpy8F32AVX512}
	axpyRF64 = [...]func(c []float64, ldc int, a []float64, sr, sl, k int, b []float64, ldb int, init *float64){nil,
		rowsAxpy1F64AVX512, rowsAxpy2F64AVX512, rowsAxpy3F64AVX512, rowsAxpy4F64AVX512, rowsAxpy5F64AVX512, rowsAxpy6F64AVX512, rowsAxpy7F64AVX512, rowsAxpy8F64AVX512}
)

// axpyRMax is the most rows axpyRVec does in one pass.
const axpyRMax = 8

// axpyRVec does, for the R rows r < R (1 ≤ R ≤ 8) and the columns j < n, c[off + r·ldc + j] = init[r] (or,
// with a nil init, its old value) + Σ_{l<k} a[r·sr + l·sl]·b[l·ldb + j] in one pass with AVX-512 (each load
// of b serves R rows; the sum over l in order, one fused multiply-add at a time), and reports true; without
// AVX-512 it does nothing and returns false. It panics, naming the slice, when any of the elements it would
// touch lies outside c, a, b or init.
func axpyRVec[T float](R int, c []T, off, n, ldc int, a []T, sr, sl, k int, b []T, ldb int, init []T) bool {
	if R < 1 || R > axpyRMax || n < 0 || k < 0 || off < 0 || off+(R-1)*ldc+n > len(c) {
		panic(fmt.Sprintf("layers: axpyR: %d rows of stride %d over %d columns from %d in c of %d elements", R, ldc, n, off, len(c)))
	}
	if k > 0 && ((R-1)*sr+(k-1)*sl >= len(a) || (k-1)*ldb+n > len(b)) {
		panic(fmt.Sprintf("layers: axpyR: a has %d elements (needs %d), b has %d (needs %d)", len(a), (R-1)*sr+(k-1)*sl+1, len(b), (k-1)*ldb+n))
	}
	if init != nil && len(init) < R {
		panic(fmt.Sprintf("layers: axpyR: %d initial values for %d rows", len(init), R))
	}
	if !hasAVX512 || n == 0 {
		return hasAVX512
	}
	switch cc := any(c).(type) {
	case []float32:
		var p *float32
		if init != nil {
			p = &any(init).([]float32)[0]
		}
		axpyRF32[R](cc[off:off+n:len(cc)], ldc, any(a).([]float32), sr, sl, k, any(b).([]float32), ldb, p)
	case []float64:
		var p *float64
		if init != nil {
			p = &any(init).([]float64)[0]
		}
		axpyRF64[R](cc[off:off+n:len(cc)], ldc, any(a).([]float64), sr, sl, k, any(b).([]float64), ldb, p)
	}
	return true
}
