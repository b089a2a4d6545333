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

// TestVectorHelpersBits checks addTo, toFloat32 and scaleInto against the scalar expressions they stand
// for, bit for bit, on every length up to 40 (vector part and tail) and a long one, with values over many
// binades, zeros of both signs, infinities, NaN and float32 overflow and underflow.
func TestVectorHelpersBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 9))
	value := func() float64 {
		switch rng.IntN(30) {
		case 0:
			return math.Copysign(0, -1)
		case 1:
			return math.Inf(1 - 2*rng.IntN(2))
		case 2:
			return math.NaN()
		case 3:
			return 1e300 // overflows float32
		case 4:
			return 1e-300 // underflows float32
		}
		return rng.NormFloat64() * math.Pow(2, float64(rng.IntN(80)-40))
	}
	same := func(x, y float64) bool {
		return math.Float64bits(x) == math.Float64bits(y) || math.IsNaN(x) && math.IsNaN(y)
	}
	for n := range 1024 {
		if n > 40 && n != 1023 {
			continue
		}
		a, b := make([]float64, n), make([]float64, n)
		for i := range a {
			a[i], b[i] = value(), value()
		}
		got := append([]float64(nil), a...)
		addTo(got, b)
		g32 := make([]float32, n)
		toFloat32(g32, a)
		w := 0.3125 + rng.Float64()
		s64, s32 := make([]float64, n), make([]float64, n)
		scaleInto(s64, a, w)
		scaleInto(s32, g32, w)
		for i := range a {
			if !same(got[i], a[i]+b[i]) {
				t.Fatalf("addTo n=%d [%d]: %v + %v = %v, want %v", n, i, a[i], b[i], got[i], a[i]+b[i])
			}
			if !same(float64(g32[i]), float64(float32(a[i]))) {
				t.Fatalf("toFloat32 n=%d [%d]: %v → %v, want %v", n, i, a[i], g32[i], float32(a[i]))
			}
			if !same(s64[i], a[i]*w) || !same(s32[i], float64(g32[i])*w) {
				t.Fatalf("scaleInto n=%d [%d]: %v·%v = %v, %v·%v = %v", n, i, a[i], w, s64[i], g32[i], w, s32[i])
			}
		}
	}
}

// benchTrainer is a Trainer with 2 workers' gradient vectors over the image preset's 243,648 float32
// parameters, as three tensors.
func benchTrainer() *Trainer {
	sizes := []int{100000, 100000, 43648}
	tr := &Trainer{sizes: sizes}
	tr.splitParams(1)
	total := tr.offs[len(sizes)]
	tr.flat = make([]float64, total+1)
	for range 2 {
		tr.workers = append(tr.workers, &worker{flat: make([]float64, total+1)})
	}
	for _, n := range sizes {
		tr.grads = append(tr.grads, Grad{Value: tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(n))})
	}
	return tr
}

// BenchmarkReduce: the sum of 2 workers' gradients into float32 tensors, in two passes (TwoPass, the
// scalar loops of reduceRange and gradRange as they were) and in one (reduceGradRange).
func BenchmarkReduce(b *testing.B) {
	b.Run("TwoPass", func(b *testing.B) {
		tr := benchTrainer()
		for b.Loop() {
			for i := range tr.sizes {
				lo, hi := tr.offs[i], tr.offs[i+1]
				dst := tr.flat[lo:hi]
				copy(dst, tr.workers[0].flat[lo:hi])
				for k, v := range tr.workers[1].flat[lo:hi] {
					dst[k] += v
				}
				d := tr.grads[i].Value.Float32s()
				for k, v := range dst {
					d[k] = float32(v)
				}
			}
		}
	})
	b.Run("OnePass", func(b *testing.B) {
		tr := benchTrainer()
		for b.Loop() {
			tr.reduceGradRange(0, len(tr.sizes))
		}
	})
}
