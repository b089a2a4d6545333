//go:build !amd64 || purego

package layers

func productAVX512Available() bool { return false }

// useProductKernels: this build has only the Go loops.
func useProductKernels(mode string) func() { return func() {} }
