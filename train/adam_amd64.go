//go:build amd64 && !purego

package train

import "golang.org/x/sys/cpu"

//go:noescape
func adamAVX32(p, gr, m, v *float32, n int, c *[8]float32)

//go:noescape
func adamAVX64(p, gr, m, v *float64, n int, c *[8]float64)

// hasAVX reports whether adamVector's kernels can run (read once from the CPU's feature bits).
var hasAVX = cpu.X86.HasAVX

// adamVector applies the update of adamUpdate to a leading part of p with vector instructions and
// returns how many elements it did; the caller does the rest. The kernels perform adamUpdate's
// operations in its order, each rounded to T (IEEE: correctly rounded in every lane, no fused
// multiply-adds), so they give its bits. They multiply by the gradient scale and the decoupled decay
// always (a product with 1 is exact); an L2 penalty (l2 ≠ 0) is left to the scalar loop.
func adamVector[T float32 | float64](p, g, m, v []T, c adamCoefs) int {
	if !hasAVX || c.l2 != 0 {
		return 0
	}
	switch pp := any(p).(type) {
	case []float32:
		n := len(pp) &^ 7
		if n == 0 {
			return 0
		}
		k := [8]float32{float32(c.scale), float32(c.decay), float32(c.oneMinusB1), float32(c.b2),
			float32(c.oneMinusB2), float32(c.bc2Sqrt), float32(c.eps), float32(c.stepSize)}
		gg, mm, vv := any(g).([]float32), any(m).([]float32), any(v).([]float32)
		adamAVX32(&pp[0], &gg[0], &mm[0], &vv[0], n, &k)
		return n
	case []float64:
		n := len(pp) &^ 3
		if n == 0 {
			return 0
		}
		k := [8]float64{c.scale, c.decay, c.oneMinusB1, c.b2, c.oneMinusB2, c.bc2Sqrt, c.eps, c.stepSize}
		gg, mm, vv := any(g).([]float64), any(m).([]float64), any(v).([]float64)
		adamAVX64(&pp[0], &gg[0], &mm[0], &vv[0], n, &k)
		return n
	}
	return 0
}

//go:noescape
func addTo64AVX(dst, src *float64, n int)

//go:noescape
func cvt64to32AVX(dst *float32, src *float64, n int)

// addTo sets dst[i] += src[i] (len(src) ≥ len(dst)); the vector kernel's additions are the scalar ones.
func addTo(dst, src []float64) {
	src = src[:len(dst)]
	k := 0
	if hasAVX {
		if k = len(dst) &^ 7; k > 0 {
			addTo64AVX(&dst[0], &src[0], k)
		}
	}
	for i := k; i < len(dst); i++ {
		dst[i] += src[i]
	}
}

// toFloat32 sets dst[i] = float32(src[i]) (len(src) ≥ len(dst)), rounded to nearest as Go rounds.
func toFloat32(dst []float32, src []float64) {
	src = src[:len(dst)]
	k := 0
	if hasAVX {
		if k = len(dst) &^ 7; k > 0 {
			cvt64to32AVX(&dst[0], &src[0], k)
		}
	}
	for i := k; i < len(dst); i++ {
		dst[i] = float32(src[i])
	}
}

//go:noescape
func scale32to64AVX(dst *float64, src *float32, w float64, n int)

//go:noescape
func scale64AVX(dst, src *float64, w float64, n int)

// scaleInto sets dst[i] = float64(src[i])·w (len(src) ≥ len(dst)); the vector kernels' products are the
// scalar ones.
func scaleInto[T float32 | float64](dst []float64, src []T, w float64) {
	src = src[:len(dst)]
	k := 0
	if hasAVX {
		if k = len(dst) &^ 7; k > 0 {
			switch s := any(src).(type) {
			case []float32:
				scale32to64AVX(&dst[0], &s[0], w, k)
			case []float64:
				scale64AVX(&dst[0], &s[0], w, k)
			}
		}
	}
	for i := k; i < len(dst); i++ {
		dst[i] = float64(src[i]) * w
	}
}
