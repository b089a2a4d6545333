package train

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"gorgonia.org/tensor"

	"rgflow/checkpoints"
	"rgflow/layers"
)

// EMA is an exponential moving average of a set of Store parameters, torch-ema style
// (ExponentialMovingAverage with use_num_updates=True). The average starts as a copy of the weights; after
// the optimiser's n-th update (n = 1, 2, …) every averaged weight w gets
//
//	d = min(decay, (1+n)/(10+n))        (warm-up: early averages forget the random initialisation quickly)
//	ema ← ema − (1−d)·(ema − w)
//
// computed in the parameter's dtype with (1−d) rounded to it, like torch. There is no bias correction: the
// warm-up plays that role. The state (the averages and n) is saved in checkpoints as "ema/<param>" arrays and
// Extra["ema_updates"], and a restored EMA continues bit for bit.
type EMA struct {
	decay   float64
	store   *layers.Store
	names   []string // sorted
	updates int64
	avg     map[string]*tensor.Dense // nil until started
}

// NewEMA returns an EMA of the named store parameters with the given decay (0 < decay < 1). It holds no
// averages until Start (or Restore).
func NewEMA(store *layers.Store, names []string, decay float64) (*EMA, error) {
	if !(decay > 0 && decay < 1) {
		return nil, fmt.Errorf("train: EMA decay %v, want 0 < decay < 1", decay)
	}
	names = slices.Clone(names)
	sort.Strings(names)
	for _, n := range names {
		if _, ok := store.Get(n); !ok {
			return nil, fmt.Errorf("train: EMA: no parameter %q in the store", n)
		}
	}
	return &EMA{decay: decay, store: store, names: names}, nil
}

// Decay is the configured decay.
func (e *EMA) Decay() float64 { return e.decay }

// Updates is the number of updates applied since the average started.
func (e *EMA) Updates() int64 { return e.updates }

// Started reports whether the EMA holds averages.
func (e *EMA) Started() bool { return e.avg != nil }

// Names lists the averaged parameters (sorted).
func (e *EMA) Names() []string { return slices.Clone(e.names) }

// Start sets the averages to copies of the current weights, with no updates counted.
func (e *EMA) Start() {
	e.avg = make(map[string]*tensor.Dense, len(e.names))
	for _, n := range e.names {
		p, _ := e.store.Get(n)
		e.avg[n] = p.Clone().(*tensor.Dense)
	}
	e.updates = 0
}

// Update folds the current weights into the averages (Start first if needed).
func (e *EMA) Update() {
	if e.avg == nil {
		e.Start()
	}
	e.updates++
	n := float64(e.updates)
	d := math.Min(e.decay, (1+n)/(10+n))
	for _, name := range e.names {
		p, _ := e.store.Get(name)
		a := e.avg[name]
		switch p.Dtype() {
		case tensor.Float64:
			emaUpdate(a.Float64s(), p.Float64s(), 1-d)
		case tensor.Float32:
			emaUpdate(a.Float32s(), p.Float32s(), float32(1-d))
		}
	}
}

func emaUpdate[T float32 | float64](avg, w []T, oneMinusD T) {
	w = w[:len(avg)]
	for i := range avg {
		avg[i] -= oneMinusD * (avg[i] - w[i])
	}
}

// Average returns the average of parameter name (nil, false before Start or for a name not averaged). The
// tensor is the EMA's own; do not modify it.
func (e *EMA) Average(name string) (*tensor.Dense, bool) {
	t, ok := e.avg[name]
	return t, ok
}

// State exports copies of the averages as arrays named like the parameters (nil before Start).
func (e *EMA) State() []checkpoints.Array {
	if e.avg == nil {
		return nil
	}
	out := make([]checkpoints.Array, 0, len(e.names))
	for _, n := range e.names {
		a, err := denseArray(n, e.avg[n])
		if err != nil {
			panic(err) // the store only holds float32/float64 tensors
		}
		out = append(out, a)
	}
	return out
}

// Restore replaces the averages and the update count by saved ones. Every averaged parameter must be present
// with its shape and dtype, and nothing else; on error nothing changes.
func (e *EMA) Restore(state []checkpoints.Array, updates int64) error {
	if updates < 0 {
		return fmt.Errorf("train: EMA: %d updates, want ≥ 0", updates)
	}
	avg := make(map[string]*tensor.Dense, len(e.names))
	want := map[string]bool{}
	for _, n := range e.names {
		want[n] = true
	}
	for _, a := range state {
		if !want[a.Name] {
			if _, ok := avg[a.Name]; ok {
				return fmt.Errorf("train: EMA: %q appears twice", a.Name)
			}
			return fmt.Errorf("train: EMA: %q is not an averaged parameter (frozen, or not in the model)", a.Name)
		}
		delete(want, a.Name)
		p, _ := e.store.Get(a.Name)
		t, err := arrayDense(a, p)
		if err != nil {
			return fmt.Errorf("train: EMA: %w", err)
		}
		avg[a.Name] = t
	}
	if len(want) > 0 {
		missing := make([]string, 0, len(want))
		for n := range want {
			missing = append(missing, n)
		}
		sort.Strings(missing)
		return fmt.Errorf("train: EMA: no average for %d parameters: %q", len(missing), missing)
	}
	e.avg, e.updates = avg, updates
	return nil
}

// denseArray copies a float32/float64 tensor into a named Array.
func denseArray(name string, t *tensor.Dense) (checkpoints.Array, error) {
	var data any
	switch t.Dtype() {
	case tensor.Float64:
		data = slices.Clone(t.Float64s())
	case tensor.Float32:
		data = slices.Clone(t.Float32s())
	default:
		return checkpoints.Array{}, fmt.Errorf("train: %q has dtype %v, want float32 or float64", name, t.Dtype())
	}
	return checkpoints.Array{Name: name, Shape: slices.Clone([]int(t.Shape())), Data: data}, nil
}

// arrayDense checks that a holds values of like's shape and dtype and returns them as a new tensor.
func arrayDense(a checkpoints.Array, like *tensor.Dense) (*tensor.Dense, error) {
	if !slices.Equal(like.Shape(), a.Shape) {
		return nil, fmt.Errorf("%q has shape %v, the model's is %v", a.Name, a.Shape, []int(like.Shape()))
	}
	n := like.Shape().TotalSize()
	switch d := a.Data.(type) {
	case []float64:
		if like.Dtype() == tensor.Float64 && len(d) == n {
			return tensor.New(tensor.WithShape(a.Shape...), tensor.WithBacking(slices.Clone(d))), nil
		}
	case []float32:
		if like.Dtype() == tensor.Float32 && len(d) == n {
			return tensor.New(tensor.WithShape(a.Shape...), tensor.WithBacking(slices.Clone(d))), nil
		}
	}
	return nil, fmt.Errorf("%q holds %T of length %d, the model wants %d values of %v", a.Name, a.Data, dataLen(a.Data), n, like.Dtype())
}
