package flowmc

import (
	"math/rand/v2"
	"slices"
	"testing"

	"rgflow/datasets/lattice"
)

// TestDrawWorkersSameDraws: parallel drawing gives the same draws, bit for bit, on 1, 2 and 3 workers (a
// last chunk shorter than the batch included, symmetrised or not), and chunk k is exactly a single-stream
// Draw from the PCG seeded (s, k) with s the first Uint64 of the caller's rng, recomputed here by hand.
func TestDrawWorkersSameDraws(t *testing.T) {
	flow, store := testFlow(t, 4, 1, 0.2, 3)
	act, err := lattice.NewPhi4(4, -1, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	const n, batch = 11, 4
	for _, sym := range []bool{false, true} {
		draw := func(workers int) *Draws {
			d, err := Draw(act, flow, store, n, Options{Batch: batch, Workers: workers, Symmetrize: sym}, rand.New(rand.NewPCG(5, 6)))
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		one := draw(1)
		for _, w := range []int{2, 3, 8} {
			d := draw(w)
			if !slices.Equal(d.X, one.X) || !slices.Equal(d.Z, one.Z) || !slices.Equal(d.LogQ, one.LogQ) || !slices.Equal(d.Action, one.Action) {
				t.Errorf("symmetrize=%v: %d workers draw differently from 1", sym, w)
			}
		}
		base := rand.New(rand.NewPCG(5, 6)).Uint64()
		for k := range 3 {
			m := min(batch, n-k*batch)
			ref, err := Draw(act, flow, store, m, Options{Batch: batch, Symmetrize: sym}, rand.New(rand.NewPCG(base, uint64(k))))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ref.X, one.X[k*batch*one.Dim:(k*batch+m)*one.Dim]) || !slices.Equal(ref.LogQ, one.LogQ[k*batch:k*batch+m]) {
				t.Errorf("symmetrize=%v: chunk %d is not the draw of its own stream", sym, k)
			}
		}
	}
	if _, err := Draw(act, flow, store, n, Options{Workers: -1}, rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Error("Workers = -1 gave no error")
	}
}
