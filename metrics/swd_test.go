package metrics

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// permutations calls f with every permutation of 0…n−1.
func permutations(n int, f func(p []int)) {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	var rec func(k int)
	rec = func(k int) {
		if k == n {
			f(p)
			return
		}
		for i := k; i < n; i++ {
			p[k], p[i] = p[i], p[k]
			rec(k + 1)
			p[k], p[i] = p[i], p[k]
		}
	}
	rec(0)
}

// The sorted 1-D distance is the optimal matching: the minimum over all pairings of the mean absolute
// difference, found here by trying every permutation.
func TestWasserstein1DIsOptimalMatching(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 20; trial++ {
		n := 1 + trial%7
		x, y := make([]float64, n), make([]float64, n)
		for i := range x {
			x[i] = rng.NormFloat64()
			y[i] = 2*rng.Float64() - 0.5
		}
		best := math.Inf(1)
		permutations(n, func(p []int) {
			var s float64
			for i := range x {
				s += math.Abs(x[i] - y[p[i]])
			}
			best = min(best, s/float64(n))
		})
		got := wasserstein1D(slices.Clone(x), slices.Clone(y))
		// Both are sums of n ≤ 7 terms of size O(1): only rounding separates them.
		if math.Abs(got-best) > 1e-12 {
			t.Errorf("n=%d: sorted distance %.15g, brute-force optimum %.15g", n, got, best)
		}
	}
}

// radixSort orders like slices.Sort, negative numbers, signed zeros and infinities included.
func TestRadixSortMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{0, 1, 2, 17, 5000} {
		x := make([]float64, n)
		for i := range x {
			switch rng.IntN(10) {
			case 0:
				x[i] = math.Inf(1 - 2*rng.IntN(2))
			case 1:
				x[i] = math.Copysign(0, float64(1-2*rng.IntN(2)))
			case 2:
				x[i] = float64(rng.IntN(5)) // ties
			default:
				x[i] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))
			}
		}
		want := slices.Clone(x)
		slices.Sort(want)
		radixSort(x)
		for i := range x {
			if x[i] != want[i] {
				t.Fatalf("n=%d: position %d holds %v, want %v", n, i, x[i], want[i])
			}
		}
	}
}

// normalCDF is Φ.
func normalCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// meanAbsNormal is E|a + bZ| for Z standard normal, b ≥ 0: the 1-D Wasserstein-1 distance between
// N(m, s²) and N(m + a, (s + b)²) (the quantile functions differ by a + b·Φ⁻¹(u)).
func meanAbsNormal(a, b float64) float64 {
	if b == 0 {
		return math.Abs(a)
	}
	return b*math.Sqrt(2/math.Pi)*math.Exp(-a*a/(2*b*b)) + a*(1-2*normalCDF(-a/b))
}

// Isotropic Gaussian descriptor sets with known means and widths: each direction u's projections are
// N(u·μa, σa²) and N(u·μb, σb²), whose Wasserstein-1 distance is E|u·(μb−μa) + (σb−σa)Z| in closed form.
func TestSlicedW1GaussianClosedForm(t *testing.T) {
	const n, dim = 20000, 5
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name   string
		mb     []float64
		sa, sb float64
	}{
		{"means", []float64{1, -0.5, 0.25, 0, 0.8}, 1, 1},
		{"widths", []float64{0, 0, 0, 0, 0}, 1, 1.5},
		{"both", []float64{0.3, 0, -0.6, 0.2, 0}, 0.7, 1.2},
	} {
		da, db := make([]float32, n*dim), make([]float32, n*dim)
		for i := 0; i < n; i++ {
			for d := 0; d < dim; d++ {
				da[i*dim+d] = float32(tc.sa * rng.NormFloat64())
				db[i*dim+d] = float32(tc.mb[d] + tc.sb*rng.NormFloat64())
			}
		}
		dirs := randomDirections(rng, 32, dim)
		var want float64
		for j := 0; j < 32; j++ {
			var a float64
			for d := 0; d < dim; d++ {
				a += dirs[j*dim+d] * tc.mb[d]
			}
			want += meanAbsNormal(a, tc.sb-tc.sa) / 32
		}
		got := slicedW1(da, db, dim, dirs)
		// Sampling error of an empirical W1 between two n-point samples: the shift of the two sample means
		// has standard deviation sqrt((σa²+σb²)/n) ≤ 0.012 here, and the quantile noise adds a bias of the
		// same order; 0.04 is about three times that.
		if math.Abs(got-want) > 0.04 {
			t.Errorf("%s: sliced W1 %.4f, closed form %.4f", tc.name, got, want)
		}
	}
}

