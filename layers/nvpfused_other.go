//go:build !amd64 || purego

package layers

// dotBlkVec has no vector kernel on this build.
func dotBlkVec[T float](M, N int, a []T, lda int, b []T, ldb, n int, out *[20]T) bool { return false }

// dot4x4Vec has no vector kernel on this build.
func dot4x4Vec[T float](a []T, lda int, b []T, ldb, n int, out *[16]T) bool { return false }

// axpyRMax is the most rows axpyRVec would do in one pass.
const axpyRMax = 8

// axpyRVec has no vector kernel on this build.
func axpyRVec[T float](R int, c []T, off, n, ldc int, a []T, sr, sl, k int, b []T, ldb int, init []T) bool {
	return false
}
