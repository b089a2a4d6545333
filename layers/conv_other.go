//go:build !amd64 || purego

package layers

// hasConvAVX512 is false: this architecture runs the plain-Go convolution loops.
var hasConvAVX512 = false

// hasConvAVX2 is false: no AVX2 weight-gradient kernel.
var hasConvAVX2 = false

func convFwdKernel[T float](k int, off []int, x *[3]*T, w *T, outs *[24]uintptr, masks *[4]uint64, init *T) {
	panic("layers: no vector convolution kernel on this architecture")
}

func convWgtKernel[T float](tab []uintptr, ldg int, rows *[6]int, acc []T, cb int) {
	panic("layers: no vector convolution kernel on this architecture")
}

func convFwd2Kernel[T float](k int, off []int, x *[3]*T, w *T, outs *[12]uintptr) {
	panic("layers: no vector convolution kernel on this architecture")
}

func convWgt2Kernel[T float](tab []uintptr, ldg int, rows *[2]int, acc []T) {
	panic("layers: no vector convolution kernel on this architecture")
}

func convFwdNKernel[T float](mr, k int, off []int, x, w, out *T, ostride int) {
	panic("layers: no vector convolution kernel on this architecture")
}

// mulElems sets dst[i] = a[i]·b[i] (equal lengths).
func mulElems[T float](dst, a, b []T) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] * b[i]
	}
}

func padRowsKernel[T float](j *padJob) {
	panic("layers: no vector convolution kernel on this architecture")
}

func fmaPeak[T float](n int) bool { return false }
