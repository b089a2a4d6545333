//go:build amd64 && !purego

package layers

//go:noescape
func swishBothF32AVX2(a, d, x []float32, c *[16]float32)

//go:noescape
func swishBothF32AVX512(a, d, x []float32, c *[16]float32)

//go:noescape
func mulF32AVX2(x, y []float32)

//go:noescape
func mulF64AVX2(x, y []float64)

//go:noescape
func addScaleF32AVX2(x, y []float32, s float32)

//go:noescape
func addScaleF64AVX2(x, y []float64, s float64)

//go:noescape
func scaleAddMulF32AVX2(x, y, z []float32, s float32)

//go:noescape
func scaleAddMulF64AVX2(x, y, z []float64, s float64)

// vecWidth is the number of elements of T the AVX2 kernels take per step.
func vecWidth[T float]() int {
	var z T
	if _, ok := any(z).(float32); ok {
		return 8
	}
	return 4
}

// swishBothVector sets a = swish(x), d = swish'(x) on a leading part of x with vector instructions and
// returns how many elements it did.
func swishBothVector(a, d, x []float32) int {
	checkSameLen("swishBoth", "a", len(a), "x", len(x))
	checkSameLen("swishBoth", "d", len(d), "x", len(x))
	if !hasAVX2FMA {
		return 0
	}
	k := 0
	if hasAVX512 {
		swishBothF32AVX512(a, d, x, &eluConst32)
		k = len(x) &^ 15
	}
	swishBothF32AVX2(a[k:], d[k:], x[k:], &eluConst32)
	return k + (len(x)-k)&^7
}

// mulVector does x *= y on a leading part of x and returns how many elements it did.
func mulVector[T float](x, y []T) int {
	checkSameLen("mul", "x", len(x), "y", len(y))
	if !hasAVX2FMA {
		return 0
	}
	switch xx := any(x).(type) {
	case []float32:
		mulF32AVX2(xx, any(y).([]float32))
	case []float64:
		mulF64AVX2(xx, any(y).([]float64))
	}
	return len(x) &^ (vecWidth[T]() - 1)
}

// addScaleVector does x = (x + y)·s on a leading part of x and returns how many elements it did.
func addScaleVector[T float](x, y []T, s T) int {
	checkSameLen("addScale", "x", len(x), "y", len(y))
	if !hasAVX2FMA {
		return 0
	}
	switch xx := any(x).(type) {
	case []float32:
		addScaleF32AVX2(xx, any(y).([]float32), float32(s))
	case []float64:
		addScaleF64AVX2(xx, any(y).([]float64), float64(s))
	}
	return len(x) &^ (vecWidth[T]() - 1)
}

// scaleAddMulVector does x = x·s + y·z on a leading part of x and returns how many elements it did.
func scaleAddMulVector[T float](x, y, z []T, s T) int {
	checkSameLen("scaleAddMul", "x", len(x), "y", len(y))
	checkSameLen("scaleAddMul", "x", len(x), "z", len(z))
	if !hasAVX2FMA {
		return 0
	}
	switch xx := any(x).(type) {
	case []float32:
		scaleAddMulF32AVX2(xx, any(y).([]float32), any(z).([]float32), float32(s))
	case []float64:
		scaleAddMulF64AVX2(xx, any(y).([]float64), any(z).([]float64), float64(s))
	}
	return len(x) &^ (vecWidth[T]() - 1)
}