// Taking the directions in blocks (to bound memory on large sets) does not change the result at all.
func TestSlicedW1BlockingInvariant(t *testing.T) {
	const n, dim, k = 300, 6, 22
	rng := rand.New(rand.NewPCG(13, 14))
	da, db := make([]float32, n*dim), make([]float32, n*dim)
	for i := range da {
		da[i], db[i] = float32(rng.NormFloat64()), float32(0.5+rng.NormFloat64())
	}
	dirs := randomDirections(rng, k, dim)
	all := slicedW1Blocks(da, db, dim, dirs, k)
	for _, b := range []int{1, 4, 5, 21} {
		if got := slicedW1Blocks(da, db, dim, dirs, b); got != all {
			t.Errorf("blocks of %d: %v, in one block %v", b, got, all)
		}
	}
	if got := slicedW1(da, db, dim, dirs); got != all {
		t.Errorf("slicedW1 %v, in one block %v", got, all)
	}
}

// paddedMirror extends an h×w plane by 2 on every side with reflection about the edge samples, written out
// row by row and column by column (… x2 x1 | x0 x1 … x_{n−1} | x_{n−2} x_{n−3} …).
func paddedMirror(p []float64, h, w int) [][]float64 {
	ext := func(n int) []int {
		idx := []int{2, 1}
		for i := 0; i < n; i++ {
			idx = append(idx, i)
		}
		return append(idx, n-2, n-3)
	}
	ry, rx := ext(h), ext(w)
	out := make([][]float64, h+4)
	for y := range out {
		out[y] = make([]float64, w+4)
		for x := range out[y] {
			out[y][x] = p[ry[y]*w+rx[x]]
		}
	}
	return out
}

// conv5x5 applies the 2-D kernel outer((1 4 6 4 1)/16)·gain to the padded plane.
func conv5x5(pad [][]float64, h, w int, gain float64) []float64 {
	k := []float64{1, 4, 6, 4, 1}
	out := make([]float64, h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var s float64
			for i := 0; i < 5; i++ {
				for j := 0; j < 5; j++ {
					s += k[i] * k[j] / 256 * pad[y+i][x+j]
				}
			}
			out[y*w+x] = gain * s
		}
	}
	return out
}

// The pyramid's down and up steps against a direct 5×5 convolution with explicit mirror padding, on odd and
// even sizes.
func TestPyramidStepsAgainstDirectConvolution(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, sz := range [][2]int{{9, 12}, {16, 16}, {7, 11}} {
		h, w := sz[0], sz[1]
		p := make([]float64, h*w)
		for i := range p {
			p[i] = rng.Float64()
		}
		full := conv5x5(paddedMirror(p, h, w), h, w, 1)
		nh, nw := (h+1)/2, (w+1)/2
		down := pyrDown(p, h, w)
		for y := 0; y < nh; y++ {
			for x := 0; x < nw; x++ {
				// Sums of 25 terms of size ≤ 1: rounding only.
				if d := math.Abs(down[y*nw+x] - full[2*y*w+2*x]); d > 1e-12 {
					t.Fatalf("%dx%d down (%d,%d): %g vs direct %g", h, w, y, x, down[y*nw+x], full[2*y*w+2*x])
				}
			}
		}
		zeros := make([]float64, h*w)
		for y := 0; y < nh; y++ {
			for x := 0; x < nw; x++ {
				zeros[2*y*w+2*x] = down[y*nw+x]
			}
		}
		wantUp := conv5x5(paddedMirror(zeros, h, w), h, w, 4)
		up := pyrUp(down, h, w)
		for i := range up {
			if math.Abs(up[i]-wantUp[i]) > 1e-12 {
				t.Fatalf("%dx%d up at %d: %g vs direct %g", h, w, i, up[i], wantUp[i])
			}
		}
		// A constant plane survives down and up unchanged (the filter sums to one, the up gain to four).
		c := make([]float64, h*w)
		for i := range c {
			c[i] = 0.37
		}
		for i, v := range pyrUp(pyrDown(c, h, w), h, w) {
			if math.Abs(v-0.37) > 1e-12 {
				t.Fatalf("%dx%d constant plane changed at %d: %g", h, w, i, v)
			}
		}
	}
}

