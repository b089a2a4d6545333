//go:build !amd64 || purego

package layers

// sincosVector has no vector kernel on this build.
func sincosVector[T float](x, s, c []T) (n int, outside bool) { return 0, false }
