package layers

import (
	"fmt"
	"testing"

	"gorgonia.org/tensor"
)

// blockIdx is the flat index list of every k×k block of a (B,C,L,L) field, rows b·nb + blk.
func blockIdx(B, C, L, k int) []int {
	nb := (L / k) * (L / k)
	var idx []int
	for b := 0; b < B; b++ {
		for blk := 0; blk < nb; blk++ {
			bi, bj := blk/(L/k), blk%(L/k)
			for c := 0; c < C; c++ {
				for di := 0; di < k; di++ {
					for dj := 0; dj < k; dj++ {
						idx = append(idx, ((b*C+c)*L+bi*k+di)*L+bj*k+dj)
					}
				}
			}
		}
	}
	return idx
}

func TestFlatMapCompacts(t *testing.T) {
	idx := blockIdx(8, 2, 8, 2)
	m := newFlatMap("t", []int{8, 2, 8, 8}, []int{8 * 16, 8}, idx)
	if m.outer != 8 || len(m.tab) != 128 || !m.injective || m.hasZero {
		t.Errorf("block gather map: outer %d, table %d, injective %v, zeros %v; want 8, 128, true, false", m.outer, len(m.tab), m.injective, m.hasZero)
	}
	idx[5], idx[6] = idx[6], idx[5] // breaks the batch periodicity only in batch entry 0
	if m := newFlatMap("t", []int{8, 2, 8, 8}, []int{8 * 16, 8}, idx); m.outer != 1 || len(m.tab) != len(idx) {
		t.Errorf("irregular map compacted: outer %d", m.outer)
	}
}

func TestAxisMapRuns(t *testing.T) {
	// A roll along a long last axis is stored as runs; along a short one element by element.
	if m := newAxisMap("r", []int{4, 64}, 1, rollTable(64, 3)); m.runs == nil || len(m.runs) != 2 {
		t.Errorf("roll of 64: runs %v", m.runs)
	}
	if m := newAxisMap("r", []int{4, 4}, 1, rollTable(4, 1)); m.runs != nil {
		t.Errorf("roll of 4 uses runs %v", m.runs)
	}
}

func rollTable(n, s int) []int {
	a := make([]int, n)
	for i := range a {
		a[i] = (i - s + n) % n
	}
	return a
}

// BenchmarkGatherKernel times the gather loop alone (no allocation) for the block layer's case, with the
// compact per-batch table against a full one-entry-per-element table, to justify the compaction.
func BenchmarkGatherKernel(b *testing.B) {
	const B, C, L, k = 256, 1, 16, 2
	idx := blockIdx(B, C, L, k)
	in, out := []int{B, C, L, L}, []int{len(idx) / 4, 4}
	maps := map[string]*indexMap{
		"compact": newFlatMap("g", in, out, idx),
		"full":    newIndexMap("g", in, out, 1, idx),
	}
	src := make([]float32, len(idx))
	dst := make([]float32, len(idx))
	for _, name := range []string{"compact", "full"} {
		m := maps[name]
		b.Run(fmt.Sprintf("%s/gather", name), func(b *testing.B) {
			b.SetBytes(int64(len(idx) * 4))
			for i := 0; i < b.N; i++ {
				gatherInto(dst, src, m)
			}
		})
		b.Run(fmt.Sprintf("%s/scatter", name), func(b *testing.B) {
			b.SetBytes(int64(len(idx) * 4))
			for i := 0; i < b.N; i++ {
				scatterInto(dst, src, m, false)
			}
		})
	}
	b.Run("memmove", func(b *testing.B) {
		b.SetBytes(int64(len(idx) * 4))
		for i := 0; i < b.N; i++ {
			copy(dst, src)
		}
	})
}

func TestDoAllocatesOnlyTheOutput(t *testing.T) {
	// Beyond the output tensor itself, the index ops allocate nothing per call.
	const B, C, L, k = 4, 1, 8, 2
	idx := blockIdx(B, C, L, k)
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		x := NewDense(dt, []int{B, C, L, L}, nil)
		y := NewDense(dt, []int{len(idx) / 4, 4}, nil)
		base := testing.AllocsPerRun(50, func() { _ = newValue(dt, []int{len(idx) / 4, 4}) })
		m := newFlatMap("Gather", []int{B, C, L, L}, []int{len(idx) / 4, 4}, idx)
		g := testing.AllocsPerRun(50, func() { _, _ = mapOp{m: m}.Do(x) })
		s := testing.AllocsPerRun(50, func() { _, _ = mapOp{m: m, adj: true}.Do(y) })
		mask := make([]int, B*C*L*L)
		sr := scatterReplaceOp{m: m, mask: newFlatMap("M", []int{B, C, L, L}, []int{B, C, L, L}, mask)}
		r := testing.AllocsPerRun(50, func() { _, _ = sr.Do(x, y) })
		t.Logf("%v: output alone %v allocs; gather %v, scatter %v, scatterReplace %v", dt, base, g, s, r)
		if g > base || s > base || r > base {
			t.Errorf("%v: Do allocates beyond its output: gather %v, scatter %v, scatterReplace %v, output alone %v", dt, g, s, r, base)
		}
	}
}
