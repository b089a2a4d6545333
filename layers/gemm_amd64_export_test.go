//go:build amd64 && !purego

package layers

var cpuAVX512, cpuAVX2FMA = hasAVX512, hasAVX2FMA

func productAVX512Available() bool { return cpuAVX512 }

// useProductKernels switches the product kernels to mode (see productModes) and returns a function that
// restores them. Tests only; not safe while other tests run products in parallel.
func useProductKernels(mode string) func() {
	old512, old2 := hasAVX512, hasAVX2FMA
	hasAVX512 = mode == "avx512" && cpuAVX512
	hasAVX2FMA = mode != "scalar" && cpuAVX2FMA
	return func() { hasAVX512, hasAVX2FMA = old512, old2 }
}
