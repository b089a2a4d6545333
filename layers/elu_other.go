//go:build !amd64

package layers

// eluVector has no vector kernel on this architecture.
func eluVector[T float](x []T) int { return 0 }

// eluGradVector has no vector kernel on this architecture.
func eluGradVector[T float](g, y []T) int { return 0 }

// axpyRowsVec has no vector kernel on this architecture.
func axpyRowsVec[T float](c, a, b []T, ldb int) int { return 0 }

// dotVec has no vector kernel on this architecture.
func dotVec[T float](a, b []T) (T, int) { return 0, 0 }

// swishVector has no vector kernel on this architecture.
func swishVector(dst, x []float32, grad bool) int { return 0 }

// vectorKernels reports whether vector kernels are in use: never on this architecture.
func vectorKernels() bool { return false }

// expVector has no vector kernel on this architecture.
func expVector(x []float32) int { return 0 }
