package layers

import (
	"testing"

	"gorgonia.org/tensor"
)

// After a Reset, a round that asks for the same dtypes and shapes in the same order gets the very tensors of
// the last round, zeroed; where the order changes, the changed places get new tensors; no tensor is handed
// out twice in one round; a nil arena allocates.
func TestArenaDense(t *testing.T) {
	a := NewArena()
	type req struct {
		dt    tensor.Dtype
		shape []int
	}
	round1 := []req{{tensor.Float64, []int{2, 3}}, {tensor.Float64, []int{2, 3}}, {tensor.Float64, []int{3, 2}}, {tensor.Float32, []int{2, 3}}}
	var first []*tensor.Dense
	for _, r := range round1 {
		x := a.dense(r.dt, r.shape)
		for i := range x.Shape().TotalSize() { // leave something behind to be cleared
			if r.dt == tensor.Float64 {
				x.Float64s()[i] = float64(i + 1)
			} else {
				x.Float32s()[i] = float32(i + 1)
			}
		}
		first = append(first, x)
	}
	if first[0] == first[1] {
		t.Fatal("two tensors of one round share storage")
	}
	a.Reset()
	for i, r := range round1 {
		v := a.dense(r.dt, r.shape)
		if v != first[i] {
			t.Fatalf("request %d of the same sequence did not get the last round's tensor", i)
		}
		if !v.Shape().Eq(tensor.Shape(r.shape)) || v.Dtype() != r.dt {
			t.Fatalf("recycled tensor %v %v, asked for %v %v", v.Dtype(), v.Shape(), r.dt, r.shape)
		}
		for _, e := range layersFloats(v) {
			if e != 0 {
				t.Fatalf("a recycled tensor is not zeroed: %v", layersFloats(v))
			}
		}
	}
	if v := a.dense(tensor.Float64, []int{2, 3}); v == first[0] || v == first[1] {
		t.Fatal("a fifth request in one round reuses a tensor already handed out")
	}
	a.Reset()
	// A changed sequence: the second place now asks for (3, 2).
	v0, v1 := a.dense(tensor.Float64, []int{2, 3}), a.dense(tensor.Float64, []int{3, 2})
	if v0 != first[0] || v1 == first[1] || v1 == first[2] || !v1.Shape().Eq(tensor.Shape{3, 2}) {
		t.Fatal("a changed place got a tensor of another shape, or one already out")
	}
	if h, n := a.Stats(); h != 11 || n != 6 {
		t.Errorf("stats: %d handed out, %d allocated; want 11, 6", h, n)
	}
	var none *Arena
	if v := none.dense(tensor.Float32, []int{4}); v == nil || v.Shape()[0] != 4 {
		t.Error("a nil arena does not allocate")
	}
}

func layersFloats(t *tensor.Dense) []float64 { return Float64s(t) }
