// Package metrics measures sample quality of generated images without a pretrained network.
//
// SWD is the multi-scale sliced Wasserstein distance of Karras, Aila, Laine and Lehtinen (2018, "Progressive
// growing of GANs", appendix D) between two sets of images. The exact procedure, with DefaultSWDOptions'
// settings in brackets:
//
//  1. Inputs are (N, C, H, W) intensities, nominally in [0, 1], C order, channels planar.
//  2. Each image gets a Laplacian pyramid. The Gaussian levels are made by a separable 5-tap binomial
//     filter (1 4 6 4 1)/16 applied along rows and columns with mirror boundaries (the sample past the edge
//     reflects about the edge sample: … c b | a b c …) followed by keeping even rows and columns; the
//     up-sampling inserts zeros at odd positions and applies the same filter with gain 4 (2 per axis).
//     The levels are taken while min(H, W) at that level is at least MinRes [16]: a 64×64 image has
//     levels 64, 32, 16; a 32×32 image 32, 16; a 28×28 image only 28. Every level except the coarsest is
//     the band-pass difference G_l − up(G_{l+1}); the coarsest is the Gaussian level itself. Images smaller
//     than MinRes use their own size as the only level.
//  3. At each level, PatchesPerImage [128] patches of PatchSize×PatchSize×C [7×7×C] are cut from every
//     image at positions drawn uniformly over the valid range (the patch lies inside the level).
//  4. The larger patch set is subsampled without replacement to the size of the smaller, so both sets have
//     M descriptors (sorted 1-D Wasserstein distance needs equal counts).
//  5. Every channel of the descriptors is normalised by the mean and standard deviation of that channel over
//     all PatchSize² positions of all patches of BOTH sets at that level (a constant channel is only
//     centred). Karras et al. normalise each set by its own statistics; the joint statistics used here keep
//     differences of mean and contrast between the sets visible to the metric.
//  6. Projections/Repeats [512/4 = 128] unit directions are drawn uniformly on the sphere of dimension
//     C·PatchSize²; both sets are projected on each, the projections sorted, and the mean absolute difference
//     of the sorted values (the exact 1-D Wasserstein-1 distance between the two empirical distributions)
//     averaged over directions and multiplied by 10³, the scale the paper reports.
//  7. Steps 3–6 are repeated Repeats [4] times with fresh patches and fresh directions (so Projections [512]
//     directions in all, as in the paper). PerLevel is the mean over repeats of each level's distance,
//     Value the mean of PerLevel over levels, and Err the standard error over repeats of the per-repeat
//     mean over levels (zero when Repeats is 1). Err thus covers both the patch and the direction sampling;
//     it does not cover the choice of the images themselves.
//
// Cost: the descriptors of one level are held in float32, N·PatchesPerImage·C·PatchSize²·4 bytes per set
// (75 MB for 1000 RGB images), and the projections in blocks of about 64 MB per set; the work is dominated
// by the projections, O(N·PatchesPerImage·C·PatchSize²·Projections) per level, and by sorting them.
//
// Everything random comes from a PCG source seeded by Seed: the same inputs and options give the same result
// bit for bit, whatever the number of CPUs.
package metrics

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
)

// SWDOptions are the settings of SWD. A zero field takes its DefaultSWDOptions value (Seed 0 is a seed).
type SWDOptions struct {
	MinRes          int // coarsest pyramid level (pixels, the smaller side); default 16
	PatchSize       int // side of the square patches; default 7
	PatchesPerImage int // patches cut from every image at every level in every repeat; default 128
	Projections     int // random directions in all, split evenly over the repeats; default 512
	Repeats         int // independent repeats (fresh patches and directions); default 4
	Seed            uint64
}

// DefaultSWDOptions are Karras et al.'s settings: pyramid down to 16×16, 7×7 patches, 128 patches per image per
// level, 512 random projections in 4 repeats of 128.
func DefaultSWDOptions() SWDOptions {
	return SWDOptions{MinRes: 16, PatchSize: 7, PatchesPerImage: 128, Projections: 512, Repeats: 4}
}

// SWDResult is the distance (×10³) and its standard error over repeats, with the distance at every pyramid
// level, finest first, and each level's height in pixels (its side for square images).
type SWDResult struct {
	Value, Err  float64
	PerLevel    []float64
	Resolutions []int
}

