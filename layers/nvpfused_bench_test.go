package layers

import (
	"math/rand/v2"
	"testing"
	"unsafe"
)

// BenchmarkNVPKernels times the fused RealNVP's product kernels on the hot shapes of the neuralrg preset
// (MLP widths 2→10→10→10→2) at L=16, batch 256: n = 2¹⁴ columns, rows of stride actsStride(n), one pass's
// block of fusedChunkBytes of each row (4096 float32 or 2048 float64 columns), operands and results in
// rows of one tensor as in the plan's layout. Shapes: "hid" one of the two 5-row passes of a hidden layer
// (C 5 rows = W 5×10 · B 10 rows + bias), "out" the output layer (2 rows, k = 10), "in" one 5-row pass of
// the input layer (k = 2), "hidT" one 5-row pass of the transposed input-gradient product (A read down its
// columns), "wg4x4"/"wg4x2"/"wg2x2" the weight-gradient blocks of a 10×10 layer. GFLOP/s counts one
// multiply and one add per term (the row sums of the blocks not counted).
func BenchmarkNVPKernels(b *testing.B) {
	if !productAVX512Available() {
		b.Skip("no AVX-512 on this CPU")
	}
	b.Run("float32", func(b *testing.B) { benchNVPKernels[float32](b) })
	b.Run("float64", func(b *testing.B) { benchNVPKernels[float64](b) })
}

func benchNVPKernels[T float](b *testing.B) {
	defer useProductKernels("avx512")()
	const n = 1 << 14
	size := int(unsafe.Sizeof(T(0)))
	ld := actsStride(n, size)
	cols := fusedChunkBytes / size
	rng := rand.New(rand.NewPCG(5, 6))
	const rows = 30
	t := make([]T, rows*ld)
	for i := range t {
		t[i] = T(2*rng.Float64() - 1)
	}
	w := make([]T, 100)
	for i := range w {
		w[i] = T(2*rng.Float64() - 1)
	}
	bias := w[:10]
	// b operand: rows 0–9; c: rows 10–19 (a second, disjoint set of rows).
	lo := 2 * cols // a block in the middle of the rows
	src, dst := t, t[10*ld:]
	run := func(name string, flops int, f func()) {
		b.Run(name, func(b *testing.B) {
			cpu0 := processCPU()
			for i := 0; i < b.N; i++ {
				f()
			}
			reportConv(b, float64(flops), cpu0)
		})
	}
	hi := lo + cols
	run("hid", 2*10*10*cols, func() { nvpMulABBias(10, 10, w, src, bias, dst, ld, lo, hi) })
	run("out", 2*2*10*cols, func() { nvpMulABBias(2, 10, w, src, bias, dst, ld, lo, hi) })
	run("in", 2*10*2*cols, func() { nvpMulABBias(10, 2, w, src, bias, dst, ld, lo, hi) })
	run("hidT", 2*10*10*cols, func() { nvpMulAtB(10, 10, w, src, dst, ld, lo, hi) })
	var blk [20]T
	for _, mn := range [][2]int{{4, 4}, {4, 2}, {2, 2}} {
		M, N := mn[0], mn[1]
		run("wg"+string(rune('0'+M))+"x"+string(rune('0'+N)), 2*M*N*cols, func() {
			dotBlkVec(M, N, src[lo:], ld, dst[lo:], ld, cols, &blk)
		})
	}
}