func TestPyramidLevels(t *testing.T) {
	for _, tc := range []struct {
		h, w   int
		levels []int
	}{
		{64, 64, []int{64, 32, 16}},
		{32, 32, []int{32, 16}},
		{28, 28, []int{28}},
		{8, 8, []int{8}},
		{33, 40, []int{33, 17}},
	} {
		hs, _ := pyramidSizes(tc.h, tc.w, 16)
		if !slices.Equal(hs, tc.levels) {
			t.Errorf("%dx%d: levels %v, want %v", tc.h, tc.w, hs, tc.levels)
		}
	}
}

// smoothImages makes n c×s×s images in [0, 1]: a few Gaussian blobs of random position, width and brightness.
func smoothImages(rng *rand.Rand, n, c, s int) []float64 {
	x := make([]float64, n*c*s*s)
	for i := 0; i < n; i++ {
		for b := 0; b < 4; b++ {
			cy, cx := rng.Float64()*float64(s), rng.Float64()*float64(s)
			r := 2 + rng.Float64()*float64(s)/4
			for ch := 0; ch < c; ch++ {
				amp := 0.25 * rng.Float64()
				for y := 0; y < s; y++ {
					for xx := 0; xx < s; xx++ {
						d2 := (float64(y)-cy)*(float64(y)-cy) + (float64(xx)-cx)*(float64(xx)-cx)
						x[((i*c+ch)*s+y)*s+xx] += amp * math.Exp(-d2/(2*r*r))
					}
				}
			}
		}
	}
	for i := range x {
		x[i] = min(max(x[i], 0), 1)
	}
	return x
}