func (o SWDOptions) withDefaults() SWDOptions {
	d := DefaultSWDOptions()
	if o.MinRes == 0 {
		o.MinRes = d.MinRes
	}
	if o.PatchSize == 0 {
		o.PatchSize = d.PatchSize
	}
	if o.PatchesPerImage == 0 {
		o.PatchesPerImage = d.PatchesPerImage
	}
	if o.Projections == 0 {
		o.Projections = d.Projections
	}
	if o.Repeats == 0 {
		o.Repeats = d.Repeats
	}
	return o
}

// swdSeedStream is the second word of SWD's PCG seed.
const swdSeedStream = 0x53574430 // "SWD0"

// SWD is the multi-scale sliced Wasserstein distance between the na images in a and the nb images in b, each
// (N, C, H, W) (see the package documentation for the procedure).
func SWD(a []float64, na int, b []float64, nb int, c, h, w int, o SWDOptions) (SWDResult, error) {
	o = o.withDefaults()
	if err := checkSWDArgs(a, na, b, nb, c, h, w, o); err != nil {
		return SWDResult{}, err
	}
	// Pyramids of every image, level by level: pa[l] holds na images of size hs[l]×ws[l]×c.
	hs, ws := pyramidSizes(h, w, o.MinRes)
	pa := pyramids(a, na, c, hs, ws)
	pb := pyramids(b, nb, c, hs, ws)

	rng := rand.New(rand.NewPCG(o.Seed, swdSeedStream))
	dim := c * o.PatchSize * o.PatchSize
	perRepeat := o.Projections / o.Repeats
	levels := len(hs)
	dist := make([][]float64, o.Repeats) // [repeat][level]
	for r := range dist {
		dist[r] = make([]float64, levels)
		for l := 0; l < levels; l++ {
			da := patches(rng, pa[l], na, c, hs[l], ws[l], o.PatchSize, o.PatchesPerImage)
			db := patches(rng, pb[l], nb, c, hs[l], ws[l], o.PatchSize, o.PatchesPerImage)
			ma, mb := len(da)/dim, len(db)/dim
			switch {
			case ma > mb:
				da = subsample(rng, da, ma, mb, dim)
			case mb > ma:
				db = subsample(rng, db, mb, ma, dim)
			}
			normaliseChannels(da, db, c, o.PatchSize*o.PatchSize)
			dirs := randomDirections(rng, perRepeat, dim)
			dist[r][l] = 1e3 * slicedW1(da, db, dim, dirs)
		}
	}

	res := SWDResult{PerLevel: make([]float64, levels), Resolutions: hs}
	vals := make([]float64, o.Repeats)
	for r := range dist {
		for l, d := range dist[r] {
			res.PerLevel[l] += d / float64(o.Repeats)
			vals[r] += d / float64(levels)
		}
	}
	for _, v := range vals {
		res.Value += v / float64(o.Repeats)
	}
	if o.Repeats > 1 {
		var ss float64
		for _, v := range vals {
			ss += (v - res.Value) * (v - res.Value)
		}
		res.Err = math.Sqrt(ss / float64(o.Repeats-1) / float64(o.Repeats))
	}
	return res, nil
}

func checkSWDArgs(a []float64, na int, b []float64, nb int, c, h, w int, o SWDOptions) error {
	switch {
	case na < 1 || nb < 1:
		return fmt.Errorf("metrics: SWD: image counts %d and %d, want at least 1 each", na, nb)
	case c < 1 || h < 1 || w < 1:
		return fmt.Errorf("metrics: SWD: image shape (C, H, W) = (%d, %d, %d), want positive sizes", c, h, w)
	case len(a) != na*c*h*w:
		return fmt.Errorf("metrics: SWD: first set has %d values, want %d·%d·%d·%d = %d", len(a), na, c, h, w, na*c*h*w)
	case len(b) != nb*c*h*w:
		return fmt.Errorf("metrics: SWD: second set has %d values, want %d·%d·%d·%d = %d", len(b), nb, c, h, w, nb*c*h*w)
	case o.MinRes < 1 || o.PatchSize < 1 || o.PatchesPerImage < 1 || o.Projections < 1 || o.Repeats < 1:
		return fmt.Errorf("metrics: SWD: options %+v: every size and count must be positive", o)
	case o.Projections%o.Repeats != 0:
		return fmt.Errorf("metrics: SWD: %d projections do not split evenly over %d repeats", o.Projections, o.Repeats)
	case h < o.PatchSize || w < o.PatchSize:
		return fmt.Errorf("metrics: SWD: %d×%d images are smaller than the %d×%d patches", h, w, o.PatchSize, o.PatchSize)
	}
	// The coarsest level must still hold a patch.
	hs, ws := pyramidSizes(h, w, o.MinRes)
	if l := len(hs) - 1; hs[l] < o.PatchSize || ws[l] < o.PatchSize {
		return fmt.Errorf("metrics: SWD: coarsest pyramid level %d×%d is smaller than the %d×%d patches (raise MinRes)",
			hs[l], ws[l], o.PatchSize, o.PatchSize)
	}
	for i, v := range a {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("metrics: SWD: first set, value %d (image %d) is %v", i, i/(c*h*w), v)
		}
	}
	for i, v := range b {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("metrics: SWD: second set, value %d (image %d) is %v", i, i/(c*h*w), v)
		}
	}
	return nil
}

