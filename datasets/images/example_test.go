package images_test

import (
	"fmt"

	"rgflow/datasets/images"
)

// Load the first 64 Fashion-MNIST training images shipped as test data, padded to 32×32 for a model with
// L = 32, and draw a batch in the seeded data order.
func ExampleSpec_Load() {
	sp, err := images.ParseSpec("fashion-mnist:testdata/fashion-mnist-64")
	if err != nil {
		fmt.Println(err)
		return
	}
	train, test, err := sp.Load(images.LoadOptions{Size: 32, TestFraction: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(train.Len(), train.Channels(), train.Side(), test == nil)

	order, _ := images.NewOrder(train.Len(), 1)
	idx := make([]int, 8)
	order.Next(idx)
	batch := make([]uint8, len(idx)*train.Dim()) // (8, 1, 32, 32)
	if err := train.Batch(batch, idx, nil); err != nil {
		fmt.Println(err)
	}
	fmt.Println(order.Position(), batch[0], batch[2*32+2] == train.Images().Image(idx[0])[2*32+2])
	// Output:
	// 64 1 32 true
	// 8 0 true
}
