//go:build !amd64 || purego

package layers

// dot4x4Vec has no vector kernel on this build.
func dot4x4Vec[T float](a []T, lda int, b []T, ldb, n int, out *[16]T) bool { return false }
