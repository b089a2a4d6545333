//go:build !amd64 || purego

package layers

// fft16LanesVec has no vector kernel on this build: the Go loops run.
func fft16LanesVec[T float](z []T, stride, count, step int, inverse bool) bool { return false }

// harmonicLanesVec has no vector kernel on this build: the Go loops run.
func harmonicLanesVec[T float](sp, cp, s1, c1, sk, ck []T, sum *[laneN]T) bool { return false }

// spectralVec has no vector kernel on this build: the Go loops run.
func spectralVec[T float](dst, src, coef []T, n, srcStride, coefStride, sites, cs int) bool {
	return false
}

// adjointSitesVec has no vector kernel on this build: the Go loops run.
func adjointSitesVec[T float](yc, h, u, u2 []T, wd *[laneN]T, as T, sites, hstride int) bool {
	return false
}

// laneCDotVec has no vector kernel on this build: the Go loops run.
func laneCDotVec[T float](dst, g, z []T, sites, cs int) bool { return false }

// butterfly32LanesVec has no vector kernel on this build: the Go loops run.
func butterfly32LanesVec[T float](z []T, stride, count, step int, inverse bool, tw *[32]T) bool {
	return false
}
