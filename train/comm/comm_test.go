package comm

import (
	"math/rand/v2"
	"sync"
	"testing"
)

// runGroup runs f on every rank of an in-process group of n and returns the ranks' errors.
func runGroup(t *testing.T, n int, f func(c Comm) error) []error {
	t.Helper()
	cs, err := NewGroup(n)
	if err != nil {
		t.Fatal(err)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r, c := range cs {
		wg.Go(func() { errs[r] = f(c) })
	}
	wg.Wait()
	return errs
}

// TestGroupAllReduceRankOrder: every rank gets the sum taken in rank order, bit for bit, over many rounds
// (so the rendezvous is reused), in both dtypes; the expected sums are computed here from the inputs.
func TestGroupAllReduceRankOrder(t *testing.T) {
	const n, rounds, m = 4, 50, 7
	inputs := make([][][]float64, rounds) // round, rank, element
	rng := rand.New(rand.NewPCG(1, 2))
	for k := range inputs {
		inputs[k] = make([][]float64, n)
		for r := range inputs[k] {
			inputs[k][r] = make([]float64, m)
			for i := range inputs[k][r] {
				inputs[k][r][i] = rng.NormFloat64() * 1e3 // large spread: a different order changes the bits
			}
		}
	}
	got64 := make([][][]float64, n)
	got32 := make([][][]float32, n)
	errs := runGroup(t, n, func(c Comm) error {
		r := c.Rank()
		for k := range rounds {
			b := append([]float64(nil), inputs[k][r]...)
			if err := c.AllReduceSum64(b); err != nil {
				return err
			}
			got64[r] = append(got64[r], b)
			b32 := make([]float32, m)
			for i, v := range inputs[k][r] {
				b32[i] = float32(v)
			}
			if err := c.AllReduceSum32(b32); err != nil {
				return err
			}
			got32[r] = append(got32[r], b32)
		}
		return nil
	})
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	for k := range rounds {
		for i := range m {
			var want float64
			var want32 float32
			for r := range n {
				want += inputs[k][r][i]
				want32 += float32(inputs[k][r][i])
			}
			for r := range n {
				if got64[r][k][i] != want {
					t.Fatalf("round %d element %d rank %d: %v, want the rank-order sum %v", k, i, r, got64[r][k][i], want)
				}
				if got32[r][k][i] != want32 {
					t.Fatalf("float32 round %d element %d rank %d: %v, want %v", k, i, r, got32[r][k][i], want32)
				}
			}
		}
	}
}

func TestGroupBroadcastBarrier(t *testing.T) {
	const n = 3
	out := make([][]float64, n)
	errs := runGroup(t, n, func(c Comm) error {
		b := []float64{float64(c.Rank()), 10 + float64(c.Rank())}
		if err := c.Broadcast64(2, b); err != nil {
			return err
		}
		out[c.Rank()] = b
		b32 := []float32{float32(c.Rank())}
		if err := c.Broadcast32(1, b32); err != nil {
			return err
		}
		if b32[0] != 1 {
			t.Errorf("rank %d: broadcast32 from rank 1 gave %v", c.Rank(), b32[0])
		}
		return c.Barrier()
	})
	for r := range n {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v", r, errs[r])
		}
		if out[r][0] != 2 || out[r][1] != 12 {
			t.Errorf("rank %d: broadcast from rank 2 gave %v, want [2 12]", r, out[r])
		}
	}
}

// Mismatched calls are reported to every rank instead of producing a wrong sum.
func TestGroupMismatch(t *testing.T) {
	errs := runGroup(t, 2, func(c Comm) error {
		return c.AllReduceSum64(make([]float64, 2+c.Rank()))
	})
	for r, err := range errs {
		if err == nil {
			t.Errorf("rank %d: lengths 2 and 3 gave no error", r)
		}
	}
	errs = runGroup(t, 2, func(c Comm) error {
		if c.Rank() == 0 {
			return c.Barrier()
		}
		return c.AllReduceSum64(make([]float64, 1))
	})
	for r, err := range errs {
		if err == nil {
			t.Errorf("rank %d: Barrier against AllReduceSum64 gave no error", r)
		}
	}
	if _, err := NewGroup(0); err == nil {
		t.Error("NewGroup(0) gave no error")
	}
	if err := Single().Broadcast64(1, nil); err == nil {
		t.Error("Single().Broadcast64 from rank 1 gave no error")
	}
}

func TestMPIWithoutTag(t *testing.T) {
	if Available {
		t.Skip("built with MPI")
	}
	t.Setenv("OMPI_COMM_WORLD_SIZE", "2")
	if _, err := MPI(); err == nil {
		t.Error("MPI() under a 2-process launcher in a build without MPI gave no error")
	}
	t.Setenv("OMPI_COMM_WORLD_SIZE", "1")
	c, err := MPI()
	if err != nil || c.Size() != 1 {
		t.Errorf("MPI() alone: size %v, err %v; want the group of one", c, err)
	}
}
