package layers

// convVectorAvailable is whether this CPU can run the AVX-512 convolution kernels at all.
var convVectorAvailable = hasConvAVX512

// ConvKernelModes lists the convolution code paths this machine can run ("vector" only with AVX-512).
func ConvKernelModes() []string {
	if convVectorAvailable {
		return []string{"vector", "plain"}
	}
	return []string{"plain"}
}

// UseConvKernels selects the AVX-512 kernels ("vector") or the plain-Go loops ("plain") for the tests and
// returns a function that restores the previous choice.
func UseConvKernels(mode string) (restore func()) {
	old := hasConvAVX512
	hasConvAVX512 = mode == "vector" && convVectorAvailable
	return func() { hasConvAVX512 = old }
}
