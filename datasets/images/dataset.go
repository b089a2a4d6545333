package images

import (
	"fmt"
	"math/rand/v2"
)

// Dataset is one split ready for training: N images of C×S×S with S a power of two (the model's L). Images
// smaller than S are centred in zeros (Pad); RealDim counts the pixel values that come from the data.
type Dataset struct {
	im     *Images
	real   int // pixel values per image that are data, not padding
	rh, rw int // the data's own image size inside the canvas (Pad centres it)
}

// NewDataset wraps im (not copied), which must be square with a power-of-two side; use Images.Pad first for
// MNIST-like data.
func NewDataset(im *Images) (*Dataset, error) {
	if err := im.Validate(); err != nil {
		return nil, err
	}
	if im.H != im.W || !IsPow2(im.H) {
		return nil, fmt.Errorf("images: dataset of %d×%d images, want square with a power-of-two side (pad or resample first)", im.H, im.W)
	}
	if im.N == 0 {
		return nil, fmt.Errorf("images: empty dataset")
	}
	return &Dataset{im: im, real: im.Size(), rh: im.H, rw: im.W}, nil
}

// NewPaddedDataset pads im to size×size (Pad) and remembers how many pixel values per image are the data's
// own (RealDim = C·H·W of im); the rest are zeros that carry no information.
func NewPaddedDataset(im *Images, size int) (*Dataset, error) {
	if err := im.Validate(); err != nil {
		return nil, err
	}
	real := im.Size()
	padded, err := im.Pad(size)
	if err != nil {
		return nil, err
	}
	d, err := NewDataset(padded)
	if err != nil {
		return nil, err
	}
	d.real, d.rh, d.rw = real, im.H, im.W
	return d, nil
}

// Subset returns a Dataset of copies of the images at idx, in that order, with the same RealDim.
func (d *Dataset) Subset(idx []int) (*Dataset, error) {
	for _, i := range idx {
		if i < 0 || i >= d.im.N {
			return nil, fmt.Errorf("images: subset index %d out of range [0, %d)", i, d.im.N)
		}
	}
	out, err := NewDataset(d.im.Subset(idx))
	if err != nil {
		return nil, err
	}
	out.real, out.rh, out.rw = d.real, d.rh, d.rw
	return out, nil
}

// Len is the number of images.
func (d *Dataset) Len() int { return d.im.N }

// Channels is C.
func (d *Dataset) Channels() int { return d.im.C }

// Side is S.
func (d *Dataset) Side() int { return d.im.H }

// Dim is the number of pixel values per image, D = C·S·S (the padded canvas).
func (d *Dataset) Dim() int { return d.im.Size() }

// RealDim is the number of pixel values per image that come from the data: Dim for images loaded at the
// model's size, C·28·28 for 28×28 images padded to 32×32 (NewPaddedDataset).
func (d *Dataset) RealDim() int { return d.real }

// RealShape is the data's own image size H×W inside the S×S canvas (28×28 for padded Fashion-MNIST; S×S
// for images loaded at the model's size). CropPad(…, S, H, W) recovers those pixels from canvas images.
func (d *Dataset) RealShape() (h, w int) { return d.rh, d.rw }

// Images is the underlying image set (shared, not a copy).
func (d *Dataset) Images() *Images { return d.im }

// Batch copies the images at idx into dst, (len(idx), C, S, S) in C order. If flip is not nil, image k is
// mirrored left–right when flip[k] is true. dst must hold exactly len(idx)·D values.
func (d *Dataset) Batch(dst []uint8, idx []int, flip []bool) error {
	D, s := d.im.Size(), d.im.W
	if len(dst) != len(idx)*D {
		return fmt.Errorf("images: batch buffer of %d values for %d images of %d", len(dst), len(idx), D)
	}
	if flip != nil && len(flip) != len(idx) {
		return fmt.Errorf("images: %d flip flags for %d images", len(flip), len(idx))
	}
	for k, i := range idx {
		if i < 0 || i >= d.im.N {
			return fmt.Errorf("images: batch index %d out of range [0, %d)", i, d.im.N)
		}
		src, out := d.im.Image(i), dst[k*D:(k+1)*D]
		if flip == nil || !flip[k] {
			copy(out, src)
			continue
		}
		for r := 0; r < D/s; r++ {
			row, o := src[r*s:(r+1)*s], out[r*s:(r+1)*s]
			for x := range o {
				o[x] = row[s-1-x]
			}
		}
	}
	return nil
}

// Order hands out image indices epoch by epoch: epoch e is a permutation of 0…N−1 drawn with
// rand.NewPCG(Seed, e), so the whole state is the position, the number of indices handed out so far, and
// an order can be saved as one integer and resumed exactly (SetPosition).
type Order struct {
	n     int
	seed  uint64
	pos   int64
	epoch int64 // epoch whose permutation perm holds (−1: none)
	perm  []int
}

// NewOrder returns the order of n > 0 items for a seed, at position 0.
func NewOrder(n int, seed uint64) (*Order, error) {
	if n < 1 {
		return nil, fmt.Errorf("images: order of %d items, want ≥ 1", n)
	}
	return &Order{n: n, seed: seed, epoch: -1, perm: make([]int, n)}, nil
}

// Position is the number of indices handed out since position 0 (epoch = Position / N).
func (o *Order) Position() int64 { return o.pos }

// SetPosition moves to position p ≥ 0, as if Next had handed out p indices.
func (o *Order) SetPosition(p int64) error {
	if p < 0 {
		return fmt.Errorf("images: data position %d, want ≥ 0", p)
	}
	o.pos = p
	return nil
}

// Epoch is the current epoch, Position / N.
func (o *Order) Epoch() int64 { return o.pos / int64(o.n) }

// Next fills dst with the next len(dst) indices, crossing into the next epoch's permutation as needed.
func (o *Order) Next(dst []int) {
	for k := range dst {
		e := o.pos / int64(o.n)
		if e != o.epoch {
			for i := range o.perm {
				o.perm[i] = i
			}
			r := rand.New(rand.NewPCG(o.seed, uint64(e)))
			r.Shuffle(o.n, func(i, j int) { o.perm[i], o.perm[j] = o.perm[j], o.perm[i] })
			o.epoch = e
		}
		dst[k] = o.perm[o.pos%int64(o.n)]
		o.pos++
	}
}
