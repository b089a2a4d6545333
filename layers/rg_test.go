package layers

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

func TestLevelCounts(t *testing.T) {
	for _, tc := range []struct {
		L, k int
		want []int
	}{
		{16, 2, []int{192, 48, 12, 4}},   // NeuralRG L=16 (the level map in the Hierarchy doc)
		{32, 4, []int{768, 192, 48, 16}}, // RG-Flow 32×32, per channel (the level map in the Hierarchy doc)
		{4, 2, []int{12, 4}},
		{8, 2, []int{48, 12, 4}},
		{4, 4, []int{16}},
	} {
		h, err := NewHierarchy(tc.L, tc.k)
		if err != nil {
			t.Fatal(err)
		}
		if got := h.LevelCounts(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("L=%d k=%d: level counts %v, want %v", tc.L, tc.k, got, tc.want)
		}
	}
}

func TestHierarchyRejectsBadSizes(t *testing.T) {
	for _, tc := range []struct{ L, k int }{{6, 2}, {12, 4}, {0, 2}, {-8, 2}, {2, 2}, {2, 4}, {8, 3}, {8192, 2}} {
		if _, err := NewHierarchy(tc.L, tc.k); err == nil {
			t.Errorf("NewHierarchy(%d, %d) accepted", tc.L, tc.k)
		}
	}
}

// Every layer's blocks are disjoint, lie on the level's sublattice (multiples of 2^ℓ), and together cover
// the whole sublattice; this is what makes the layer's log-det a sum over blocks.
func TestBlocksPartitionTheSublattice(t *testing.T) {
	for _, k := range []int{2, 4} {
		for _, L := range []int{4, 8, 16, 32, 64} {
			if L < k {
				continue
			}
			h, _ := NewHierarchy(L, k)
			for l := 0; l < h.Levels(); l++ {
				d := h.Dilation(l)
				for _, dec := range []bool{false, true} {
					seen := map[int]bool{}
					for _, b := range h.Blocks(l, dec) {
						if len(b) != k*k {
							t.Fatalf("L=%d k=%d level %d: block of %d sites", L, k, l, len(b))
						}
						for _, s := range b {
							if seen[s] {
								t.Fatalf("L=%d k=%d level %d dec=%v: site %d in two blocks", L, k, l, dec, s)
							}
							seen[s] = true
							if (s/L)%d != 0 || (s%L)%d != 0 {
								t.Fatalf("L=%d k=%d level %d: site (%d,%d) off the sublattice", L, k, l, s/L, s%L)
							}
						}
					}
					if want := (L / d) * (L / d); len(seen) != want {
						t.Errorf("L=%d k=%d level %d dec=%v: %d sites covered, want %d", L, k, l, dec, len(seen), want)
					}
				}
			}
		}
	}
}

func TestSplitMergeLevels(t *testing.T) {
	h, _ := NewHierarchy(8, 2)
	rng := rand.New(rand.NewPCG(1, 2))
	z := make([]float64, 3*2*64)
	for i := range z {
		z[i] = rng.NormFloat64()
	}
	lv, err := h.SplitLevels(z, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	for l, c := range h.LevelCounts() {
		if len(lv[l]) != 3*2*c {
			t.Errorf("level %d: %d values, want %d", l, len(lv[l]), 3*2*c)
		}
	}
	back, err := h.MergeLevels(lv, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, z) {
		t.Error("MergeLevels(SplitLevels(z)) != z")
	}
	// The top level of an 8×8 k=2 hierarchy holds the sites whose coordinates are multiples of 4.
	if got, want := lv[2][:4], []float64{z[0], z[4], z[32], z[36]}; !reflect.DeepEqual(got, want) {
		t.Errorf("top level of sample 0 channel 0 = %v, want sites (0,0),(0,4),(4,0),(4,4) = %v", got, want)
	}
	if _, err := h.SplitLevels(z[:10], 3, 2); err == nil {
		t.Error("SplitLevels accepted a short slice")
	}
}
