//go:build !amd64 || purego

package layers

// swishAffineVec has no vector kernel on this build.
func swishAffineVec(dst, x []float32, a, b float32) int {
	checkSameLen("swishAffine", "dst", len(dst), "x", len(x))
	return 0
}

// swishGradAffineVec has no vector kernel on this build.
func swishGradAffineVec(dst, dy, x []float32, a, b float32) int {
	checkSameLen("swishGradAffine", "dst", len(dst), "x", len(x))
	checkSameLen("swishGradAffine", "dy", len(dy), "x", len(x))
	return 0
}
