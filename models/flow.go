package models

import (
	"fmt"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
)

// Flow is a normalizing flow: a prior over latents z and a bijector F from data x to z, both on
// (B, Channels, L, L) tensors.
type Flow struct {
	Prior    Prior
	Bijector layers.Bijector
	Channels int
	L        int
	// Hier is the RG geometry of the bijector (its level map organises the latents).
	Hier layers.Hierarchy
}

// Shape is (batch, C, L, L).
func (f *Flow) Shape(batch int) []int { return []int{batch, f.Channels, f.L, f.L} }

// LogProb builds log q(x) = log p(F(x)) + ldj_F(x) for x (B, C, L, L); it also returns z = F(x).
func (f *Flow) LogProb(s *layers.Scope, x *G.Node) (logq, z *G.Node, err error) {
	z, ld, err := f.Bijector.Forward(s, x)
	if err != nil {
		return nil, nil, err
	}
	lp, err := f.Prior.LogProb(s, z)
	if err != nil {
		return nil, nil, err
	}
	logq, err = G.Add(lp, ld)
	return logq, z, err
}

// Generate builds x = F⁻¹(z) and log q(x) = log p(z) − ldj_I(z).
func (f *Flow) Generate(s *layers.Scope, z *G.Node) (x, logq *G.Node, err error) {
	x, ld, err := f.Bijector.Inverse(s, z)
	if err != nil {
		return nil, nil, err
	}
	lp, err := f.Prior.LogProb(s, z)
	if err != nil {
		return nil, nil, err
	}
	logq, err = G.Sub(lp, ld)
	return x, logq, err
}

// Sampler draws batches from a flow with one graph and machine built once; it is not safe for concurrent
// use. Close it when done.
type Sampler struct {
	flow    *Flow
	z       *G.Node
	zVal    *tensor.Dense
	xv, lqv G.Value // copied out by Read nodes as soon as computed (registers are reused)
	m       G.VM
	batch   int
}

// NewSampler builds the generation graph for the given batch over store.
func NewSampler(f *Flow, store *layers.Store, batch int) (*Sampler, error) {
	if batch <= 0 {
		return nil, fmt.Errorf("models: sampler batch %d, want > 0", batch)
	}
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	z := s.Input("z", f.Shape(batch)...)
	x, logq, err := f.Generate(s, z)
	if err != nil {
		return nil, err
	}
	sm := &Sampler{flow: f, z: z, batch: batch,
		zVal: tensor.New(tensor.WithShape(f.Shape(batch)...), tensor.Of(store.Dtype()))}
	G.Read(x, &sm.xv)
	G.Read(logq, &sm.lqv)
	if sm.m, err = layers.NewTapeMachine(g); err != nil {
		return nil, fmt.Errorf("models: sampler: %w", err)
	}
	return sm, nil
}

// Sample draws one batch: x flattened as (B, C, L, L), log q(x) per sample, and the latents z.
func (sm *Sampler) Sample(rng *rand.Rand) (x, logq, z []float64, err error) {
	if err := sm.flow.Prior.Sample(rng, sm.zVal); err != nil {
		return nil, nil, nil, err
	}
	return sm.run()
}

// Decode maps given latents z (B·C·L·L values) to x and log q(x).
func (sm *Sampler) Decode(z []float64) (x, logq []float64, err error) {
	if len(z) != sm.zVal.Shape().TotalSize() {
		return nil, nil, fmt.Errorf("models: Decode: %d latents, want %d", len(z), sm.zVal.Shape().TotalSize())
	}
	layers.SetData(sm.zVal, z)
	x, logq, _, err = sm.run()
	return x, logq, err
}

func (sm *Sampler) run() (x, logq, z []float64, err error) {
	defer sm.m.Reset()
	if err := G.Let(sm.z, sm.zVal); err != nil {
		return nil, nil, nil, err
	}
	if err := sm.m.RunAll(); err != nil {
		return nil, nil, nil, fmt.Errorf("models: sampling: %w", err)
	}
	return layers.ValueFloats(sm.xv), layers.ValueFloats(sm.lqv), layers.Float64s(sm.zVal), nil
}

// Close releases the machine.
func (sm *Sampler) Close() error { return sm.m.Close() }

// Encoder evaluates z = F(x) and log q(x) for batches of given x with one graph built once. Close it when
// done.
type Encoder struct {
	flow    *Flow
	x       *G.Node
	xVal    *tensor.Dense
	zv, lqv G.Value // copied out by Read nodes as soon as computed
	m       G.VM
}

// NewEncoder builds the inference graph for the given batch over store.
func NewEncoder(f *Flow, store *layers.Store, batch int) (*Encoder, error) {
	if batch <= 0 {
		return nil, fmt.Errorf("models: encoder batch %d, want > 0", batch)
	}
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	x := s.Input("x", f.Shape(batch)...)
	logq, z, err := f.LogProb(s, x)
	if err != nil {
		return nil, err
	}
	e := &Encoder{flow: f, x: x, xVal: tensor.New(tensor.WithShape(f.Shape(batch)...), tensor.Of(store.Dtype()))}
	G.Read(z, &e.zv)
	G.Read(logq, &e.lqv)
	if e.m, err = layers.NewTapeMachine(g); err != nil {
		return nil, fmt.Errorf("models: encoder: %w", err)
	}
	return e, nil
}

// Encode maps x (B·C·L·L values) to z and log q(x).
func (e *Encoder) Encode(x []float64) (z, logq []float64, err error) {
	if len(x) != e.xVal.Shape().TotalSize() {
		return nil, nil, fmt.Errorf("models: Encode: %d values, want %d", len(x), e.xVal.Shape().TotalSize())
	}
	defer e.m.Reset()
	layers.SetData(e.xVal, x)
	if err := G.Let(e.x, e.xVal); err != nil {
		return nil, nil, err
	}
	if err := e.m.RunAll(); err != nil {
		return nil, nil, fmt.Errorf("models: encoding: %w", err)
	}
	return layers.ValueFloats(e.zv), layers.ValueFloats(e.lqv), nil
}

// Close releases the machine.
func (e *Encoder) Close() error { return e.m.Close() }
