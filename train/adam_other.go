//go:build !amd64 || purego

package train

// adamVector: this build has no vector kernel; adamUpdate's scalar loop does every element.
func adamVector[T float32 | float64](p, g, m, v []T, c adamCoefs) int { return 0 }
