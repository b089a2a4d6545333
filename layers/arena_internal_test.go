package layers

import (
	"testing"

	"gorgonia.org/tensor"
)

// dense hands out, after a Reset, the very tensors of the last round (same dtype and shape), zeroed; other
// shapes and dtypes get their own; tensors handed out since the last Reset are never handed out twice; a
// nil arena allocates.
func TestArenaDense(t *testing.T) {
	a := NewArena()
	x := a.dense(tensor.Float64, []int{2, 3})
	y := a.dense(tensor.Float64, []int{2, 3})
	if x == y {
		t.Fatal("two tensors of one round share storage")
	}
	for i := range x.Float64s() {
		x.Float64s()[i] = float64(i + 1)
	}
	z := a.dense(tensor.Float64, []int{3, 2})
	w := a.dense(tensor.Float32, []int{2, 3})
	a.Reset()
	seen := map[*tensor.Dense]bool{}
	for range 2 {
		v := a.dense(tensor.Float64, []int{2, 3})
		if v != x && v != y {
			t.Fatal("a (2,3) float64 tensor after Reset is not one of the last round's")
		}
		if seen[v] {
			t.Fatal("the same tensor handed out twice in one round")
		}
		seen[v] = true
		for _, e := range v.Float64s() {
			if e != 0 {
				t.Fatalf("a recycled tensor is not zeroed: %v", v.Float64s())
			}
		}
		if !v.Shape().Eq(tensor.Shape{2, 3}) || v.Dtype() != tensor.Float64 {
			t.Fatalf("recycled tensor %v %v", v.Dtype(), v.Shape())
		}
	}
	if v := a.dense(tensor.Float64, []int{2, 3}); v == x || v == y {
		t.Fatal("a third (2,3) tensor in one round reuses one already handed out")
	}
	if v := a.dense(tensor.Float64, []int{3, 2}); v != z {
		t.Error("the (3,2) tensor was not recycled")
	}
	if v := a.dense(tensor.Float32, []int{2, 3}); v != w || v.Dtype() != tensor.Float32 {
		t.Error("the float32 tensor was not recycled as float32")
	}
	if h, n := a.Stats(); h != 9 || n != 5 {
		t.Errorf("stats: %d handed out, %d allocated; want 9, 5", h, n)
	}
	var none *Arena
	if v := none.dense(tensor.Float32, []int{4}); v == nil || v.Shape()[0] != 4 {
		t.Error("a nil arena does not allocate")
	}
}
