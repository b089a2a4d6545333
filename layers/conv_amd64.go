//go:build amd64 && !purego

package layers

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

//go:noescape
func convFwdF32(k int, off *int, xa, xb, xc, w *float32, outs *[24]uintptr, masks *[4]uint64, init *float32)

//go:noescape
func convFwdF64(k int, off *int, xa, xb, xc, w *float64, outs *[24]uintptr, masks *[4]uint64, init *float64)

//go:noescape
func convWgtF32(n int, tab *uintptr, ldg int, rows *[6]int, acc *float32)

//go:noescape
func convWgt4F32(n int, tab *uintptr, ldg int, rows *[6]int, acc *float32)

//go:noescape
func convWgtF64(n int, tab *uintptr, ldg int, rows *[6]int, acc *float64)

//go:noescape
func convFwd2F32(k int, off *int, xa, xb, xc, w *float32, outs *[12]uintptr)

//go:noescape
func convFwd2F64(k int, off *int, xa, xb, xc, w *float64, outs *[12]uintptr)

//go:noescape
func convWgt2F32(n int, tab *uintptr, ldg int, rows *[2]int, acc *float32)

//go:noescape
func convWgt2F64(n int, tab *uintptr, ldg int, rows *[2]int, acc *float64)

//go:noescape
func convFwdN1F32(k int, off *int, x, w, out *float32, ostride int)

//go:noescape
func convFwdN1F64(k int, off *int, x, w, out *float64, ostride int)

//go:noescape
func convFwdN2F32(k int, off *int, x, w, out *float32, ostride int)

//go:noescape
func convFwdN2F64(k int, off *int, x, w, out *float64, ostride int)

//go:noescape
func convFwdN3F32(k int, off *int, x, w, out *float32, ostride int)

//go:noescape
func convFwdN3F64(k int, off *int, x, w, out *float64, ostride int)

//go:noescape
func convFwdN4F32(k int, off *int, x, w, out *float32, ostride int)

//go:noescape
func convFwdN4F64(k int, off *int, x, w, out *float64, ostride int)

//go:noescape
func mulVecF32(dst, a, b *float32, n int)

//go:noescape
func mulVecF64(dst, a, b *float64, n int)

//go:noescape
func padRowsF32(j *padJob)

//go:noescape
func padRowsF64(j *padJob)

//go:noescape
func fmaPeakF32(n int)

//go:noescape
func fmaPeakF64(n int)

// hasConvAVX512 reports whether the AVX-512 convolution kernels (conv_amd64.s) can run.
var hasConvAVX512 = cpu.X86.HasAVX512F

// hasConvAVX2 reports whether the AVX2 kernels (convFwd2F32/F64, convWgt2F32/F64) can run.
var hasConvAVX2 = hasAVX2FMA

// convFwdKernel calls the forward kernel of T's precision (see convFwdF32); init nil adds to the outputs,
// else sets them to init[j] + the sums.
func convFwdKernel[T float](k int, off []int, x *[3]*T, w *T, outs *[24]uintptr, masks *[4]uint64, init *T) {
	switch any(*new(T)).(type) {
	case float32:
		convFwdF32(k, &off[0], (*float32)(unsafe.Pointer(x[0])), (*float32)(unsafe.Pointer(x[1])), (*float32)(unsafe.Pointer(x[2])),
			(*float32)(unsafe.Pointer(w)), outs, masks, (*float32)(unsafe.Pointer(init)))
	default:
		convFwdF64(k, &off[0], (*float64)(unsafe.Pointer(x[0])), (*float64)(unsafe.Pointer(x[1])), (*float64)(unsafe.Pointer(x[2])),
			(*float64)(unsafe.Pointer(w)), outs, masks, (*float64)(unsafe.Pointer(init)))
	}
}

// convWgtKernel calls the weight-gradient kernel of T's precision for cb output channels per call (see
// convWgtF32: 8 channels × 3 taps; convWgt4F32, convWgtF64: 4 channels × 6 taps).
func convWgtKernel[T float](tab []uintptr, ldg int, rows *[6]int, acc []T, cb int) {
	switch a := any(acc).(type) {
	case []float32:
		if cb == 8 {
			convWgtF32(len(tab)/3, &tab[0], ldg, rows, &a[0])
		} else {
			convWgt4F32(len(tab)/3, &tab[0], ldg, rows, &a[0])
		}
	case []float64:
		convWgtF64(len(tab)/3, &tab[0], ldg, rows, &a[0])
	}
}

