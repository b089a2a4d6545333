//go:build amd64 && !purego

package layers

//go:noescape
func swishAffineF32AVX512(dst, x []float32, a, b float32, c *[16]float32)

//go:noescape
func swishGradAffineF32AVX512(dst, dy, x []float32, a, b float32, c *[16]float32)

// swishAffineVec sets dst = swish(a·x + b) on a leading part of x with the AVX-512 kernel (the bits of
// the affine row product followed by the Swish op's vector kernel) and returns how many elements it did.
func swishAffineVec(dst, x []float32, a, b float32) int {
	checkSameLen("swishAffine", "dst", len(dst), "x", len(x))
	if !hasAVX512 {
		return 0
	}
	swishAffineF32AVX512(dst, x, a, b, &eluConst32)
	return len(x) &^ 15
}

// swishGradAffineVec sets dst = dy · Swish'(a·x + b) on a leading part of x with the AVX-512 kernel and
// returns how many elements it did.
func swishGradAffineVec(dst, dy, x []float32, a, b float32) int {
	checkSameLen("swishGradAffine", "dst", len(dst), "x", len(x))
	checkSameLen("swishGradAffine", "dy", len(dy), "x", len(x))
	if !hasAVX512 {
		return 0
	}
	swishGradAffineF32AVX512(dst, dy, x, a, b, &eluConst32)
	return len(x) &^ 15
}
