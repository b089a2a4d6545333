package layers

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Init fills a freshly created parameter. data is a []float64 of the parameter's size;
// the Store converts it to its own dtype.
type Init func(rng *rand.Rand, shape []int, data []float64)

// Zeros initialises to 0.
func Zeros(_ *rand.Rand, _ []int, data []float64) {
	for i := range data {
		data[i] = 0
	}
}

// Constant returns an initialiser that sets every entry to v.
func Constant(v float64) Init {
	return func(_ *rand.Rand, _ []int, data []float64) {
		for i := range data {
			data[i] = v
		}
	}
}

// GlorotUniform draws from U(−a, a) with a = gain·√(6/(fanIn+fanOut)), where for a weight of shape
// (in, out) fanIn = in, fanOut = out; a 1-D shape uses its length for both.
func GlorotUniform(gain float64) Init {
	return func(rng *rand.Rand, shape []int, data []float64) {
		fanIn, fanOut := shape[0], shape[0]
		if len(shape) >= 2 {
			fanOut = shape[len(shape)-1]
		}
		a := gain * math.Sqrt(6/float64(fanIn+fanOut))
		for i := range data {
			data[i] = a * (2*rng.Float64() - 1)
		}
	}
}

// Normal draws from N(0, std²).
func Normal(std float64) Init {
	return func(rng *rand.Rand, _ []int, data []float64) {
		for i := range data {
			data[i] = std * rng.NormFloat64()
		}
	}
}

// Store is a set of named parameter tensors of one dtype. It is the single owner of a model's weights:
// every graph built from it (training, sampling, inverse, evaluation at another batch size) binds the same
// backing tensors, so an update made through one graph is seen by all. A Store is not safe for concurrent
// mutation.
//
// Initial values do not depend on the order in which graphs ask for parameters: each parameter is drawn
// from its own random stream, seeded by the store's seed and the parameter's name (ParamRand). Building
// a sampling graph before the training graph, or the scopes of a model in another order, gives the same
// bits.
type Store struct {
	dtype  tensor.Dtype
	seed   uint64
	params map[string]*tensor.Dense
	order  []string
	part   *partition // frozen parameters and buffers (see Freeze, Buffer); nil until first used
}

// NewStore returns an empty store of the given dtype (tensor.Float32 or tensor.Float64) whose parameters
// are initialised, the first time they are asked for, from streams derived from seed and their names.
func NewStore(dtype tensor.Dtype, seed uint64) *Store {
	if dtype != tensor.Float32 && dtype != tensor.Float64 {
		panic(fmt.Sprintf("layers: NewStore: dtype %v, want float32 or float64", dtype))
	}
	return &Store{dtype: dtype, seed: seed, params: map[string]*tensor.Dense{}}
}

// Seed is the seed the store derives its parameters' initial values from.
func (s *Store) Seed() uint64 { return s.seed }

// ParamRand returns the random stream that initialises the parameter called name in a store of the given
// seed: ChaCha8 keyed by the seed, the FNV-1a 64-bit hash of the name and the name's length, with a fixed
// tag that keeps these streams apart from any other use of the same seed. Streams of different names are
// independent; the stream of a name never depends on which other parameters exist or when they were made.
func ParamRand(seed uint64, name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	var key [32]byte
	copy(key[:8], "rgflow.p")
	binary.LittleEndian.PutUint64(key[8:], seed)
	binary.LittleEndian.PutUint64(key[16:], h.Sum64())
	binary.LittleEndian.PutUint64(key[24:], uint64(len(name)))
	return rand.New(rand.NewChaCha8(key))
}

// Dtype is the store's element type.
func (s *Store) Dtype() tensor.Dtype { return s.dtype }

// Names lists the parameter names in creation order.
func (s *Store) Names() []string { return append([]string(nil), s.order...) }

// SortedNames lists the parameter names in lexical order (the order used in checkpoints).
func (s *Store) SortedNames() []string {
	n := s.Names()
	sort.Strings(n)
	return n
}

// Get returns the tensor named name.
func (s *Store) Get(name string) (*tensor.Dense, bool) {
	t, ok := s.params[name]
	return t, ok
}

// Len is the number of named tensors.
func (s *Store) Len() int { return len(s.order) }

// NumParams is the total number of scalar parameters.
func (s *Store) NumParams() int {
	n := 0
	for _, t := range s.params {
		n += t.Shape().TotalSize()
	}
	return n
}

