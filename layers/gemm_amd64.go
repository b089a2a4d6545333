//go:build amd64 && !purego

package layers

import (
	"fmt"

	"golang.org/x/sys/cpu"
)

//go:noescape
func axpyRowsF32(c, a, b []float32, ldb int)

//go:noescape
func axpyRowsF64(c, a, b []float64, ldb int)

//go:noescape
func dotF32(a, b []float32) float32

//go:noescape
func dotF64(a, b []float64) float64

//go:noescape
func axpyRowsF32AVX512(c, a, b []float32, ldb int, init *float32)

//go:noescape
func axpyRowsF64AVX512(c, a, b []float64, ldb int, init *float64)

//go:noescape
func dotF32AVX512(a, b []float32) float32

//go:noescape
func dotF64AVX512(a, b []float64) float64

// hasAVX512 reports whether the AVX-512 forms of the products (gemm512_amd64.s) can run: twice the width
// of the AVX2 ones, and every column covered (the last ones under a mask).
var hasAVX512 = cpu.X86.HasAVX512F && hasAVX2FMA

// axpyRowsVec does c[j] += Σ_l a[l]·b[l·ldb + j] for a leading part of c with AVX2+FMA and returns how many
// columns it did (0 without the instructions).
func axpyRowsVec[T float](c, a, b []T, ldb int) int {
	checkAxpyLens(len(c), len(a), len(b), ldb)
	if !hasAVX2FMA || len(a) == 0 {
		return 0
	}
	if hasAVX512 {
		switch cc := any(c).(type) {
		case []float32:
			axpyRowsF32AVX512(cc, any(a).([]float32), any(b).([]float32), ldb, nil)
		case []float64:
			axpyRowsF64AVX512(cc, any(a).([]float64), any(b).([]float64), ldb, nil)
		}
		return len(c)
	}
	switch cc := any(c).(type) {
	case []float32:
		axpyRowsF32(cc, any(a).([]float32), any(b).([]float32), ldb)
		return len(cc) &^ 7
	case []float64:
		axpyRowsF64(cc, any(a).([]float64), any(b).([]float64), ldb)
		return len(cc) &^ 3
	}
	return 0
}

// dotVec is Σ a[t]·b[t] over a leading part of a with AVX2+FMA, and how many elements it covered.
func dotVec[T float](a, b []T) (T, int) {
	checkSameLen("dot", "a", len(a), "b", len(b))
	if !hasAVX2FMA {
		return 0, 0
	}
	if hasAVX512 {
		switch aa := any(a).(type) {
		case []float32:
			return T(dotF32AVX512(aa, any(b).([]float32))), len(a)
		case []float64:
			return T(dotF64AVX512(aa, any(b).([]float64))), len(a)
		}
	}
	switch aa := any(a).(type) {
	case []float32:
		return T(dotF32(aa, any(b).([]float32))), len(aa) &^ 7
	case []float64:
		return T(dotF64(aa, any(b).([]float64))), len(aa) &^ 3
	}
	return 0, 0
}

// axpyRowsSetVec sets c[j] = init + Σ_l a[l]·b[l·ldb + j] for every column of c in one pass and reports
// true where the AVX-512 kernel can do so; otherwise it does nothing and returns false.
func axpyRowsSetVec[T float](c, a, b []T, ldb int, init T) bool {
	checkAxpyLens(len(c), len(a), len(b), ldb)
	if !hasAVX512 || len(a) == 0 {
		return false
	}
	switch cc := any(c).(type) {
	case []float32:
		v := float32(init)
		axpyRowsF32AVX512(cc, any(a).([]float32), any(b).([]float32), ldb, &v)
	case []float64:
		v := float64(init)
		axpyRowsF64AVX512(cc, any(a).([]float64), any(b).([]float64), ldb, &v)
	}
	return true
}

//go:noescape
func dot4F32AVX512(a, b []float32, ldb int, out *[4]float32)

//go:noescape
func dot4F64AVX512(a, b []float64, ldb int, out *[4]float64)

// dot4Vec sets out[j] = Σ_t a[t]·b[j·ldb + t] (t < len(a)) for the four rows j = 0…3 of b in one pass with
// AVX-512 and reports true; without it it does nothing and returns false.
func dot4Vec[T float](a, b []T, ldb int, out *[4]T) bool {
	checkAxpyLens(len(a), 4, len(b), ldb)
	if !hasAVX512 {
		return false
	}
	switch aa := any(a).(type) {
	case []float32:
		dot4F32AVX512(aa, any(b).([]float32), ldb, any(out).(*[4]float32))
	case []float64:
		dot4F64AVX512(aa, any(b).([]float64), ldb, any(out).(*[4]float64))
	}
	return true
}

//go:noescape
func axpy4F32AVX512(c []float32, ldc int, a []float32, sr, sl, k int, b []float32, ldb int, init *[4]float32)

//go:noescape
func axpy4F64AVX512(c []float64, ldc int, a []float64, sr, sl, k int, b []float64, ldb int, init *[4]float64)

// axpy4Vec does, for the four rows r = 0…3 and the columns j < n, c[off + r·ldc + j] = init[r] (or, with a
// nil init, its old value) + Σ_{l<k} a[r·sr + l·sl]·b[l·ldb + j] in one pass with AVX-512 (each load of b
// serves four rows), and reports true; without AVX-512 it does nothing and returns false. It panics,
// naming the slice, when any of the elements it would touch lies outside c, a or b.
func axpy4Vec[T float](c []T, off, n, ldc int, a []T, sr, sl, k int, b []T, ldb int, init *[4]T) bool {
	if n < 0 || k < 0 || off < 0 || off+3*ldc+n > len(c) {
		panic(fmt.Sprintf("layers: axpy4: c has %d elements, 4 rows of stride %d over %d columns from %d need %d", len(c), ldc, n, off, off+3*ldc+n))
	}
	if k > 0 && (3*sr+(k-1)*sl >= len(a) || (k-1)*ldb+n > len(b)) {
		panic(fmt.Sprintf("layers: axpy4: a has %d elements (needs %d), b has %d (needs %d)", len(a), 3*sr+(k-1)*sl+1, len(b), (k-1)*ldb+n))
	}
	if !hasAVX512 || n == 0 {
		return hasAVX512
	}
	switch cc := any(c).(type) {
	case []float32:
		axpy4F32AVX512(cc[off:off+n:len(cc)], ldc, any(a).([]float32), sr, sl, k, any(b).([]float32), ldb, any(init).(*[4]float32))
	case []float64:
		axpy4F64AVX512(cc[off:off+n:len(cc)], ldc, any(a).([]float64), sr, sl, k, any(b).([]float64), ldb, any(init).(*[4]float64))
	}
	return true
}
