// Package comm is the communicator the data-parallel Trainer reduces gradients through: a rank in a group
// of Size() processes (or goroutines) that can sum vectors element-wise across the group, broadcast from one
// rank and wait for all.
//
// Implementations:
//   - Single: a group of one (every operation is the identity); what a plain process uses.
//   - NewGroup(n): n ranks inside one process, one goroutine each. The sum is taken in the fixed order
//     rank 0 + rank 1 + … + rank n−1 on every rank, so a result never depends on scheduling, and every rank
//     gets the same bits.
//   - MPI (build tag mpi for Open MPI, mpich for MPICH): the processes of MPI_COMM_WORLD, started by mpirun
//     or srun, through cogentcore.org/lab/base/mpi. Without either tag MPI() is a group of one, the module
//     links no C library, and Available reports false. MPI's own all-reduce decides its summation order (a
//     ring or tree); for a fixed process count and MPI configuration it is deterministic in practice but it
//     is not the rank order above, so results agree with a single process to rounding, not to the bit.
//
// All collective operations must be called by every rank of the group in the same order, with buffers of
// the same length; a rank that stops calling them blocks the others.
package comm

import (
	"fmt"
	"sync"
)

// Comm is one rank of a communicating group.
type Comm interface {
	// Rank is this member's index, 0 ≤ Rank < Size.
	Rank() int
	// Size is the number of members.
	Size() int
	// AllReduceSum64 replaces buf, on every rank, by the element-wise sum of every rank's buf.
	AllReduceSum64(buf []float64) error
	// AllReduceSum32 is AllReduceSum64 for float32.
	AllReduceSum32(buf []float32) error
	// Broadcast64 copies root's buf into every rank's buf.
	Broadcast64(root int, buf []float64) error
	// Broadcast32 is Broadcast64 for float32.
	Broadcast32(root int, buf []float32) error
	// Barrier returns once every rank has called it.
	Barrier() error
}

// Single returns the group of one: all operations leave their buffers as they are.
func Single() Comm { return single{} }

type single struct{}

func (single) Rank() int                               { return 0 }
func (single) Size() int                               { return 1 }
func (single) AllReduceSum64([]float64) error          { return nil }
func (single) AllReduceSum32([]float32) error          { return nil }
func (single) Broadcast64(root int, _ []float64) error { return checkRoot(root, 1) }
func (single) Broadcast32(root int, _ []float32) error { return checkRoot(root, 1) }
func (single) Barrier() error                          { return nil }

func checkRoot(root, size int) error {
	if root < 0 || root >= size {
		return fmt.Errorf("comm: broadcast from rank %d in a group of %d", root, size)
	}
	return nil
}

// NewGroup returns the n ranks of an in-process group; give each to its own goroutine. n ≥ 1.
func NewGroup(n int) ([]Comm, error) {
	if n < 1 {
		return nil, fmt.Errorf("comm: a group of %d ranks, want ≥ 1", n)
	}
	g := &group{n: n, slots: make([]any, n)}
	g.cond = sync.NewCond(&g.mu)
	out := make([]Comm, n)
	for r := range out {
		out[r] = &member{g: g, rank: r}
	}
	return out, nil
}

// group is a reusable rendezvous: every rank deposits its buffer, the last to arrive combines them (in rank
// order) and wakes the others, who copy the result out; a second phase makes sure everyone has copied
// before the slots are reused.
type group struct {
	n     int
	mu    sync.Mutex
	cond  *sync.Cond
	slots []any // each rank's buffer for the operation in progress
	kind  string
	in    int    // ranks arrived in the current operation
	out   int    // ranks that have finished reading its result
	gen   uint64 // completed operations
	err   error  // the combination's error (mismatched calls), seen by every rank
}

type member struct {
	g    *group
	rank int
}

func (m *member) Rank() int { return m.rank }
func (m *member) Size() int { return m.g.n }

// collective deposits buf under kind, lets the last rank to arrive run combine over all slots (in rank
// order), and returns after every rank has done the same; combine's error reaches every rank.
func (m *member) collective(kind string, buf any, combine func(slots []any) error) error {
	g := m.g
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.out > 0 { // the previous operation's readers have not all left yet
		g.cond.Wait()
	}
	if g.in == 0 {
		g.kind, g.err = kind, nil
	} else if g.kind != kind && g.err == nil {
		g.err = fmt.Errorf("comm: rank %d called %s while another rank called %s", m.rank, kind, g.kind)
	}
	g.slots[m.rank] = buf
	g.in++
	gen := g.gen
	if g.in == g.n {
		if g.err == nil {
			g.err = combine(g.slots)
		}
		g.in, g.out = 0, g.n
		g.gen++
		g.cond.Broadcast()
	} else {
		for g.gen == gen {
			g.cond.Wait()
		}
	}
	err := g.err
	g.slots[m.rank] = nil
	g.out--
	if g.out == 0 {
		g.cond.Broadcast()
	}
	return err
}

func sameLen[T any](slots []any) ([][]T, error) {
	bufs := make([][]T, len(slots))
	for r, s := range slots {
		b, ok := s.([]T)
		if !ok {
			return nil, fmt.Errorf("comm: rank %d passed a %T, rank 0 a %T", r, s, slots[0])
		}
		if len(b) != len(bufs[0]) && r > 0 {
			return nil, fmt.Errorf("comm: rank %d passed %d values, rank 0 passed %d", r, len(b), len(bufs[0]))
		}
		bufs[r] = b
	}
	return bufs, nil
}

// allReduce sums in rank order into a fresh vector and copies it to every rank's buffer.
func allReduce[T float32 | float64](slots []any) error {
	bufs, err := sameLen[T](slots)
	if err != nil {
		return err
	}
	sum := append([]T(nil), bufs[0]...)
	for _, b := range bufs[1:] {
		for i, v := range b {
			sum[i] += v
		}
	}
	for _, b := range bufs {
		copy(b, sum)
	}
	return nil
}

func broadcast[T float32 | float64](root int) func([]any) error {
	return func(slots []any) error {
		if err := checkRoot(root, len(slots)); err != nil {
			return err
		}
		bufs, err := sameLen[T](slots)
		if err != nil {
			return err
		}
		for r, b := range bufs {
			if r != root {
				copy(b, bufs[root])
			}
		}
		return nil
	}
}

func (m *member) AllReduceSum64(buf []float64) error {
	return m.collective("AllReduceSum64", buf, allReduce[float64])
}

func (m *member) AllReduceSum32(buf []float32) error {
	return m.collective("AllReduceSum32", buf, allReduce[float32])
}

func (m *member) Broadcast64(root int, buf []float64) error {
	return m.collective(fmt.Sprintf("Broadcast64(root %d)", root), buf, broadcast[float64](root))
}

func (m *member) Broadcast32(root int, buf []float32) error {
	return m.collective(fmt.Sprintf("Broadcast32(root %d)", root), buf, broadcast[float32](root))
}

func (m *member) Barrier() error {
	return m.collective("Barrier", nil, func([]any) error { return nil })
}