// Param returns the tensor named name, creating it with init if it does not exist yet. Asking again for
// an existing name with a different shape is a programmer error and panics with both shapes.
func (s *Store) Param(name string, shape []int, init Init) *tensor.Dense {
	if t, ok := s.params[name]; ok {
		if !slices.Equal(t.Shape(), shape) {
			panic(fmt.Sprintf("layers: parameter %q exists with shape %v, asked for %v", name, t.Shape(), shape))
		}
		return t
	}
	size := 1
	for _, d := range shape {
		if d <= 0 {
			panic(fmt.Sprintf("layers: parameter %q: non-positive dimension in shape %v", name, shape))
		}
		size *= d
	}
	data := make([]float64, size)
	if init != nil {
		init(ParamRand(s.seed, name), shape, data)
	}
	t := tensor.New(tensor.WithShape(shape...), tensor.Of(s.dtype))
	SetData(t, data)
	s.params[name] = t
	s.order = append(s.order, name)
	return t
}

// Set replaces the values of an existing parameter (used when loading checkpoints). The shape must match.
func (s *Store) Set(name string, shape []int, data []float64) error {
	t, ok := s.params[name]
	if !ok {
		return fmt.Errorf("layers: no parameter %q in the store", name)
	}
	if !slices.Equal(t.Shape(), shape) {
		return fmt.Errorf("layers: parameter %q has shape %v, got %v", name, []int(t.Shape()), shape)
	}
	if len(data) != t.Shape().TotalSize() {
		return fmt.Errorf("layers: parameter %q has %d values, got %d", name, t.Shape().TotalSize(), len(data))
	}
	SetData(t, data)
	return nil
}

// Perturb adds independent N(0, scale²) noise to every parameter, in creation order: "random non-zero
// weights" for conformance tests and demonstrations of untrained models.
func (s *Store) Perturb(rng *rand.Rand, scale float64) {
	for _, name := range s.order {
		t := s.params[name]
		v := Float64s(t)
		for i := range v {
			v[i] += scale * rng.NormFloat64()
		}
		SetData(t, v)
	}
}

// SetData copies float64 values into a float32 or float64 dense tensor.
func SetData(t *tensor.Dense, data []float64) {
	switch d := t.Data().(type) {
	case []float64:
		copy(d, data)
	case []float32:
		for i, v := range data {
			d[i] = float32(v)
		}
	default:
		panic(fmt.Sprintf("layers: SetData: unsupported dtype %v", t.Dtype()))
	}
}

// Float64s returns a copy of a float32 or float64 tensor's values as float64.
func Float64s(t tensor.Tensor) []float64 {
	switch d := t.Data().(type) {
	case []float64:
		return append([]float64(nil), d...)
	case []float32:
		out := make([]float64, len(d))
		for i, v := range d {
			out[i] = float64(v)
		}
		return out
	case float64:
		return []float64{d}
	case float32:
		return []float64{float64(d)}
	default:
		panic(fmt.Sprintf("layers: Float64s: unsupported data %T", d))
	}
}

// Scope binds a Store's parameters into one graph under a name prefix. Scopes made by Sub share the
// graph, the store and the binding table, so a parameter is bound at most once per graph.
type Scope struct {
	g      *G.ExprGraph
	store  *Store
	prefix string
	bound  *binding
}

type binding struct {
	nodes   map[string]*G.Node
	order   []string
	buffers map[string]*G.Node // bound buffers (see Scope.Buffer); nil until the first
	aux     []*G.Node          // per-sample regularisers registered while building (see AddAux)
	noise   []*G.Node          // inputs that hold fresh standard-normal noise at every run (see Noise)
	collect bool               // the objective adds registered regularisers to its loss (see CollectAux)
	arena   *Arena             // where the kit's ops built in this graph take their outputs (nil: fresh)
}

// NewScope returns the root scope of graph g over store.
func NewScope(g *G.ExprGraph, store *Store) *Scope {
	return &Scope{g: g, store: store, bound: &binding{nodes: map[string]*G.Node{}}}
}

// Graph is the scope's graph.
func (s *Scope) Graph() *G.ExprGraph { return s.g }

// SetArena makes the ops built from now on in this scope's graph (every sub-scope included) that support it
// take their outputs from a (see Arena); the caller then owns the duty to Reset a before each run of the
// graph's machine, and never while values of the last run are still to be read. nil (the default) lets
// every op allocate its outputs afresh.
func (s *Scope) SetArena(a *Arena) { s.bound.arena = a }

// Arena is the scope's arena (nil: none).
func (s *Scope) Arena() *Arena { return s.bound.arena }

// Store is the scope's parameter store.
func (s *Scope) Store() *Store { return s.store }

// Dtype is the store's dtype, which every node of the graph must share.
func (s *Scope) Dtype() tensor.Dtype { return s.store.dtype }