// convFwd2Kernel calls the AVX2 forward kernel of T's precision (see convFwd2F32).
func convFwd2Kernel[T float](k int, off []int, x *[3]*T, w *T, outs *[12]uintptr) {
	switch any(*new(T)).(type) {
	case float32:
		convFwd2F32(k, &off[0], (*float32)(unsafe.Pointer(x[0])), (*float32)(unsafe.Pointer(x[1])), (*float32)(unsafe.Pointer(x[2])),
			(*float32)(unsafe.Pointer(w)), outs)
	default:
		convFwd2F64(k, &off[0], (*float64)(unsafe.Pointer(x[0])), (*float64)(unsafe.Pointer(x[1])), (*float64)(unsafe.Pointer(x[2])),
			(*float64)(unsafe.Pointer(w)), outs)
	}
}

// convWgt2Kernel calls the AVX2 weight-gradient kernel of T's precision (see convWgt2F32).
func convWgt2Kernel[T float](tab []uintptr, ldg int, rows *[2]int, acc []T) {
	switch a := any(acc).(type) {
	case []float32:
		convWgt2F32(len(tab)/3, &tab[0], ldg, rows, &a[0])
	case []float64:
		convWgt2F64(len(tab)/3, &tab[0], ldg, rows, &a[0])
	}
}

// convFwdNKernel calls the narrow forward kernel for mr (1 … 4) output channels of T's precision (see
// convFwdN1F32): mr channels × 24/mr consecutive vectors.
func convFwdNKernel[T float](mr, k int, off []int, x, w, out *T, ostride int) {
	switch any(*new(T)).(type) {
	case float32:
		xx, ww, oo := (*float32)(unsafe.Pointer(x)), (*float32)(unsafe.Pointer(w)), (*float32)(unsafe.Pointer(out))
		switch mr {
		case 1:
			convFwdN1F32(k, &off[0], xx, ww, oo, ostride)
		case 2:
			convFwdN2F32(k, &off[0], xx, ww, oo, ostride)
		case 3:
			convFwdN3F32(k, &off[0], xx, ww, oo, ostride)
		default:
			convFwdN4F32(k, &off[0], xx, ww, oo, ostride)
		}
	default:
		xx, ww, oo := (*float64)(unsafe.Pointer(x)), (*float64)(unsafe.Pointer(w)), (*float64)(unsafe.Pointer(out))
		switch mr {
		case 1:
			convFwdN1F64(k, &off[0], xx, ww, oo, ostride)
		case 2:
			convFwdN2F64(k, &off[0], xx, ww, oo, ostride)
		case 3:
			convFwdN3F64(k, &off[0], xx, ww, oo, ostride)
		default:
			convFwdN4F64(k, &off[0], xx, ww, oo, ostride)
		}
	}
}

// mulElems sets dst[i] = a[i]·b[i] (equal lengths), with the AVX-512 kernel where it runs.
func mulElems[T float](dst, a, b []T) {
	a, b = a[:len(dst)], b[:len(dst)]
	if !hasConvAVX512 || len(dst) == 0 {
		for i := range dst {
			dst[i] = a[i] * b[i]
		}
		return
	}
	switch d := any(dst).(type) {
	case []float32:
		mulVecF32(&d[0], &any(a).([]float32)[0], &any(b).([]float32)[0], len(d))
	case []float64:
		mulVecF64(&d[0], &any(a).([]float64)[0], &any(b).([]float64)[0], len(d))
	}
}

// padRowsKernel runs the padded copy of one plane (see padRowsF32) in T's precision.
func padRowsKernel[T float](j *padJob) {
	switch any(*new(T)).(type) {
	case float32:
		padRowsF32(j)
	default:
		padRowsF64(j)
	}
}

// fmaPeak runs n rounds of 12 independent 512-bit FMAs in T's precision (BenchmarkFMAPeak).
func fmaPeak[T float](n int) bool {
	if !hasConvAVX512 {
		return false
	}
	switch any(*new(T)).(type) {
	case float32:
		fmaPeakF32(n)
	default:
		fmaPeakF64(n)
	}
	return true
}
