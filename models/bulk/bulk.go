package bulk

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/models"
)

// Action is the bulk effective action S_eff(z) = S(F⁻¹(z)) − ldj_I(z) of a flow and a lattice action, as
// a lattice.HostAction on z (see the package doc).
type Action struct {
	act   lattice.Action
	flow  *models.Flow
	store *layers.Store // float64 copy of the weights

	mu    sync.Mutex
	pool  []*evaluator
	err   error
	grads atomic.Int64
	evals atomic.Int64
}

// evaluator is one graph+machine pair for S_eff and its gradient at batch 1, and one forward-only pair
// for S_eff and x.
type evaluator struct {
	gz        *G.Node
	gzVal     *tensor.Dense
	gm        G.VM
	gSeff, gG G.Value

	fz        *G.Node
	fzVal     *tensor.Dense
	fm        G.VM
	fSeff, fX G.Value
}

// Float64Store copies every parameter and buffer of store into a new float64 store.
func Float64Store(store *layers.Store) (*layers.Store, error) {
	out := layers.NewStore(tensor.Float64, 0)
	for _, name := range store.Names() {
		t, _ := store.Get(name)
		out.Param(name, t.Shape().Clone(), nil)
		if err := out.Set(name, t.Shape().Clone(), layers.Float64s(t)); err != nil {
			return nil, fmt.Errorf("bulk: copying %s: %w", name, err)
		}
	}
	for _, name := range store.BufferNames() {
		t, _ := store.GetBuffer(name)
		out.Buffer(name, t.Shape().Clone(), layers.Float64s(t))
	}
	return out, nil
}

// New returns S_eff for the lattice action act and the flow with the weights in store (copied to float64;
// later changes to store are not seen). It builds one evaluator to check that the graphs assemble.
func New(act lattice.Action, flow *models.Flow, store *layers.Store) (*Action, error) {
	if act.Channels() != flow.Channels || act.Size() != flow.L {
		return nil, fmt.Errorf("bulk: the action's fields are %d×%d×%d, the flow's %d×%d×%d",
			act.Channels(), act.Size(), act.Size(), flow.Channels, flow.L, flow.L)
	}
	st, err := Float64Store(store)
	if err != nil {
		return nil, err
	}
	a := &Action{act: act, flow: flow, store: st}
	ev, err := a.newEvaluator()
	if err != nil {
		return nil, err
	}
	a.pool = append(a.pool, ev)
	return a, nil
}

// seff builds S_eff per sample and x for z.
func (a *Action) seff(s *layers.Scope, z *G.Node) (seff, x *G.Node, err error) {
	x, ld, err := a.flow.Bijector.Inverse(s, z)
	if err != nil {
		return nil, nil, fmt.Errorf("bulk: generation graph: %w", err)
	}
	sx, err := a.act.Action(s, x)
	if err != nil {
		return nil, nil, fmt.Errorf("bulk: action graph: %w", err)
	}
	seff, err = G.Sub(sx, ld)
	if err != nil {
		return nil, nil, fmt.Errorf("bulk: S − ldj: %w", err)
	}
	return seff, x, nil
}

func (a *Action) newEvaluator() (*evaluator, error) {
	shape := a.flow.Shape(1)
	ev := &evaluator{}
	// Gradient graph.
	g := G.NewGraph()
	s := layers.NewScope(g, a.store)
	ev.gz = s.Input("z", shape...)
	seff, _, err := a.seff(s, ev.gz)
	if err != nil {
		return nil, err
	}
	cost, err := G.Sum(seff)
	if err != nil {
		return nil, fmt.Errorf("bulk: %w", err)
	}
	grads, err := layers.Grad(cost, ev.gz)
	if err != nil {
		return nil, fmt.Errorf("bulk: ∇S_eff: %w", err)
	}
	G.Read(cost, &ev.gSeff)
	G.Read(grads[0], &ev.gG)
	ev.gzVal = tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float64))
	if ev.gm, err = layers.NewTapeMachine(g); err != nil {
		return nil, fmt.Errorf("bulk: %w", err)
	}
	// Forward-only graph.
	fg := G.NewGraph()
	fs := layers.NewScope(fg, a.store)
	ev.fz = fs.Input("z", shape...)
	fseff, fx, err := a.seff(fs, ev.fz)
	if err != nil {
		return nil, err
	}
	G.Read(fseff, &ev.fSeff)
	G.Read(fx, &ev.fX)
	ev.fzVal = tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float64))
	if ev.fm, err = layers.NewTapeMachine(fg); err != nil {
		return nil, fmt.Errorf("bulk: %w", err)
	}
	return ev, nil
}

