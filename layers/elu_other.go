//go:build !amd64

package layers

// eluVector has no vector kernel on this architecture.
func eluVector[T float](x []T) int { return 0 }

// eluGradVector has no vector kernel on this architecture.
func eluGradVector[T float](g, y []T) int { return 0 }
