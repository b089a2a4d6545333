package layers

// convVectorAvailable and convAVX2Available say which convolution kernels this CPU can run at all.
var (
	convVectorAvailable = hasConvAVX512
	convAVX2Available   = hasConvAVX2
)

// ConvKernelModes lists the convolution code paths this machine can run: "vector" (AVX-512), "avx2"
// (the AVX2 weight-gradient kernel, and the AVX2 row products that the forward pass uses whenever the
// CPU has them) and "plain" (no convolution kernel).
func ConvKernelModes() []string {
	var m []string
	if convVectorAvailable {
		m = append(m, "vector")
	}
	if convAVX2Available {
		m = append(m, "avx2")
	}
	return append(m, "plain")
}

// UseConvKernels selects a mode of ConvKernelModes for the tests and returns a function that restores the
// previous choice.
func UseConvKernels(mode string) (restore func()) {
	old512, old2 := hasConvAVX512, hasConvAVX2
	hasConvAVX512 = mode == "vector" && convVectorAvailable
	hasConvAVX2 = mode == "avx2" && convAVX2Available
	return func() { hasConvAVX512, hasConvAVX2 = old512, old2 }
}
