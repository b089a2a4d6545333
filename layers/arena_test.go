package layers_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/models"
)

// arenaRig is a NeuralRG flow's generate pass (gathers and scatters between RG levels, the fused coupling
// stacks with their unpacking and backward ops, narrows, reshapes) with a loss and the gradients of every
// parameter and of the latents, on its own graph and machine.
type arenaRig struct {
	z     *G.Node
	m     G.VM
	vals  []G.Value // loss, ∂z, ∂params…, read (copied) each run
	arena *layers.Arena
	names []string
	shape []int
}

func newArenaRig(t *testing.T, store *layers.Store, arena *layers.Arena) *arenaRig {
	t.Helper()
	cfg, err := models.Preset("neuralrg-small", 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	flow, err := models.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	s.SetArena(arena)
	r := &arenaRig{arena: arena, shape: flow.Shape(6)}
	r.z = s.Input("z", r.shape...)
	x, logq, err := flow.Generate(s, r.z)
	if err != nil {
		t.Fatal(err)
	}
	// loss = Σ logq + Σ x²·x (odd in x, so that the gradient through x is not symmetric).
	x2, err := G.Square(x)
	if err != nil {
		t.Fatal(err)
	}
	x3, err := G.HadamardProd(x2, x)
	if err != nil {
		t.Fatal(err)
	}
	a, err := G.Sum(x3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := G.Sum(logq)
	if err != nil {
		t.Fatal(err)
	}
	loss, err := G.Add(a, b)
	if err != nil {
		t.Fatal(err)
	}
	names, params := s.Params()
	r.names = names
	grads, err := layers.Grad(loss, append([]*G.Node{r.z}, params...)...)
	if err != nil {
		t.Fatal(err)
	}
	r.vals = make([]G.Value, 1+len(grads))
	G.Read(loss, &r.vals[0])
	for i, gn := range grads {
		G.Read(gn, &r.vals[1+i])
	}
	r.m = layers.MustNewTapeMachine(g)
	return r
}

// run resets the arena, runs the machine on z and returns copies of the loss and every gradient.
func (r *arenaRig) run(t *testing.T, z []float64, dt tensor.Dtype) [][]float64 {
	t.Helper()
	r.arena.Reset()
	if err := G.Let(r.z, layers.NewDense(dt, r.shape, z)); err != nil {
		t.Fatal(err)
	}
	if err := r.m.RunAll(); err != nil {
		t.Fatal(err)
	}
	defer r.m.Reset()
	out := make([][]float64, len(r.vals))
	for i, v := range r.vals {
		switch x := v.(type) {
		case *G.F64:
			out[i] = []float64{float64(*x)}
		case *G.F32:
			out[i] = []float64{float64(*x)}
		case tensor.Tensor:
			out[i] = slices.Clone(layers.Float64s(x))
		default:
			t.Fatalf("value %d is a %T", i, v)
		}
	}
	return out
}

// A graph whose ops draw their outputs from an arena gives, run after run, the same loss and gradients bit
// for bit as the same graph allocating every output afresh, while the arena allocates nothing after the
// first run (everything it hands out is recycled). Each run uses new latents, so a value left over from
// the previous run (a recycled buffer not overwritten, or not zeroed where an op relies on zeros) would
// show as a difference.
func TestArenaRecyclesBitForBit(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		store := layers.NewStore(dt, 5)
		arena := layers.NewArena()
		reused := newArenaRig(t, store, arena)
		fresh := newArenaRig(t, store, nil)
		rng := rand.New(rand.NewPCG(3, 4))
		n := 1
		for _, d := range reused.shape {
			n *= d
		}
		var allocated int
		for run := 0; run < 4; run++ {
			z := make([]float64, n)
			for i := range z {
				z[i] = rng.NormFloat64()
			}
			got, want := reused.run(t, z, dt), fresh.run(t, z, dt)
			for i := range want {
				if !slices.Equal(got[i], want[i]) {
					t.Fatalf("%v run %d: value %d differs between the arena graph and the fresh one", dt, run, i)
				}
			}
			handed, news := arena.Stats()
			switch {
			case run == 0:
				if news == 0 {
					t.Fatalf("%v: the arena handed out nothing: the graph's ops do not use it", dt)
				}
				allocated = news
			case news != allocated:
				t.Errorf("%v run %d: the arena allocated %d tensors in all, %d after the first run: it does not recycle", dt, run, news, allocated)
			case handed != (run+1)*allocated:
				t.Errorf("%v run %d: %d tensors handed out, want %d per run", dt, run, handed, allocated)
			}
		}
	}
}

// A scope and its sub-scopes carry the arena set on it; a nil arena's methods are no-ops.
func TestArenaScope(t *testing.T) {
	a := layers.NewArena()
	s := layers.NewScope(G.NewGraph(), layers.NewStore(tensor.Float64, 1))
	if s.Arena() != nil {
		t.Fatal("a new scope has an arena")
	}
	s.SetArena(a)
	if s.Arena() != a || s.Sub("x").Sub("y").Arena() != a {
		t.Fatal("the scope (or its sub-scope) does not carry its arena")
	}
	var none *layers.Arena
	none.Reset()
	if h, n := none.Stats(); h != 0 || n != 0 {
		t.Errorf("nil arena stats %d, %d", h, n)
	}
}