// get takes an evaluator from the pool, building one if it is empty.
func (a *Action) get() (*evaluator, error) {
	a.mu.Lock()
	if n := len(a.pool); n > 0 {
		ev := a.pool[n-1]
		a.pool = a.pool[:n-1]
		a.mu.Unlock()
		return ev, nil
	}
	a.mu.Unlock()
	return a.newEvaluator()
}

func (a *Action) put(ev *evaluator) {
	a.mu.Lock()
	a.pool = append(a.pool, ev)
	a.mu.Unlock()
}

func (a *Action) fail(err error) {
	a.mu.Lock()
	if a.err == nil {
		a.err = err
	}
	a.mu.Unlock()
}

// Err is the first graph error met by Eval or Force, or nil.
func (a *Action) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Channels is the flow's channel count.
func (a *Action) Channels() int { return a.flow.Channels }

// Size is L.
func (a *Action) Size() int { return a.flow.L }

// Z2 is false: S_eff(−z) ≠ S_eff(z) for a general flow.
func (a *Action) Z2() bool { return false }

// GradEvals is the number of forces computed so far.
func (a *Action) GradEvals() int64 { return a.grads.Load() }

// Evals is the number of Eval and Decode calls so far (forward passes without a gradient).
func (a *Action) Evals() int64 { return a.evals.Load() }

func (a *Action) checkLen(z []float64) error {
	if n := a.flow.Channels * a.flow.L * a.flow.L; len(z) != n {
		return fmt.Errorf("bulk: %d latents, want C·L·L = %d", len(z), n)
	}
	return nil
}

// forward evaluates S_eff(z) and x = F⁻¹(z).
func (a *Action) forward(z []float64) (float64, []float64, error) {
	if err := a.checkLen(z); err != nil {
		return 0, nil, err
	}
	ev, err := a.get()
	if err != nil {
		return 0, nil, err
	}
	defer a.put(ev)
	defer ev.fm.Reset()
	a.evals.Add(1)
	layers.SetData(ev.fzVal, z)
	if err := G.Let(ev.fz, ev.fzVal); err != nil {
		return 0, nil, fmt.Errorf("bulk: %w", err)
	}
	if err := ev.fm.RunAll(); err != nil {
		return 0, nil, fmt.Errorf("bulk: S_eff: %w", err)
	}
	return layers.ValueFloats(ev.fSeff)[0], layers.ValueFloats(ev.fX), nil
}

// Eval is S_eff(z) (NaN after a graph error; see Err).
func (a *Action) Eval(z []float64) float64 {
	s, _, err := a.forward(z)
	if err != nil {
		a.fail(err)
		return math.NaN()
	}
	return s
}

// Decode is x = F⁻¹(z) with S_eff(z).
func (a *Action) Decode(z []float64) (x []float64, seff float64, err error) {
	seff, x, err = a.forward(z)
	return x, seff, err
}

// EvalGrad returns S_eff(z) and writes −∇_z S_eff into dst.
func (a *Action) EvalGrad(dst, z []float64) (float64, error) {
	if err := a.checkLen(z); err != nil {
		return 0, err
	}
	if len(dst) != len(z) {
		return 0, fmt.Errorf("bulk: force buffer has %d values, want %d", len(dst), len(z))
	}
	ev, err := a.get()
	if err != nil {
		return 0, err
	}
	defer a.put(ev)
	defer ev.gm.Reset()
	a.grads.Add(1)
	layers.SetData(ev.gzVal, z)
	if err := G.Let(ev.gz, ev.gzVal); err != nil {
		return 0, fmt.Errorf("bulk: %w", err)
	}
	if err := ev.gm.RunAll(); err != nil {
		return 0, fmt.Errorf("bulk: ∇S_eff: %w", err)
	}
	g := layers.ValueFloats(ev.gG)
	for i, v := range g {
		dst[i] = -v
	}
	return layers.ValueFloats(ev.gSeff)[0], nil
}

// Force writes −∇_z S_eff into dst (NaN after a graph error; see Err).
func (a *Action) Force(dst, z []float64) {
	if _, err := a.EvalGrad(dst, z); err != nil {
		a.fail(err)
		for i := range dst {
			dst[i] = math.NaN()
		}
	}
}

// Close releases the machines.
func (a *Action) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var first error
	for _, ev := range a.pool {
		for _, m := range []G.VM{ev.gm, ev.fm} {
			if err := m.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	a.pool = nil
	return first
}

var _ lattice.HostAction = (*Action)(nil)
