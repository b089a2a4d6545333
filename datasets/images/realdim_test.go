package images

import (
	"math/rand/v2"
	"testing"
)

// RealDim counts the data's own pixel values: 28×28 Fashion-MNIST in a 32×32 canvas has 784 of 1024, and
// Subset keeps it; images already at the model's size have RealDim = Dim; a padded dataset's extra values
// are zeros in every image.
func TestRealDim(t *testing.T) {
	sp, err := ParseSpec("fashion-mnist:testdata/fashion-mnist-64")
	if err != nil {
		t.Fatal(err)
	}
	tr, _, err := sp.Load(LoadOptions{Size: 32, TestFraction: -1})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Dim() != 1024 || tr.RealDim() != 784 {
		t.Errorf("padded Fashion-MNIST: Dim %d, RealDim %d, want 1024 and 784", tr.Dim(), tr.RealDim())
	}
	zeros := 0
	for _, v := range tr.Images().Image(3) {
		if v == 0 {
			zeros++
		}
	}
	if zeros < 1024-784 {
		t.Errorf("image 3 has %d zeros, fewer than the %d padded values", zeros, 1024-784)
	}
	sub, err := tr.Subset([]int{5, 2})
	if err != nil {
		t.Fatal(err)
	}
	if sub.Len() != 2 || sub.RealDim() != 784 || string(sub.Images().Image(1)) != string(tr.Images().Image(2)) {
		t.Errorf("subset: %d images, RealDim %d", sub.Len(), sub.RealDim())
	}
	if _, err := tr.Subset([]int{64}); err == nil {
		t.Error("subset index 64 of 64 images accepted")
	}
	im, err := Synthetic(rand.New(rand.NewPCG(1, 2)), 3, 1, 16)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDataset(im)
	if err != nil {
		t.Fatal(err)
	}
	if d.RealDim() != d.Dim() || d.Dim() != 256 {
		t.Errorf("unpadded: Dim %d, RealDim %d", d.Dim(), d.RealDim())
	}
}