// pyramidSizes lists the level sizes: the image's own, then halved (rounding up) while the smaller side stays
// at least minRes; an image smaller than minRes has its own size as the only level.
func pyramidSizes(h, w, minRes int) (hs, ws []int) {
	hs, ws = []int{h}, []int{w}
	for {
		nh, nw := (hs[len(hs)-1]+1)/2, (ws[len(ws)-1]+1)/2
		if min(nh, nw) < minRes {
			return hs, ws
		}
		hs, ws = append(hs, nh), append(ws, nw)
	}
}

// binomial5 is the 5-tap binomial filter (1 4 6 4 1)/16.
var binomial5 = [5]float64{1.0 / 16, 4.0 / 16, 6.0 / 16, 4.0 / 16, 1.0 / 16}

// mirror maps an index outside [0, n) back by reflection about the edge samples (… c b | a b c …).
func mirror(i, n int) int {
	if n == 1 {
		return 0
	}
	period := 2 * (n - 1)
	i %= period
	if i < 0 {
		i += period
	}
	if i >= n {
		i = period - i
	}
	return i
}

// blur1D filters n samples src[off + k·stride] with the binomial filter times gain into dst (same layout).
func blur1D(dst, src []float64, off, stride, n int, gain float64) {
	for i := 0; i < n; i++ {
		var s float64
		for k := -2; k <= 2; k++ {
			s += binomial5[k+2] * src[off+mirror(i+k, n)*stride]
		}
		dst[off+i*stride] = gain * s
	}
}

// blur2D filters an h×w plane separably (rows, then columns), each axis with the given gain.
func blur2D(plane []float64, h, w int, gain float64) []float64 {
	tmp := make([]float64, h*w)
	out := make([]float64, h*w)
	for y := 0; y < h; y++ {
		blur1D(tmp, plane, y*w, 1, w, gain)
	}
	for x := 0; x < w; x++ {
		blur1D(out, tmp, x, w, h, gain)
	}
	return out
}

// pyrDown blurs an h×w plane and keeps its even rows and columns: ((h+1)/2)×((w+1)/2).
func pyrDown(plane []float64, h, w int) []float64 {
	bl := blur2D(plane, h, w, 1)
	nh, nw := (h+1)/2, (w+1)/2
	out := make([]float64, nh*nw)
	for y := 0; y < nh; y++ {
		for x := 0; x < nw; x++ {
			out[y*nw+x] = bl[2*y*w+2*x]
		}
	}
	return out
}

// pyrUp places a coarse plane on the even rows and columns of an h×w plane of zeros and blurs with gain 2
// per axis, so a constant plane stays constant.
func pyrUp(coarse []float64, h, w int) []float64 {
	nh, nw := (h+1)/2, (w+1)/2
	up := make([]float64, h*w)
	for y := 0; y < nh; y++ {
		for x := 0; x < nw; x++ {
			up[2*y*w+2*x] = coarse[y*nw+x]
		}
	}
	return blur2D(up, h, w, 2)
}

// laplacianPyramid splits one h×w plane into its levels (band-pass levels, then the coarsest Gaussian one).
func laplacianPyramid(plane []float64, h, w, levels int) [][]float64 {
	out := make([][]float64, levels)
	g := plane
	for l := 0; l < levels-1; l++ {
		next := pyrDown(g, h, w)
		up := pyrUp(next, h, w)
		band := make([]float64, h*w)
		for i := range band {
			band[i] = g[i] - up[i]
		}
		out[l] = band
		g, h, w = next, (h+1)/2, (w+1)/2
	}
	out[levels-1] = slices.Clone(g)
	return out
}

