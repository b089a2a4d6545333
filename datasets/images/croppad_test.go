package images

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// CropPad undoes Pad exactly, for odd and even margins, and RealShape remembers the size before padding.
func TestCropPadUndoesPad(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 5))
	for _, sz := range [][2]int{{28, 28}, {5, 8}, {16, 16}, {7, 3}} {
		im := &Images{N: 3, C: 3, H: sz[0], W: sz[1], Pix: make([]uint8, 3*3*sz[0]*sz[1])}
		for i := range im.Pix {
			im.Pix[i] = uint8(1 + rng.IntN(255)) // never 0, so padding cannot pass for data
		}
		d, err := NewPaddedDataset(im, 16*((max(sz[0], sz[1])+15)/16))
		if err != nil {
			t.Fatal(err)
		}
		if h, w := d.RealShape(); h != sz[0] || w != sz[1] {
			t.Errorf("%v: RealShape %d×%d", sz, h, w)
		}
		back, err := CropPad(d.Images().Pix, 3, 3, d.Side(), sz[0], sz[1])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, im.Pix) {
			t.Errorf("%v: CropPad(Pad(x)) ≠ x", sz)
		}
		sub, _ := d.Subset([]int{2})
		if h, w := sub.RealShape(); h != sz[0] || w != sz[1] {
			t.Errorf("%v: subset RealShape %d×%d", sz, h, w)
		}
	}
	if _, err := CropPad(make([]uint8, 10), 1, 1, 4, 2, 2); err == nil {
		t.Error("CropPad of 10 values as a 4×4 image: no error")
	}
	if _, err := CropPad(make([]uint8, 16), 1, 1, 4, 5, 2); err == nil {
		t.Error("CropPad to 5 rows of a 4×4 image: no error")
	}
}