// Prefix is the scope's path ("" at the root).
func (s *Scope) Prefix() string { return s.prefix }

// Sub returns a child scope whose parameters are named prefix/name/….
func (s *Scope) Sub(name string) *Scope {
	c := *s
	c.prefix = s.path(name)
	return &c
}

func (s *Scope) path(name string) string {
	if s.prefix == "" {
		return name
	}
	return s.prefix + "/" + name
}

// Param returns the graph node of the parameter name (relative to the scope), creating the tensor in the
// store with init if needed and binding it into the graph the first time it is asked for.
func (s *Scope) Param(name string, shape []int, init Init) *G.Node {
	full := s.path(name)
	if n, ok := s.bound.nodes[full]; ok {
		return n
	}
	if _, ok := s.store.GetBuffer(full); ok {
		panic(fmt.Sprintf("layers: %q is a buffer of the store, asked for as a parameter", full))
	}
	t := s.store.Param(full, shape, init)
	n := G.NewTensor(s.g, s.store.dtype, len(shape), G.WithShape(shape...), G.WithName(full), G.WithValue(t))
	s.bound.nodes[full] = n
	s.bound.order = append(s.bound.order, full)
	return n
}

// Params returns the names and nodes of every parameter bound in this graph, in binding order.
func (s *Scope) Params() (names []string, nodes []*G.Node) {
	names = append([]string(nil), s.bound.order...)
	nodes = make([]*G.Node, len(names))
	for i, n := range names {
		nodes[i] = s.bound.nodes[n]
	}
	return names, nodes
}

// AddAux registers a per-sample regulariser (shape (B)) built into this graph by a layer (an ODE's
// kinetic energy): objectives that support regularisers add every registered term to their per-sample
// loss. Sub-scopes share the list.
func (s *Scope) AddAux(n *G.Node) { s.bound.aux = append(s.bound.aux, n) }

// Aux returns the per-sample regularisers registered in this graph, in order.
func (s *Scope) Aux() []*G.Node { return append([]*G.Node(nil), s.bound.aux...) }

// CollectAux declares that the objective building this graph adds every registered regulariser (Aux) to
// its loss and feeds every noise input (Noise) before each run. Layers whose regulariser needs random
// probes build it only in such graphs (CollectsAux), so sampling and evaluation graphs have no extra
// inputs to bind.
func (s *Scope) CollectAux() { s.bound.collect = true }

// CollectsAux reports whether CollectAux was called on this graph's scopes.
func (s *Scope) CollectsAux() bool { return s.bound.collect }

// Noise creates an input of the given shape (B, …) that must hold fresh independent standard-normal
// noise at every run (a layer's random probe), and registers it: the objective fills it, row b from
// sample b's random stream, before each run (NoiseInputs). The name is made unique within the graph.
func (s *Scope) Noise(name string, shape ...int) *G.Node {
	n := G.NewTensor(s.g, s.store.dtype, len(shape), G.WithShape(shape...),
		G.WithName(fmt.Sprintf("%s#noise%d", s.path(name), len(s.bound.noise))))
	s.bound.noise = append(s.bound.noise, n)
	return n
}

// NoiseInputs returns the noise inputs registered in this graph, in order.
func (s *Scope) NoiseInputs() []*G.Node { return append([]*G.Node(nil), s.bound.noise...) }

// Input creates a named input node of the store's dtype (an input that is Let() every step).
func (s *Scope) Input(name string, shape ...int) *G.Node {
	return G.NewTensor(s.g, s.store.dtype, len(shape), G.WithShape(shape...), G.WithName(s.path(name)))
}

// Scalar returns a constant of the graph's dtype.
func (s *Scope) Scalar(v float64) *G.Node {
	if s.store.dtype == tensor.Float32 {
		return G.NewConstant(float32(v))
	}
	return G.NewConstant(v)
}

// NewDense returns a dense tensor of the given dtype and shape holding data (converted from float64);
// data may be nil for zeros.
func NewDense(dtype tensor.Dtype, shape []int, data []float64) *tensor.Dense {
	t := tensor.New(tensor.WithShape(shape...), tensor.Of(dtype))
	if data != nil {
		SetData(t, data)
	}
	return t
}

// ValueFloats returns a copy of a graph value (tensor or scalar, float32 or float64) as float64.
func ValueFloats(v G.Value) []float64 {
	switch t := v.(type) {
	case *G.F64:
		return []float64{float64(*t)}
	case *G.F32:
		return []float64{float64(*t)}
	case tensor.Tensor:
		return Float64s(t)
	}
	panic(fmt.Sprintf("layers: ValueFloats: unsupported value %T", v))
}
