package images

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Synthetic returns n seeded multiscale test images of channels×size×size (size ≥ 2), for tests and for
// training runs that need no data files. Each image is a periodic field made of random Gaussian blobs at
// every octave σ = size/4, size/8, …, ½ (4^o·2 blobs at octave o, amplitude ∝ √(σ/size), so coarse
// structure dominates and every scale is present, roughly a 1/f spectrum), standardised to zero mean and
// unit variance and mapped to pixels by 255·sigmoid(1.5·f), rounded. RGB images share one field and add a
// weaker per-channel field each, so colours are correlated as in natural images. Labels are nil.
func Synthetic(rng *rand.Rand, n, channels, size int) (*Images, error) {
	if n < 0 || size < 2 || size > 4096 || (channels != 1 && channels != 3) {
		return nil, fmt.Errorf("images: synthetic %d images of %d×%d×%d, want n ≥ 0, 1 or 3 channels, size 2…4096", n, channels, size, size)
	}
	im := &Images{N: n, C: channels, H: size, W: size, Pix: make([]uint8, n*channels*size*size)}
	shared := make([]float64, size*size)
	own := make([]float64, size*size)
	f := make([]float64, size*size)
	for i := 0; i < n; i++ {
		blobField(rng, size, shared)
		for c := 0; c < channels; c++ {
			copy(f, shared)
			if channels == 3 {
				blobField(rng, size, own)
				for k := range f {
					f[k] += 0.35 * own[k]
				}
			}
			standardise(f)
			dst := im.Pix[(i*channels+c)*size*size:]
			for k, v := range f {
				dst[k] = toByte(255 / (1 + math.Exp(-1.5*v)))
			}
		}
	}
	return im, nil
}

// blobField fills f (size×size) with periodic Gaussian blobs at every octave.
func blobField(rng *rand.Rand, size int, f []float64) {
	clear(f)
	for o := 0; ; o++ {
		sigma := float64(size) / float64(int(4)<<o)
		if sigma < 0.5 {
			break
		}
		amp := math.Sqrt(sigma / float64(size))
		r := int(math.Ceil(3 * sigma))
		for b := 0; b < 2<<(2*o) && b < 4*size*size; b++ {
			cx, cy := rng.Float64()*float64(size), rng.Float64()*float64(size)
			a := amp * rng.NormFloat64()
			x0, y0 := int(math.Floor(cx)), int(math.Floor(cy))
			for dy := -r; dy <= r+1; dy++ {
				y := y0 + dy
				ey := (float64(y) - cy) / sigma
				wy := math.Exp(-0.5 * ey * ey)
				yy := ((y % size) + size) % size
				for dx := -r; dx <= r+1; dx++ {
					x := x0 + dx
					ex := (float64(x) - cx) / sigma
					xx := ((x % size) + size) % size
					f[yy*size+xx] += a * wy * math.Exp(-0.5*ex*ex)
				}
			}
		}
	}
}

func standardise(f []float64) {
	var m, ss float64
	for _, v := range f {
		m += v
	}
	m /= float64(len(f))
	for _, v := range f {
		ss += (v - m) * (v - m)
	}
	sd := math.Sqrt(ss / float64(len(f)))
	if sd == 0 {
		sd = 1
	}
	for i := range f {
		f[i] = (f[i] - m) / sd
	}
}
