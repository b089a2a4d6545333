//go:build amd64 && !purego

package layers

//go:noescape
func sincosF32AVX512(x, s, c []float32) (outside bool)

//go:noescape
func sincosF64AVX512(x, s, c []float64) (outside bool)

//go:noescape
func sincosF32AVX2(x, s, c []float32) (outside bool)

//go:noescape
func sincosF64AVX2(x, s, c []float64) (outside bool)

// sincosVector sets s, c to sin x, cos x over a leading part of x with vector instructions (AVX-512, else
// AVX2+FMA) and returns how many elements it did and whether any of them lay outside the kernels' range
// (sincosLimit; NaN included), whose results are then not to be used.
func sincosVector[T float](x, s, c []T) (n int, outside bool) {
	if !hasAVX2FMA {
		return 0, false
	}
	switch xx := any(x).(type) {
	case []float32:
		ss, cc := any(s).([]float32), any(c).([]float32)
		if hasAVX512 {
			return len(xx) &^ 15, sincosF32AVX512(xx, ss, cc)
		}
		return len(xx) &^ 7, sincosF32AVX2(xx, ss, cc)
	case []float64:
		ss, cc := any(s).([]float64), any(c).([]float64)
		if hasAVX512 {
			return len(xx) &^ 7, sincosF64AVX512(xx, ss, cc)
		}
		return len(xx) &^ 3, sincosF64AVX2(xx, ss, cc)
	}
	return 0, false
}
