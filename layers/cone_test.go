package layers

import (
	"slices"
	"testing"
)

// counts is the number of sites per level of a cone.
func counts(c [][]int) []int {
	n := make([]int, len(c))
	for l, s := range c {
		n[l] = len(s)
	}
	return n
}

// TestConeHandDerived checks single-site cones against values derived by hand. A level-ℓ block is a
// product of two 1-D blocks on the coordinates that are multiples of 2^ℓ, so after the level-0 layers the
// cone is a square R₀×R₀, and each higher level adds the square of the 1-D set its blocks reach.
//
// k=2, L=8 (3 levels), site (3,3). Level 0: disentangler {2,3}; decimator {1,2},{3,4} → R₀ = {1,2,3,4}:
// 16 sites, of which the 4 in {2,4}² are not level 0 → 12. Level 1: the disentangler blocks {0,2},{4,6}
// meet {2,4} → {0,2,4,6}²: 16 sites less the 4 of level 2 ({0,4}²) → 12. Level 2: {0,4}² → 4.
//
// k=4, L=16 (3 levels), site (7,7). Level 0: disentangler {4…7}; decimator {2…5},{6…9} → R₀ = {2…9}:
// 64 sites less the 16 even ones → 48. Level 1: blocks {0,2,4,6},{8,10,12,14} meet {2,4,6,8} → all 8
// even coordinates: 64 sites less the 16 of level 2 → 48. Level 2: all 16.
//
// k=4, L=32 (4 levels), site (7,7). Level 0 as above → 48. Level 1 (stride 8): disentangler blocks reach
// the even coordinates 0…14, the decimator's {28,30,0,2} and {12,14,16,18} add 16,18,28,30: 12 coordinates,
// 144 sites less the 36 in {0,4,8,12,16,28}² → 108. Level 2 (stride 16) reaches all 8 multiples of 4:
// 64 less the 16 multiples of 8 → 48. Level 3: 16.
func TestConeHandDerived(t *testing.T) {
	for _, tc := range []struct {
		L, k, i, j int
		want       []int
	}{
		{8, 2, 3, 3, []int{12, 12, 4}},
		{16, 4, 7, 7, []int{48, 48, 16}},
		{32, 4, 7, 7, []int{48, 108, 48, 16}},
	} {
		h, err := NewHierarchy(tc.L, tc.k)
		if err != nil {
			t.Fatal(err)
		}
		c, err := h.Cone([]int{tc.i*tc.L + tc.j}, h.Sequence(1))
		if err != nil {
			t.Fatal(err)
		}
		if got := counts(c); !slices.Equal(got, tc.want) {
			t.Errorf("L=%d k=%d site (%d,%d): cone counts %v, want %v", tc.L, tc.k, tc.i, tc.j, got, tc.want)
		}
	}
}

// TestInfluenceWidths checks the receptive-field widths of k=4 latents by hand (1-D, generation order =
// inference order reversed). Level 0, coordinate 1: decimator block {−2…1}, then disentangler blocks
// {−4…−1},{0…3} → 8. Level 1, coordinate 2: ℓ1 decimator {−4,−2,0,2}; ℓ1 disentangler
// {−8,−6,−4,−2},{0,2,4,6} → −8…6; ℓ0 decimator blocks {4m+2…4m+5} covering it → −10…9; ℓ0 disentangler
// → −12…11: 24. Level 2 follows the same doubling: 56 (= 2·24 + 8). At L=128 nothing wraps around.
func TestInfluenceWidths(t *testing.T) {
	h, err := NewHierarchy(128, 4)
	if err != nil {
		t.Fatal(err)
	}
	seq := h.Sequence(1)
	for _, tc := range []struct{ coord, level, width int }{{1, 0, 8}, {2, 1, 24}, {4, 2, 56}} {
		site := tc.coord*h.L + tc.coord
		if got := h.Level(tc.coord, tc.coord); got != tc.level {
			t.Fatalf("site (%d,%d) has level %d, want %d", tc.coord, tc.coord, got, tc.level)
		}
		inf, err := h.Influence(site, seq)
		if err != nil {
			t.Fatal(err)
		}
		r, c := h.Extent(inf)
		if r != tc.width || c != tc.width || len(inf) != tc.width*tc.width {
			t.Errorf("level %d: influence %d×%d (%d sites), want %d×%d", tc.level, r, c, len(inf), tc.width, tc.width)
		}
	}
}

