package images

import (
	"fmt"
	"math/rand/v2"
)

// Images is a set of uint8 images, (N, C, H, W) in C order (see the package doc).
type Images struct {
	N, C, H, W int
	// Pix holds N·C·H·W pixel values.
	Pix []uint8
	// Labels holds one label per image, or is nil.
	Labels []uint8
}

// Size is the number of pixel values of one image, C·H·W.
func (im *Images) Size() int { return im.C * im.H * im.W }

// Image returns the pixels of image i (a sub-slice of Pix, not a copy).
func (im *Images) Image(i int) []uint8 {
	d := im.Size()
	return im.Pix[i*d : (i+1)*d : (i+1)*d]
}

// Validate checks that the dimensions are positive, C is 1 or 3, and Pix and Labels have the right lengths.
func (im *Images) Validate() error {
	if im == nil {
		return fmt.Errorf("images: nil image set")
	}
	if im.N < 0 || im.H < 1 || im.W < 1 {
		return fmt.Errorf("images: image set %d×%d×%d×%d, want N ≥ 0 and positive H, W", im.N, im.C, im.H, im.W)
	}
	if im.C != 1 && im.C != 3 {
		return fmt.Errorf("images: %d channels, want 1 (grey) or 3 (RGB)", im.C)
	}
	if len(im.Pix) != im.N*im.Size() {
		return fmt.Errorf("images: %d pixel values for %d×%d×%d×%d images", len(im.Pix), im.N, im.C, im.H, im.W)
	}
	if im.Labels != nil && len(im.Labels) != im.N {
		return fmt.Errorf("images: %d labels for %d images", len(im.Labels), im.N)
	}
	return nil
}

// Subset returns a new set holding copies of the images (and labels) at idx, in that order. Indices out of
// range are a programmer error and panic.
func (im *Images) Subset(idx []int) *Images {
	out := &Images{N: len(idx), C: im.C, H: im.H, W: im.W, Pix: make([]uint8, len(idx)*im.Size())}
	if im.Labels != nil {
		out.Labels = make([]uint8, len(idx))
	}
	for k, i := range idx {
		copy(out.Image(k), im.Image(i))
		if im.Labels != nil {
			out.Labels[k] = im.Labels[i]
		}
	}
	return out
}

// Concat joins image sets of the same C, H, W. Labels are kept only if every set has them.
func Concat(sets ...*Images) (*Images, error) {
	if len(sets) == 0 {
		return nil, fmt.Errorf("images: Concat of no image sets")
	}
	out := &Images{C: sets[0].C, H: sets[0].H, W: sets[0].W}
	labels := true
	for _, s := range sets {
		if s.C != out.C || s.H != out.H || s.W != out.W {
			return nil, fmt.Errorf("images: cannot concatenate %d×%d×%d images with %d×%d×%d ones", s.C, s.H, s.W, out.C, out.H, out.W)
		}
		out.N += s.N
		labels = labels && s.Labels != nil
	}
	out.Pix = make([]uint8, 0, out.N*out.Size())
	for _, s := range sets {
		out.Pix = append(out.Pix, s.Pix...)
	}
	if labels {
		out.Labels = make([]uint8, 0, out.N)
		for _, s := range sets {
			out.Labels = append(out.Labels, s.Labels...)
		}
	}
	return out, nil
}

// Split shuffles the images with rng and returns the first N−nTest as train and the last nTest as test
// (copies). nTest must be in [0, N].
func (im *Images) Split(rng *rand.Rand, nTest int) (train, test *Images, err error) {
	if nTest < 0 || nTest > im.N {
		return nil, nil, fmt.Errorf("images: test split of %d images out of %d", nTest, im.N)
	}
	perm := make([]int, im.N)
	for i := range perm {
		perm[i] = i
	}
	rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	return im.Subset(perm[:im.N-nTest]), im.Subset(perm[im.N-nTest:]), nil
}

// Pad returns the images centred in size×size frames of zeros: (size−H)/2 rows above, the rest below, and
// likewise for columns (28 → 32 adds 2 px on every side). The images must not be larger than size.
func (im *Images) Pad(size int) (*Images, error) {
	if im.H > size || im.W > size {
		return nil, fmt.Errorf("images: cannot pad %d×%d images to %d×%d", im.H, im.W, size, size)
	}
	if im.H == size && im.W == size {
		out := *im
		out.Pix = append([]uint8(nil), im.Pix...)
		if im.Labels != nil {
			out.Labels = append([]uint8(nil), im.Labels...)
		}
		return &out, nil
	}
	top, left := (size-im.H)/2, (size-im.W)/2
	out := &Images{N: im.N, C: im.C, H: size, W: size, Pix: make([]uint8, im.N*im.C*size*size)}
	if im.Labels != nil {
		out.Labels = append([]uint8(nil), im.Labels...)
	}
	for n := 0; n < im.N; n++ {
		for c := 0; c < im.C; c++ {
			src := im.Pix[(n*im.C+c)*im.H*im.W:]
			dst := out.Pix[(n*im.C+c)*size*size:]
			for i := 0; i < im.H; i++ {
				copy(dst[(top+i)*size+left:(top+i)*size+left+im.W], src[i*im.W:(i+1)*im.W])
			}
		}
	}
	return out, nil
}

// CropPad is the inverse of Pad for n images of c×size×size in pix: it returns their centred h×w parts,
// (n, c, h, w), the pixels Pad placed (rows (size−h)/2 … and columns (size−w)/2 …).
func CropPad(pix []uint8, n, c, size, h, w int) ([]uint8, error) {
	if n < 0 || c < 1 || h < 1 || w < 1 || h > size || w > size || len(pix) != n*c*size*size {
		return nil, fmt.Errorf("images: cannot crop %d values as %d×%d×%d×%d images to %d×%d", len(pix), n, c, size, size, h, w)
	}
	top, left := (size-h)/2, (size-w)/2
	out := make([]uint8, n*c*h*w)
	for p := 0; p < n*c; p++ {
		src, dst := pix[p*size*size:], out[p*h*w:]
		for i := 0; i < h; i++ {
			copy(dst[i*w:(i+1)*w], src[(top+i)*size+left:(top+i)*size+left+w])
		}
	}
	return out, nil
}

// IsPow2 reports whether n is a positive power of two.
func IsPow2(n int) bool { return n > 0 && n&(n-1) == 0 }

// NextPow2 is the smallest power of two ≥ n (n ≥ 1).
func NextPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

// Grey returns the images converted to one channel with the ITU-R BT.601 luma weights
// (0.299 R + 0.587 G + 0.114 B, rounded); grey images are returned as a copy.
func (im *Images) Grey() *Images {
	if im.C == 1 {
		return im.Subset(seq(im.N))
	}
	hw := im.H * im.W
	out := &Images{N: im.N, C: 1, H: im.H, W: im.W, Pix: make([]uint8, im.N*hw)}
	if im.Labels != nil {
		out.Labels = append([]uint8(nil), im.Labels...)
	}
	for n := 0; n < im.N; n++ {
		src := im.Image(n)
		for p := 0; p < hw; p++ {
			v := 299*int(src[p]) + 587*int(src[hw+p]) + 114*int(src[2*hw+p])
			out.Pix[n*hw+p] = uint8((v + 500) / 1000)
		}
	}
	return out
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
