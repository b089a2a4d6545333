package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

// TestReduceGradRangeBits checks the one-pass sum into the gradient tensors against the two passes it
// replaces (the sum into the trainer's flat vector in worker order, then the copy rounded to the tensors'
// dtype), bit for bit, for 2 and 3 workers, both dtypes and parameters longer than one block.
func TestReduceGradRangeBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 14))
	sizes := []int{5, 1024, 2500, 1}
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		for _, nw := range []int{2, 3} {
			mk := func() *Trainer {
				tr := &Trainer{sizes: sizes}
				tr.splitParams(1)
				total := tr.offs[len(sizes)]
				tr.flat = make([]float64, total+1)
				for range nw {
					tr.workers = append(tr.workers, &worker{flat: make([]float64, total+1)})
				}
				for _, n := range sizes {
					tr.grads = append(tr.grads, Grad{Value: tensor.New(tensor.Of(dt), tensor.WithShape(n))})
				}
				return tr
			}
			a, b := mk(), mk()
			for w := range nw {
				for k := range a.workers[w].flat {
					// Values of mixed magnitudes, so that the order of the sum shows in the low bits.
					v := rng.NormFloat64() * math.Pow(2, float64(rng.IntN(40)-20))
					a.workers[w].flat[k], b.workers[w].flat[k] = v, v
				}
			}
			a.reduceGradRange(0, len(sizes))
			b.reduceRange(0, b.offs[len(sizes)])
			b.gradRange(0, len(sizes))
			for i := range sizes {
				x, y := a.grads[i].Value, b.grads[i].Value
				for k := range sizes[i] {
					u, _ := x.At(k)
					v, _ := y.At(k)
					if u != v {
						t.Fatalf("%v, %d workers: parameter %d element %d: %v, the two-pass sum %v", dt, nw, i, k, u, v)
					}
				}
			}
		}
	}
}
