package layers

// productModes lists the product kernel sets this build can run on this CPU: "scalar" (the Go loops),
// "avx2" and "avx512" where available.
func productModes() []string {
	modes := []string{"scalar"}
	if vectorKernels() {
		modes = append(modes, "avx2")
	}
	if productAVX512Available() {
		modes = append(modes, "avx512")
	}
	return modes
}
