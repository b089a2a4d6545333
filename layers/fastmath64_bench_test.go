package layers

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkELUInPlace times the ELU kernels on a row of 4 KB (in L1, as the fused ops call them), in ns per
// element, float32 and float64.
func BenchmarkELUInPlace(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	b.Run("float32", func(b *testing.B) {
		src, x := make([]float32, 1024), make([]float32, 1024)
		for i := range src {
			src[i] = float32(rng.NormFloat64())
		}
		for b.Loop() {
			copy(x, src)
			eluInPlace(x)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/elem")
	})
	b.Run("float64", func(b *testing.B) {
		src, x := make([]float64, 512), make([]float64, 512)
		for i := range src {
			src[i] = rng.NormFloat64()
		}
		for b.Loop() {
			copy(x, src)
			eluInPlace(x)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/elem")
	})
}
