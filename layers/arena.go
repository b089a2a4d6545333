package layers

import (
	"slices"
	"sync"

	"gorgonia.org/tensor"
)

// Arena recycles the output tensors of the kit's ops from one run of a machine to the next.
//
// Gorgonia's tape machine lets every op allocate its output on every run and drops the registers on Reset,
// so a training step allocates all of its intermediates afresh and the garbage collector frees them again
// (with several workers in one process, their collections compete for the same cores). An op built with an
// arena (see Scope.SetArena) draws its output from the arena instead: the tensor handed out at the same
// place in the previous round (between two Resets), zeroed, when dtype and shape match, or a new one. Reset
// takes back everything handed out since the previous Reset, at once.
//
// That is only safe when no value computed in one run is read after the owner's next Reset: the owner
// (a training worker) calls Reset just before it runs its machine again, after it has copied out the loss,
// gradients and metrics of the previous run (values read through G.Read are copies and are not affected).
// An arena serves one machine at a time; its methods are safe for concurrent use, but two machines sharing
// one arena must not run at once. A nil *Arena is valid and allocates every tensor afresh.
type Arena struct {
	mu    sync.Mutex
	slots []*tensor.Dense // the tensors handed out, in the order asked for, this round or the last
	next  int             // how many slots this round has handed out
	news  int             // tensors allocated (not reused) since NewArena
	gets  int             // tensors handed out since NewArena
}

// NewArena returns an empty arena.
func NewArena() *Arena { return &Arena{} }

// Reset makes every tensor handed out since the last Reset available again. Values from before the Reset
// must not be read afterwards.
func (a *Arena) Reset() {
	if a == nil {
		return
	}
	a.mu.Lock()
	a.next = 0
	a.mu.Unlock()
}

// Stats reports how many tensors the arena has handed out in all and how many of those it had to allocate.
func (a *Arena) Stats() (handed, allocated int) {
	if a == nil {
		return 0, 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.gets, a.news
}

// dense returns a zeroed tensor of dtype dt and the given (non-empty) shape. A machine asks for its outputs
// in the same order on every run, so the arena replays the last round: the k-th request of a round gets the
// k-th tensor of the previous round when dtype and shape match (and no later op has turned it into a view
// or reshaped it in place), and a new tensor, which takes that place from then on, otherwise. No tensor is
// handed out twice in one round. A nil arena allocates.
func (a *Arena) dense(dt tensor.Dtype, shape []int) *tensor.Dense { return a.take(dt, shape, true) }

// denseDirty is dense for ops that write every element of their output: a recycled tensor keeps the values
// of its last use (not cleared); a new one is zero.
func (a *Arena) denseDirty(dt tensor.Dtype, shape []int) *tensor.Dense {
	return a.take(dt, shape, false)
}

func (a *Arena) take(dt tensor.Dtype, shape []int, zero bool) *tensor.Dense {
	if a == nil {
		return tensor.New(tensor.WithShape(shape...), tensor.Of(dt))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gets++
	if a.next < len(a.slots) {
		t := a.slots[a.next]
		if t.Dtype() == dt && !t.IsView() && slices.Equal(t.Shape(), shape) && t.DataSize() == t.Shape().TotalSize() {
			a.next++
			switch {
			case !zero:
			case dt == tensor.Float32:
				clear(t.Float32s())
			case dt == tensor.Float64:
				clear(t.Float64s())
			default:
				t.Zero()
			}
			return t
		}
	}
	t := tensor.New(tensor.WithShape(shape...), tensor.Of(dt))
	a.news++
	if a.next < len(a.slots) {
		a.slots[a.next] = t
	} else {
		a.slots = append(a.slots, t)
	}
	a.next++
	return t
}
