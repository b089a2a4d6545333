package train

import (
	"math"
	"testing"
)

func TestSchedules(t *testing.T) {
	if got := (Constant{3e-4}).LR(12345); got != 3e-4 {
		t.Errorf("Constant.LR = %v", got)
	}
	c := Cosine{Peak: 1e-3, Final: 1e-5, Warmup: 10, Total: 110}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-15 }
	for _, tc := range []struct {
		step int64
		want float64
	}{
		{0, 1e-4},     // first warm-up step: Peak·1/10, never 0
		{4, 5e-4},     // linear
		{9, 1e-3},     // end of warm-up reaches Peak
		{10, 1e-3},    // decay starts at Peak
		{60, 5.05e-4}, // half-way: (Peak+Final)/2
		{110, 1e-5},   // Total: Final
		{500, 1e-5},   // past Total: stays at Final
	} {
		if got := c.LR(tc.step); !near(got, tc.want) {
			t.Errorf("Cosine.LR(%d) = %.17g, want %.17g", tc.step, got, tc.want)
		}
	}
	// Monotone decreasing after warm-up.
	for s := int64(10); s < 110; s++ {
		if c.LR(s+1) > c.LR(s) {
			t.Errorf("Cosine not decreasing at %d", s)
		}
	}
	// No warm-up: starts at Peak, ends at Final.
	nw := Cosine{Peak: 2, Final: 0, Total: 4}
	for s, want := range []float64{2, 1 + math.Sqrt2/2, 1, 1 - math.Sqrt2/2, 0} {
		if got := nw.LR(int64(s)); !near(got, want) {
			t.Errorf("no warm-up: LR(%d) = %v, want %v", s, got, want)
		}
	}
}
