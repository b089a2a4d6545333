//go:build !amd64 || purego

package layers

// swishBothVector has no vector kernel on this build.
func swishBothVector(a, d, x []float32) int {
	checkSameLen("swishBoth", "a", len(a), "x", len(x))
	checkSameLen("swishBoth", "d", len(d), "x", len(x))
	return 0
}

// mulVector has no vector kernel on this build.
func mulVector[T float](x, y []T) int {
	checkSameLen("mul", "x", len(x), "y", len(y))
	return 0
}

// addScaleVector has no vector kernel on this build.
func addScaleVector[T float](x, y []T, s T) int {
	checkSameLen("addScale", "x", len(x), "y", len(y))
	return 0
}

// scaleAddMulVector has no vector kernel on this build.
func scaleAddMulVector[T float](x, y, z []T, s T) int {
	checkSameLen("scaleAddMul", "x", len(x), "y", len(y))
	checkSameLen("scaleAddMul", "x", len(x), "z", len(z))
	return 0
}