// pyramids builds the pyramid of every image; level l of the result is (n, c, hs[l], ws[l]).
func pyramids(x []float64, n, c int, hs, ws []int) [][]float64 {
	h, w, levels := hs[0], ws[0], len(hs)
	out := make([][]float64, levels)
	for l := range out {
		out[l] = make([]float64, n*c*hs[l]*ws[l])
	}
	parallelFor(n*c, func(p int) {
		lv := laplacianPyramid(x[p*h*w:(p+1)*h*w], h, w, levels)
		for l := range lv {
			copy(out[l][p*hs[l]*ws[l]:], lv[l])
		}
	})
	return out
}

// patches cuts per random patch×patch×c patches from each of the n images (n, c, h, w) of one level, as
// rows of c·patch² values (channel, row, column order).
func patches(rng *rand.Rand, lv []float64, n, c, h, w, patch, per int) []float32 {
	dim := c * patch * patch
	out := make([]float32, n*per*dim)
	for i := 0; i < n; i++ {
		for p := 0; p < per; p++ {
			y0, x0 := rng.IntN(h-patch+1), rng.IntN(w-patch+1)
			row := out[(i*per+p)*dim:]
			k := 0
			for ch := 0; ch < c; ch++ {
				base := (i*c + ch) * h * w
				for y := 0; y < patch; y++ {
					for x := 0; x < patch; x++ {
						row[k] = float32(lv[base+(y0+y)*w+x0+x])
						k++
					}
				}
			}
		}
	}
	return out
}

// subsample keeps m of the n rows (dim values each) of d, chosen uniformly without replacement.
func subsample(rng *rand.Rand, d []float32, n, m, dim int) []float32 {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	out := make([]float32, m*dim)
	for i := 0; i < m; i++ {
		j := i + rng.IntN(n-i)
		idx[i], idx[j] = idx[j], idx[i]
		copy(out[i*dim:(i+1)*dim], d[idx[i]*dim:(idx[i]+1)*dim])
	}
	return out
}

// normaliseChannels standardises each of the c channels (blocks of per values in every row) of both
// descriptor sets by that channel's mean and standard deviation over both sets.
func normaliseChannels(da, db []float32, c, per int) {
	dim := c * per
	for ch := 0; ch < c; ch++ {
		var sum, sum2 float64
		var cnt int
		for _, d := range [][]float32{da, db} {
			for r := 0; r < len(d)/dim; r++ {
				for _, v := range d[r*dim+ch*per : r*dim+(ch+1)*per] {
					sum += float64(v)
					sum2 += float64(v) * float64(v)
					cnt++
				}
			}
		}
		mean := sum / float64(cnt)
		sd := math.Sqrt(max(sum2/float64(cnt)-mean*mean, 0))
		scale := 1.0
		if sd > 0 {
			scale = 1 / sd
		}
		for _, d := range [][]float32{da, db} {
			for r := 0; r < len(d)/dim; r++ {
				seg := d[r*dim+ch*per : r*dim+(ch+1)*per]
				for i, v := range seg {
					seg[i] = float32((float64(v) - mean) * scale)
				}
			}
		}
	}
}

// randomDirections draws k unit vectors of dimension dim, uniform on the sphere (normalised Gaussians).
func randomDirections(rng *rand.Rand, k, dim int) []float64 {
	dirs := make([]float64, k*dim)
	for j := 0; j < k; j++ {
		u := dirs[j*dim : (j+1)*dim]
		var n2 float64
		for n2 == 0 {
			for i := range u {
				u[i] = rng.NormFloat64()
				n2 += u[i] * u[i]
			}
		}
		inv := 1 / math.Sqrt(n2)
		for i := range u {
			u[i] *= inv
		}
	}
	return dirs
}

// project returns the projections of the rows of d (dim values each) on every direction, direction-major:
// out[j·rows + i] = <d_i, u_j>.
func project(d []float32, dim int, dirs []float64) []float64 {
	rows, k := len(d)/dim, len(dirs)/dim
	out := make([]float64, k*rows)
	parallelChunks(rows, func(lo, hi int) {
		row := make([]float64, dim)
		for i := lo; i < hi; i++ {
			for t, v := range d[i*dim : (i+1)*dim] {
				row[t] = float64(v)
			}
			j := 0
			for ; j+4 <= k; j += 4 { // four directions per pass over the row
				u0, u1 := dirs[j*dim:(j+1)*dim], dirs[(j+1)*dim:(j+2)*dim]
				u2, u3 := dirs[(j+2)*dim:(j+3)*dim], dirs[(j+3)*dim:(j+4)*dim]
				var s0, s1, s2, s3 float64
				for t, v := range row {
					s0 += v * u0[t]
					s1 += v * u1[t]
					s2 += v * u2[t]
					s3 += v * u3[t]
				}
				out[j*rows+i], out[(j+1)*rows+i], out[(j+2)*rows+i], out[(j+3)*rows+i] = s0, s1, s2, s3
			}
			for ; j < k; j++ {
				u := dirs[j*dim : (j+1)*dim]
				var s float64
				for t, v := range row {
					s += v * u[t]
				}
				out[j*rows+i] = s
			}
		}
	})
	return out
}

