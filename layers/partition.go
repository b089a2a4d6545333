package layers

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// A Store has two partitions besides its ordinary (trained) parameters:
//
//   - Frozen parameters are parameters like any other (Param, Get, Names, NumParams, checkpoints list them),
//     bound into graphs and read there, but a Trainer takes no gradient with respect to them, keeps no
//     optimiser state for them and never changes them. Typical use: a trained flow inside a latent-space
//     optimisation, where only the latents are trained.
//   - Buffers are named tensors of model state that is not trained (running statistics, counters, fixed
//     tables): Scope.Buffer binds them into a graph as inputs that are never differentiated, whoever owns
//     them (an objective, a hook) updates them on the host, and checkpoints save and restore them as
//     "buffers/<name>". Buffer and parameter names share one name space: a name is one or the other.

// partition holds a Store's frozen rules and buffers.
type partition struct {
	frozen   map[string]bool // exact names, and prefixes ending in "/"
	buffers  map[string]*tensor.Dense
	bufOrder []string
}

func (s *Store) partition() *partition {
	if s.part == nil {
		s.part = &partition{frozen: map[string]bool{}, buffers: map[string]*tensor.Dense{}}
	}
	return s.part
}

// Freeze marks parameters as frozen. Each pattern is either a parameter's full name, which must exist, or a
// prefix ending in "/" ("flow/"), which freezes every parameter under it, those created later included.
// Freezing is permanent for the store's lifetime.
func (s *Store) Freeze(patterns ...string) error {
	for _, p := range patterns {
		switch {
		case p == "" || p == "/":
			return fmt.Errorf("layers: Freeze: empty pattern (want a parameter name or a prefix such as \"flow/\")")
		case strings.HasSuffix(p, "/"):
		default:
			if _, ok := s.params[p]; !ok {
				return fmt.Errorf("layers: Freeze: no parameter %q in the store (a prefix ending in \"/\" also covers parameters created later)", p)
			}
		}
	}
	for _, p := range patterns {
		s.partition().frozen[p] = true
	}
	return nil
}

// Frozen reports whether name is a frozen parameter (or would be one once created, for a name under a frozen
// prefix).
func (s *Store) Frozen(name string) bool {
	if s.part == nil || len(s.part.frozen) == 0 {
		return false
	}
	if s.part.frozen[name] {
		return true
	}
	for i := range len(name) {
		if name[i] == '/' && s.part.frozen[name[:i+1]] {
			return true
		}
	}
	return false
}

// FrozenNames lists the existing frozen parameters in lexical order.
func (s *Store) FrozenNames() []string {
	var out []string
	for _, n := range s.order {
		if s.Frozen(n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Buffer returns the buffer named name, creating it with the given shape and values (nil: zeros) if it does
// not exist yet. Asking for an existing buffer with another shape, or for a name that is a parameter, is a
// programmer error and panics.
func (s *Store) Buffer(name string, shape []int, data []float64) *tensor.Dense {
	p := s.partition()
	if t, ok := p.buffers[name]; ok {
		if !slices.Equal(t.Shape(), shape) {
			panic(fmt.Sprintf("layers: buffer %q exists with shape %v, asked for %v", name, t.Shape(), shape))
		}
		return t
	}
	if _, ok := s.params[name]; ok {
		panic(fmt.Sprintf("layers: %q is a parameter of the store, asked for as a buffer", name))
	}
	size := 1
	for _, d := range shape {
		if d <= 0 {
			panic(fmt.Sprintf("layers: buffer %q: non-positive dimension in shape %v", name, shape))
		}
		size *= d
	}
	if data != nil && len(data) != size {
		panic(fmt.Sprintf("layers: buffer %q of shape %v: %d initial values, want %d", name, shape, len(data), size))
	}
	t := NewDense(s.dtype, shape, data)
	p.buffers[name] = t
	p.bufOrder = append(p.bufOrder, name)
	return t
}

// GetBuffer returns the buffer named name.
func (s *Store) GetBuffer(name string) (*tensor.Dense, bool) {
	if s.part == nil {
		return nil, false
	}
	t, ok := s.part.buffers[name]
	return t, ok
}

// BufferNames lists the buffers in lexical order (the order used in checkpoints).
func (s *Store) BufferNames() []string {
	if s.part == nil {
		return nil
	}
	n := slices.Clone(s.part.bufOrder)
	sort.Strings(n)
	return n
}

// SetBuffer replaces the values of an existing buffer. The shape must match.
func (s *Store) SetBuffer(name string, shape []int, data []float64) error {
	t, ok := s.GetBuffer(name)
	if !ok {
		return fmt.Errorf("layers: no buffer %q in the store", name)
	}
	if !slices.Equal(t.Shape(), shape) {
		return fmt.Errorf("layers: buffer %q has shape %v, got %v", name, []int(t.Shape()), shape)
	}
	if len(data) != t.Shape().TotalSize() {
		return fmt.Errorf("layers: buffer %q has %d values, got %d", name, t.Shape().TotalSize(), len(data))
	}
	SetData(t, data)
	return nil
}

// Buffer returns the graph node of the buffer name (relative to the scope), creating it in the store with
// the given values (nil: zeros) if needed and binding it the first time it is asked for. The node holds the
// store's tensor itself, so host-side updates are seen by the next run of the graph; it is not listed by
// Params and is never differentiated by a Trainer.
func (s *Scope) Buffer(name string, shape []int, data []float64) *G.Node {
	full := s.path(name)
	if n, ok := s.bound.buffers[full]; ok {
		return n
	}
	if _, ok := s.bound.nodes[full]; ok {
		panic(fmt.Sprintf("layers: %q is bound as a parameter, asked for as a buffer", full))
	}
	t := s.store.Buffer(full, shape, data)
	n := G.NewTensor(s.g, s.store.dtype, len(shape), G.WithShape(shape...), G.WithName(full), G.WithValue(t))
	if s.bound.buffers == nil {
		s.bound.buffers = map[string]*G.Node{}
	}
	s.bound.buffers[full] = n
	return n
}
