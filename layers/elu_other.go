//go:build !amd64 || purego

package layers

// This build (not amd64, or amd64 with the purego tag) has no vector kernels: every wrapper does nothing
// and returns 0, so the scalar loops of fastmath.go do all the work. The wrappers still check the lengths
// of their slices as the vector ones do, so that a caller's mismatch panics the same way on every build.

// eluVector has no vector kernel on this build.
func eluVector[T float](x []T) int { return 0 }

// eluGradVector has no vector kernel on this build.
func eluGradVector[T float](g, y []T) int {
	checkSameLen("eluGrad", "g", len(g), "y", len(y))
	return 0
}

// eluGradToVector has no vector kernel on this build.
func eluGradToVector[T float](dst, g, y []T) int {
	checkSameLen("eluGradTo", "dst", len(dst), "g", len(g))
	checkSameLen("eluGradTo", "dst", len(dst), "y", len(y))
	return 0
}

// axpyRowsVec has no vector kernel on this build.
func axpyRowsVec[T float](c, a, b []T, ldb int) int {
	checkAxpyLens(len(c), len(a), len(b), ldb)
	return 0
}

// dotVec has no vector kernel on this build.
func dotVec[T float](a, b []T) (T, int) {
	checkSameLen("dot", "a", len(a), "b", len(b))
	return 0, 0
}

// swishVector has no vector kernel on this build.
func swishVector(dst, x []float32, grad bool) int {
	checkSameLen("swish", "dst", len(dst), "x", len(x))
	return 0
}

// vectorKernels reports whether vector kernels are in use: never on this build.
func vectorKernels() bool { return false }

// expVector has no vector kernel on this build.
func expVector(x []float32) int { return 0 }

// axpyRowsSetVec has no vector kernel on this build.
func axpyRowsSetVec[T float](c, a, b []T, ldb int, init T) bool {
	checkAxpyLens(len(c), len(a), len(b), ldb)
	return false
}

// expVector64 has no vector kernel on this build.
func expVector64(x []float64) int { return 0 }

// dot4Vec has no vector kernel on this build.
func dot4Vec[T float](a, b []T, ldb int, out *[4]T) bool {
	checkAxpyLens(len(a), 4, len(b), ldb)
	return false
}

// axpy4Vec has no vector kernel on this build.
func axpy4Vec[T float](c []T, off, n, ldc int, a []T, sr, sl, k int, b []T, ldb int, init *[4]T) bool {
	return false
}

// tanhPrepVector has no vector kernel on this build.
func tanhPrepVector[T float](m, x []T) int { return 0 }

// tanhDoneVector has no vector kernel on this build.
func tanhDoneVector[T float](x, m []T) int { return 0 }