// TestConeInfluenceDual checks that latent z is in the cone of site x exactly when x is in z's influence
// (both computed from the same blocks in opposite orders), including repeat=2 stacks.
func TestConeInfluenceDual(t *testing.T) {
	for _, tc := range []struct{ L, k, repeat int }{{8, 2, 1}, {8, 4, 2}, {16, 2, 2}} {
		h, _ := NewHierarchy(tc.L, tc.k)
		seq := h.Sequence(tc.repeat)
		lm := h.LevelMap()
		for x := 0; x < h.L*h.L; x += 5 {
			cone, err := h.Cone([]int{x}, seq)
			if err != nil {
				t.Fatal(err)
			}
			for z := 0; z < h.L*h.L; z++ {
				inf, _ := h.Influence(z, seq)
				_, inInf := slices.BinarySearch(inf, x)
				_, inCone := slices.BinarySearch(cone[lm[z]], z)
				if inInf != inCone {
					t.Fatalf("L=%d k=%d repeat=%d: x=%d z=%d: in influence %v, in cone %v", tc.L, tc.k, tc.repeat, x, z, inInf, inCone)
				}
			}
		}
	}
}

// TestConeGrowth checks O(1) latents per level and O(log L) in all for a single site: the per-level counts
// of level ℓ do not change once L is large enough for the cone not to wrap, and each doubling of L adds one
// level with a bounded number of latents.
func TestConeGrowth(t *testing.T) {
	for _, k := range []int{2, 4} {
		var prev []int
		var totals []int
		for L := 64; L <= 1024; L *= 2 {
			h, _ := NewHierarchy(L, k)
			c, err := h.Cone([]int{(L/2+1)*L + L/2 + 1}, h.Sequence(1))
			if err != nil {
				t.Fatal(err)
			}
			n := counts(c)
			total := 0
			for _, v := range n {
				total += v
			}
			totals = append(totals, total)
			if prev != nil {
				// Low levels are unchanged: a cone of a site does not see the lattice size.
				for l := 0; l < len(prev)-2; l++ {
					if n[l] != prev[l] {
						t.Errorf("k=%d L=%d: level %d has %d latents, at L/2 it had %d", k, L, l, n[l], prev[l])
					}
				}
			}
			for l, v := range n {
				if v > 20*k*k { // bounded per level: a few blocks of k² sites per layer
					t.Errorf("k=%d L=%d: level %d holds %d latents, want O(1)", k, L, l, v)
				}
			}
			prev = n
		}
		// Linear in log L: equal increments per doubling (up to the top levels, which are truncated).
		for i := 2; i < len(totals); i++ {
			d1, d0 := totals[i]-totals[i-1], totals[i-1]-totals[i-2]
			if d1 != d0 {
				t.Errorf("k=%d: totals %v do not grow by a constant per doubling of L", k, totals)
				break
			}
		}
	}
}

func TestConeErrors(t *testing.T) {
	h, _ := NewHierarchy(8, 2)
	if _, err := h.Cone([]int{64}, h.Sequence(1)); err == nil {
		t.Error("site 64 of an 8×8 lattice accepted")
	}
	if _, err := h.Influence(0, []LayerSpec{{Level: 3}}); err == nil {
		t.Error("level 3 of a 3-level hierarchy accepted")
	}
}

func TestExtent(t *testing.T) {
	h, _ := NewHierarchy(8, 2)
	// Columns 7 and 0 are adjacent on the cycle: width 2; rows 1 and 5: the shortest arc is 5.
	if r, c := h.Extent([]int{1*8 + 7, 5*8 + 0}); r != 5 || c != 2 {
		t.Errorf("Extent = %d×%d, want 5×2", r, c)
	}
}
