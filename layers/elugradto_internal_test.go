package layers

import (
	"math"
	"testing"
)

// eluGradTo (the one-pass backward of ELU into a separate output) gives exactly g·(min(y, 0) + 1), one
// rounding per operation, at every position of a slice whose length is not a multiple of the vector
// width, and NaN for a NaN y; g and y are left unchanged.
func TestELUGradTo(t *testing.T) {
	const n = 1003
	ys, gs := make([]float64, n), make([]float64, n)
	for i := range ys {
		ys[i] = -1 + 3*float64(i)/n
		gs[i] = 0.5 + float64(i%11)
	}
	ys[5], ys[n-2] = math.NaN(), math.NaN()
	g32, y32, d32 := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range g32 {
		g32[i], y32[i] = float32(gs[i]), float32(ys[i])
	}
	d64 := make([]float64, n)
	eluGradTo(d32, g32, y32)
	eluGradTo(d64, gs, ys)
	for i := range ys {
		want64 := gs[i] * (math.Min(ys[i], 0) + 1)
		want32 := float32(gs[i]) * (float32(math.Min(ys[i], 0)) + 1)
		if math.IsNaN(ys[i]) {
			if !math.IsNaN(d64[i]) || !math.IsNaN(float64(d32[i])) {
				t.Errorf("element %d: NaN y gave %g, %g", i, d64[i], d32[i])
			}
			continue
		}
		if d64[i] != want64 || d32[i] != want32 {
			t.Errorf("element %d: %g, %g, want %g, %g", i, d64[i], d32[i], want64, want32)
		}
		if g32[i] != float32(gs[i]) || y32[i] != float32(ys[i]) {
			t.Fatalf("element %d: inputs changed", i)
		}
	}
}
