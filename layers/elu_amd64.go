//go:build amd64 && !purego

package layers

import (
	"math"

	"golang.org/x/sys/cpu"
)

//go:noescape
func eluF32AVX2(x []float32, c *[16]float32)

//go:noescape
func eluF64AVX2(x []float64, c *eluConsts64)

//go:noescape
func eluF32AVX512(x []float32, c *[16]float32)

//go:noescape
func eluF64AVX512(x []float64, c *eluConsts64)

// eluConst32 are the constants of eluF32AVX2 (see exp32).
var eluConst32 = [16]float32{
	-87, 1.44269504088896341, 0.693359375, -2.12194440e-4,
	1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1,
	1, math.Float32frombits(0x80000000), expHi32, expLo32,
}

// hasAVX2FMA reports whether the vector kernels can run (read once from the CPU's feature bits).
var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// eluVector applies ELU in place to a leading part of x with vector instructions and returns how many
// elements it did; the caller finishes the rest.
func eluVector[T float](x []T) int {
	if !hasAVX2FMA {
		return 0
	}
	if hasAVX512 {
		switch v := any(x).(type) {
		case []float32:
			eluF32AVX512(v, &eluConst32)
			return len(v) &^ 15
		case []float64:
			eluF64AVX512(v, &eluConst64)
			return len(v) &^ 7
		}
	}
	switch v := any(x).(type) {
	case []float32:
		eluF32AVX2(v, &eluConst32)
		return len(v) &^ 7
	case []float64:
		eluF64AVX2(v, &eluConst64)
		return len(v) &^ 3
	}
	return 0
}

//go:noescape
func eluGradF32AVX2(g, y []float32)

//go:noescape
func eluGradF64AVX2(g, y []float64)

//go:noescape
func eluGradToF32AVX2(dst, g, y []float32)

//go:noescape
func eluGradF32AVX512(g, y []float32)

//go:noescape
func eluGradF64AVX512(g, y []float64)

// eluGradToVector sets a leading part of dst to g·ELU'(x) given y = ELU(x) with vector instructions and
// returns how many elements it did.
func eluGradToVector[T float](dst, g, y []T) int {
	checkSameLen("eluGradTo", "dst", len(dst), "g", len(g))
	checkSameLen("eluGradTo", "dst", len(dst), "y", len(y))
	if !hasAVX2FMA {
		return 0
	}
	switch d := any(dst).(type) {
	case []float32:
		eluGradToF32AVX2(d, any(g).([]float32), any(y).([]float32))
		return len(d) &^ 7
	case []float64:
		copy(d, any(g).([]float64))
		eluGradF64AVX2(d, any(y).([]float64))
		return len(d) &^ 3
	}
	return 0
}

// eluGradVector multiplies a leading part of g by ELU'(x) given y = ELU(x) with vector instructions and
// returns how many elements it did.
func eluGradVector[T float](g, y []T) int {
	checkSameLen("eluGrad", "g", len(g), "y", len(y))
	if !hasAVX2FMA {
		return 0
	}
	if hasAVX512 {
		switch v := any(g).(type) {
		case []float32:
			eluGradF32AVX512(v, any(y).([]float32))
			return len(v) &^ 15
		case []float64:
			eluGradF64AVX512(v, any(y).([]float64))
			return len(v) &^ 7
		}
	}
	switch v := any(g).(type) {
	case []float32:
		eluGradF32AVX2(v, any(y).([]float32))
		return len(v) &^ 7
	case []float64:
		eluGradF64AVX2(v, any(y).([]float64))
		return len(v) &^ 3
	}
	return 0
}

//go:noescape
func swishF32AVX2(dst, x []float32, c *[16]float32)

//go:noescape
func swishGradF32AVX2(dst, x []float32, c *[16]float32)

// swishVector computes Swish (or its derivative with grad) of a leading part of x into dst with vector
// instructions and returns how many elements it did.
func swishVector(dst, x []float32, grad bool) int {
	checkSameLen("swish", "dst", len(dst), "x", len(x))
	if !hasAVX2FMA {
		return 0
	}
	if grad {
		swishGradF32AVX2(dst, x, &eluConst32)
	} else {
		swishF32AVX2(dst, x, &eluConst32)
	}
	return len(x) &^ 7
}

// vectorKernels reports whether the AVX2+FMA kernels are in use.
func vectorKernels() bool { return hasAVX2FMA }

//go:noescape
func expF32AVX2(x []float32, c *[16]float32)

// expVector replaces a leading part of x by e^x with vector instructions and returns how many elements it did.
func expVector(x []float32) int {
	if !hasAVX2FMA {
		return 0
	}
	expF32AVX2(x, &eluConst32)
	return len(x) &^ 7
}

//go:noescape
func expF64AVX2(x []float64, c *[18][4]float64)

// expConst64 are the constants of expF64AVX2, each repeated over the four lanes.
var expConst64 = func() (c [18][4]float64) {
	row := func(i int, v float64) { c[i] = [4]float64{v, v, v, v} }
	row(0, expHi64)
	row(1, expLo64)
	row(2, math.Log2E)
	row(3, ln2Hi64)
	row(4, ln2Lo64)
	row(5, 1)
	for i, v := range expPoly64 {
		row(6+i, v)
	}
	return c
}()

// expVector64 replaces a leading part of x by e^x with vector instructions and returns how many elements it did.
func expVector64(x []float64) int {
	if !hasAVX2FMA {
		return 0
	}
	expF64AVX2(x, &expConst64)
	return len(x) &^ 3
}

//go:noescape
func tanhPrepF32AVX512(m, x []float32)

//go:noescape
func tanhPrepF64AVX512(m, x []float64)

//go:noescape
func tanhDoneF32AVX512(x, m []float32)

//go:noescape
func tanhDoneF64AVX512(x, m []float64)

// tanhPrepVector sets a leading part of m to −2|x| (the first step of tanhInPlace) with AVX-512 and returns
// how many elements it did (0 without AVX-512); m has at least len(x) elements.
func tanhPrepVector[T float](m, x []T) int {
	if !hasAVX512 {
		return 0
	}
	m = m[:len(x)]
	switch v := any(x).(type) {
	case []float32:
		tanhPrepF32AVX512(any(m).([]float32), v)
		return len(v) &^ 15
	case []float64:
		tanhPrepF64AVX512(any(m).([]float64), v)
		return len(v) &^ 7
	}
	return 0
}

// tanhDoneVector sets a leading part of x to its sign times |−m/(2 + m)| (the last step of tanhInPlace)
// with AVX-512 and returns how many elements it did (0 without AVX-512); m has at least len(x) elements.
func tanhDoneVector[T float](x, m []T) int {
	if !hasAVX512 {
		return 0
	}
	m = m[:len(x)]
	switch v := any(x).(type) {
	case []float32:
		tanhDoneF32AVX512(v, any(m).([]float32))
		return len(v) &^ 15
	case []float64:
		tanhDoneF64AVX512(v, any(m).([]float64))
		return len(v) &^ 7
	}
	return 0
}
