//go:build !amd64 || purego

package train

// adamVector: this build has no vector kernel; adamUpdate's scalar loop does every element.
func adamVector[T float32 | float64](p, g, m, v []T, c adamCoefs) int { return 0 }

// addTo sets dst[i] += src[i] (len(src) ≥ len(dst)).
func addTo(dst, src []float64) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] += src[i]
	}
}

// toFloat32 sets dst[i] = float32(src[i]) (len(src) ≥ len(dst)).
func toFloat32(dst []float32, src []float64) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] = float32(src[i])
	}
}

// scaleInto sets dst[i] = float64(src[i])·w (len(src) ≥ len(dst)).
func scaleInto[T float32 | float64](dst []float64, src []T, w float64) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] = float64(src[i]) * w
	}
}
