package layers

import (
	"math"
	"slices"
	"testing"

	"gorgonia.org/tensor"
)

// The index ops that take their outputs from the arena without clearing them (gathers without zeros,
// scatters of permutations, reshapes, scatter-replace) must write every element: run on an arena whose
// recycled tensors hold NaN, each gives exactly what it gives on freshly allocated (zeroed) outputs, and the
// maps that need zeros (a gather with zeros, a scatter that adds or does not cover its input) still get them.
func TestIndexOpsWriteEveryElementOfRecycledOutputs(t *testing.T) {
	in := []int{2, 6}
	maps := map[string]*indexMap{
		"permutation":  newFlatMap("perm", in, []int{2, 6}, []int{5, 0, 3, 1, 4, 2, 11, 6, 9, 7, 10, 8}),
		"with zeros":   newAxisMap("zeros", in, 1, []int{3, -1, 0, 5}),
		"repeats":      newAxisMap("repeats", in, 1, []int{1, 1, 4, 0, 4}),
		"partial":      newAxisMap("partial", in, 1, []int{4, 2}),
		"axis permute": newAxisMap("axisperm", in, 1, []int{2, 0, 1, 5, 3, 4}),
	}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		for name, m := range maps {
			for _, adj := range []bool{false, true} {
				from := m.in
				if adj {
					from = m.out
				}
				x := tensor.New(tensor.WithShape(from...), tensor.Of(dt))
				for i := range x.Shape().TotalSize() {
					if dt == tensor.Float64 {
						x.Float64s()[i] = float64(i + 1)
					} else {
						x.Float32s()[i] = float32(i + 1)
					}
				}
				want, err := mapOp{m: m, adj: adj}.Do(x)
				if err != nil {
					t.Fatal(err)
				}
				ar := NewArena()
				for round := range 2 {
					ar.Reset()
					got, err := mapOp{m: m, adj: adj, ar: ar}.Do(x)
					if err != nil {
						t.Fatal(err)
					}
					if g, w := Float64s(got.(*tensor.Dense)), Float64s(want.(*tensor.Dense)); !slices.Equal(g, w) {
						t.Fatalf("%v %s adj=%v round %d: %v on a recycled output, want %v", dt, name, adj, round, g, w)
					}
					fillNaN(got.(*tensor.Dense)) // what the next round's recycled tensor holds
				}
			}
		}
	}
}

func fillNaN(t *tensor.Dense) {
	switch t.Dtype() {
	case tensor.Float64:
		for i := range t.Float64s() {
			t.Float64s()[i] = math.NaN()
		}
	case tensor.Float32:
		for i := range t.Float32s() {
			t.Float32s()[i] = float32(math.NaN())
		}
	}
}