// floatKey maps a float64 to a uint64 whose unsigned order is the float order (NaN excluded).
func floatKey(x float64) uint64 {
	b := math.Float64bits(x)
	if b>>63 == 1 {
		return ^b
	}
	return b | 1<<63
}

func keyFloat(k uint64) float64 {
	if k>>63 == 1 {
		return math.Float64frombits(k &^ (1 << 63))
	}
	return math.Float64frombits(^k)
}

// radixSort sorts x (no NaNs) in place by an LSD radix sort of the order-preserving keys, 11 bits per pass:
// linear time, several times faster than a comparison sort for the ~10⁵-element sets SWD sorts.
func radixSort(x []float64) {
	const bits, buckets = 11, 1 << 11
	if len(x) < 2 {
		return
	}
	keys, tmp := make([]uint64, len(x)), make([]uint64, len(x))
	for i, v := range x {
		keys[i] = floatKey(v)
	}
	var count [buckets]int
	for shift := uint(0); shift < 64; shift += bits {
		clear(count[:])
		for _, k := range keys {
			count[(k>>shift)&(buckets-1)]++
		}
		if count[(keys[0]>>shift)&(buckets-1)] == len(keys) {
			continue // every key has the same digit here
		}
		sum := 0
		for i, c := range count {
			count[i] = sum
			sum += c
		}
		for _, k := range keys {
			d := (k >> shift) & (buckets - 1)
			tmp[count[d]] = k
			count[d]++
		}
		keys, tmp = tmp, keys
	}
	for i, k := range keys {
		x[i] = keyFloat(k)
	}
}

// wasserstein1D is the Wasserstein-1 distance between two empirical distributions of equal size: the mean
// absolute difference of the sorted values. It sorts x and y in place.
func wasserstein1D(x, y []float64) float64 {
	if len(x) != len(y) {
		panic("metrics: wasserstein1D: unequal sizes")
	}
	radixSort(x)
	radixSort(y)
	var s float64
	for i := range x {
		s += math.Abs(x[i] - y[i])
	}
	return s / float64(len(x))
}

// slicedW1 is the mean over the directions of the 1-D Wasserstein distance between the projections of the
// equally many rows of da and db. Directions are handled in blocks whose projections take about 64 MB per
// set, so memory stays bounded for large sets; the result does not depend on the blocking.
func slicedW1(da, db []float32, dim int, dirs []float64) float64 {
	rows, k := len(da)/dim, len(dirs)/dim
	if len(db)/dim != rows {
		panic("metrics: slicedW1: unequal set sizes")
	}
	return slicedW1Blocks(da, db, dim, dirs, min(k, max(4, (64<<20)/(8*max(rows, 1))/4*4)))
}

// slicedW1Blocks is slicedW1 with the directions taken block at a time.
func slicedW1Blocks(da, db []float32, dim int, dirs []float64, block int) float64 {
	rows, k := len(da)/dim, len(dirs)/dim
	w := make([]float64, k)
	for j0 := 0; j0 < k; j0 += block {
		j1 := min(k, j0+block)
		sub := dirs[j0*dim : j1*dim]
		pa, pb := project(da, dim, sub), project(db, dim, sub)
		parallelFor(j1-j0, func(j int) {
			w[j0+j] = wasserstein1D(pa[j*rows:(j+1)*rows], pb[j*rows:(j+1)*rows])
		})
	}
	var s float64
	for _, v := range w {
		s += v
	}
	return s / float64(k)
}

// parallelFor runs f(0…n−1) on all CPUs; each index is done by exactly one goroutine.
func parallelFor(n int, f func(i int)) {
	parallelChunks(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			f(i)
		}
	})
}

// parallelChunks splits [0, n) into contiguous chunks, one per CPU, and runs f on each.
func parallelChunks(n int, f func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		if n > 0 {
			f(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for t := 0; t < workers; t++ {
		lo, hi := t*n/workers, (t+1)*n/workers
		wg.Go(func() { f(lo, hi) })
	}
	wg.Wait()
}
