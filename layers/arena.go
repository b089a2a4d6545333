package layers

import (
	"sync"

	"gorgonia.org/tensor"
)

// Arena recycles the output tensors of the kit's ops from one run of a machine to the next.
//
// Gorgonia's tape machine lets every op allocate its output on every run and drops the registers on Reset,
// so a training step allocates all of its intermediates afresh and the garbage collector frees them again
// (with several workers in one process, their collections compete for the same cores). An op built with an
// arena (see Scope.SetArena) draws its output from the arena instead: a tensor of the same dtype and shape
// handed out before the last Reset, zeroed, or a new one. Reset takes back everything handed out since
// the previous Reset, at once.
//
// That is only safe when no value computed in one run is read after the owner's next Reset: the owner
// (a training worker) calls Reset just before it runs its machine again, after it has copied out the loss,
// gradients and metrics of the previous run (values read through G.Read are copies and are not affected).
// An arena serves one machine at a time; its methods are safe for concurrent use, but two machines sharing
// one arena must not run at once. A nil *Arena is valid and allocates every tensor afresh.
type Arena struct {
	mu   sync.Mutex
	free map[arenaKey][]*tensor.Dense
	used []*tensor.Dense
	news int // tensors allocated (not reused) since NewArena
	gets int // tensors handed out since NewArena
}

// arenaKey identifies interchangeable tensors: same dtype, same shape (up to arenaDims axes).
type arenaKey struct {
	dt    tensor.Dtype
	nd    int
	shape [arenaDims]int
}

const arenaDims = 6

// NewArena returns an empty arena.
func NewArena() *Arena { return &Arena{free: map[arenaKey][]*tensor.Dense{}} }

// Reset makes every tensor handed out since the last Reset available again. Values from before the Reset
// must not be read afterwards.
func (a *Arena) Reset() {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.used {
		// A tensor that a later op turned into a view or reshaped in place is dropped (or filed under its
		// new shape), never handed out with a layout the kit's ops don't expect.
		if t.IsView() || t.Shape().TotalSize() != t.DataSize() {
			continue
		}
		k, _ := keyOf(t.Dtype(), t.Shape())
		a.free[k] = append(a.free[k], t)
	}
	clear(a.used)
	a.used = a.used[:0]
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

func keyOf(dt tensor.Dtype, shape []int) (arenaKey, bool) {
	k := arenaKey{dt: dt, nd: len(shape)}
	if len(shape) > arenaDims {
		return k, false
	}
	copy(k.shape[:], shape)
	return k, true
}

// dense returns a zeroed tensor of dtype dt and the given (non-empty) shape: a recycled one when the arena
// has one free, else a new one (also when a is nil).
func (a *Arena) dense(dt tensor.Dtype, shape []int) *tensor.Dense {
	if a == nil {
		return tensor.New(tensor.WithShape(shape...), tensor.Of(dt))
	}
	k, ok := keyOf(dt, shape)
	if !ok {
		return tensor.New(tensor.WithShape(shape...), tensor.Of(dt))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gets++
	var t *tensor.Dense
	if fl := a.free[k]; len(fl) > 0 {
		t = fl[len(fl)-1]
		fl[len(fl)-1] = nil
		a.free[k] = fl[:len(fl)-1]
		switch dt {
		case tensor.Float32:
			clear(t.Float32s())
		case tensor.Float64:
			clear(t.Float64s())
		default:
			t.Zero()
		}
	} else {
		t = tensor.New(tensor.WithShape(shape...), tensor.Of(dt))
		a.news++
	}
	a.used = append(a.used, t)
	return t
}