func TestSWDGrowsWithNoiseAndShift(t *testing.T) {
	const n, c, s = 48, 2, 32
	rng := rand.New(rand.NewPCG(7, 8))
	a := smoothImages(rng, n, c, s)
	b := smoothImages(rng, n, c, s) // a second sample of the same distribution
	o := DefaultSWDOptions()
	o.PatchesPerImage = 64
	o.Projections = 128
	same, err := SWD(a, n, b, n, c, s, s, o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(same.Resolutions, []int{32, 16}) || len(same.PerLevel) != 2 {
		t.Fatalf("levels %v (distances %v), want 32 and 16", same.Resolutions, same.PerLevel)
	}
	prev := same
	for _, sigma := range []float64{0.01, 0.03, 0.1} {
		noisy := slices.Clone(a)
		for i := range noisy {
			noisy[i] = min(max(noisy[i]+sigma*rng.NormFloat64(), 0), 1)
		}
		r, err := SWD(b, n, noisy, n, c, s, s, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("noise %.2f: SWD %.2f ± %.2f (levels %v); previous %.2f ± %.2f", sigma, r.Value, r.Err, r.PerLevel, prev.Value, prev.Err)
		// Each step must exceed the previous by more than three combined standard errors over repeats.
		if r.Value-prev.Value < 3*math.Hypot(r.Err, prev.Err) {
			t.Errorf("noise %.2f: SWD %.2f ± %.2f does not exceed %.2f ± %.2f", sigma, r.Value, r.Err, prev.Value, prev.Err)
		}
		prev = r
	}
	shifted := slices.Clone(a)
	for i := range shifted {
		shifted[i] = min(shifted[i]+0.15, 1)
	}
	r, err := SWD(b, n, shifted, n, c, s, s, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("shift 0.15: SWD %.2f ± %.2f (levels %v); same distribution %.2f ± %.2f", r.Value, r.Err, r.PerLevel, same.Value, same.Err)
	// A brightness shift lives in the coarsest (Gaussian) level only; there it must stand out.
	if r.PerLevel[1] < 3*same.PerLevel[1] || r.Value-same.Value < 3*math.Hypot(r.Err, same.Err) {
		t.Errorf("shift 0.15: SWD %.2f (levels %v) not clearly above %.2f (levels %v)", r.Value, r.PerLevel, same.Value, same.PerLevel)
	}
}

func TestSWDDeterministicBySeed(t *testing.T) {
	const n, c, s = 12, 3, 16
	rng := rand.New(rand.NewPCG(9, 10))
	a, b := smoothImages(rng, n, c, s), smoothImages(rng, n+5, c, s)
	o := SWDOptions{PatchesPerImage: 16, Projections: 64, Seed: 42}
	r1, err := SWD(a, n, b, n+5, c, s, s, o)
	if err != nil {
		t.Fatal(err)
	}
	old := runtime.GOMAXPROCS(1) // the result must not depend on how the work is split
	r2, err := SWD(a, n, b, n+5, c, s, s, o)
	runtime.GOMAXPROCS(old)
	if err != nil {
		t.Fatal(err)
	}
	if r1.Value != r2.Value || r1.Err != r2.Err || !slices.Equal(r1.PerLevel, r2.PerLevel) {
		t.Errorf("same seed, different results: %+v and %+v", r1, r2)
	}
	o.Seed = 43
	r3, err := SWD(a, n, b, n+5, c, s, s, o)
	if err != nil {
		t.Fatal(err)
	}
	if r3.Value == r1.Value {
		t.Errorf("seeds 42 and 43 gave the same SWD %v", r1.Value)
	}
}

func TestSWDBadInput(t *testing.T) {
	good := make([]float64, 2*1*16*16)
	nan := slices.Clone(good)
	nan[300] = math.NaN()
	for _, tc := range []struct {
		name   string
		a      []float64
		na     int
		b      []float64
		nb     int
		c, h   int
		o      SWDOptions
		errSub string
	}{
		{"no images", nil, 0, good, 2, 1, 16, SWDOptions{}, "image counts"},
		{"short first set", good[:100], 2, good, 2, 1, 16, SWDOptions{}, "first set has 100 values"},
		{"short second set", good, 2, good[:511], 2, 1, 16, SWDOptions{}, "second set has 511 values"},
		{"zero channels", good, 2, good, 2, 0, 16, SWDOptions{}, "positive sizes"},
		{"negative option", good, 2, good, 2, 1, 16, SWDOptions{Repeats: -1}, "must be positive"},
		{"uneven projections", good, 2, good, 2, 1, 16, SWDOptions{Projections: 10, Repeats: 4}, "split evenly"},
		{"patch too big", good, 2, good, 2, 1, 16, SWDOptions{PatchSize: 17}, "smaller than the 17×17 patches"},
		{"coarse level too small", good, 2, good, 2, 1, 16, SWDOptions{MinRes: 4, PatchSize: 7}, "coarsest pyramid level"},
		{"nan", good, 2, nan, 2, 1, 16, SWDOptions{}, "value 300 (image 1) is NaN"},
	} {
		h := tc.h
		_, err := SWD(tc.a, tc.na, tc.b, tc.nb, tc.c, h, h, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.errSub) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.errSub)
		}
	}
}

// BenchmarkSWD250RGB32 times one SWD between two sets of 250 RGB 32×32 images with the default settings
// (an `rgflow eval --n 1000` on a 32×32 RGB run does four times the work).
func BenchmarkSWD250RGB32(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	x, y := smoothImages(rng, 250, 3, 32), smoothImages(rng, 250, 3, 32)
	for b.Loop() {
		if _, err := SWD(x, 250, y, 250, 3, 32, 32, DefaultSWDOptions()); err != nil {
			b.Fatal(err)
		}
	}
}
