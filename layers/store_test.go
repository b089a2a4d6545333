package layers

import (
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// linearGraph builds y = x·w + b for a batch and returns the input, output and a machine.
func linearGraph(t *testing.T, store *Store, batch int, withGrad bool) (*G.Node, *G.Node, []*G.Node, []string, G.VM) {
	t.Helper()
	g := G.NewGraph()
	s := NewScope(g, store)
	x := s.Input("x", 3, batch) // feature-major: (in, N)
	y, err := Linear(s.Sub("lin"), x, 2, false, false)
	if err != nil {
		t.Fatal(err)
	}
	var grads []*G.Node
	names, params := s.Params()
	if withGrad {
		sum, err := G.Sum(y)
		if err != nil {
			t.Fatal(err)
		}
		if grads, err = Grad(sum, params...); err != nil {
			t.Fatal(err)
		}
	}
	return x, y, grads, names, MustNewTapeMachine(g)
}

func runLinear(t *testing.T, x, y *G.Node, m G.VM, in []float64, dt tensor.Dtype) []float64 {
	t.Helper()
	defer m.Reset()
	if err := G.Let(x, NewDense(dt, []int{3, len(in) / 3}, in)); err != nil {
		t.Fatal(err)
	}
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	return Float64s(y.Value().(tensor.Tensor))
}

// An optimiser update made through the training graph is seen by a graph of another batch size built
// before the update, without rebinding.
func TestStoreSharedAcrossGraphs(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		store := NewStore(dt, 1)
		xa, ya, grads, names, ma := linearGraph(t, store, 4, true)
		xb, yb, _, _, mb := linearGraph(t, store, 2, false)
		in := []float64{1, 2, 3, -1, 0.5, 2}
		before := runLinear(t, xb, yb, mb, in, dt)

		// One SGD step through graph A, applied to the store's tensors by name.
		if err := G.Let(xa, NewDense(dt, []int{3, 4}, []float64{1, 1, 1, 2, 2, 2, 0, 1, 0, 1, 0, 1})); err != nil {
			t.Fatal(err)
		}
		if err := ma.RunAll(); err != nil {
			t.Fatal(err)
		}
		_ = ya
		for i, name := range names {
			p, _ := store.Get(name)
			v, gv := Float64s(p), Float64s(grads[i].Value().(tensor.Tensor))
			for j := range v {
				v[j] -= 0.1 * gv[j]
			}
			SetData(p, v)
		}
		ma.Reset()

		after := runLinear(t, xb, yb, mb, in, dt)
		xc, yc, _, _, mc := linearGraph(t, store, 2, false)
		fresh := runLinear(t, xc, yc, mc, in, dt)
		same := true
		for i := range after {
			if after[i] != fresh[i] {
				t.Errorf("%v: graph built before the update gives %v, a fresh graph %v", dt, after, fresh)
				break
			}
			same = same && after[i] == before[i]
		}
		if same {
			t.Errorf("%v: the update made through graph A did not change graph B's output", dt)
		}
		for _, m := range []G.VM{ma, mb, mc} {
			m.Close()
		}
	}
}

func TestStoreParamShapeMismatchPanics(t *testing.T) {
	s := NewStore(tensor.Float64, 1)
	s.Param("a", []int{2, 3}, Zeros)
	defer func() {
		if recover() == nil {
			t.Error("asking for an existing parameter with another shape did not panic")
		}
	}()
	s.Param("a", []int{3, 2}, Zeros)
}

func TestStoreSetValidates(t *testing.T) {
	s := NewStore(tensor.Float32, 0)
	s.Param("a", []int{2}, Zeros)
	if err := s.Set("a", []int{3}, []float64{1, 2, 3}); err == nil {
		t.Error("Set accepted a wrong shape")
	}
	if err := s.Set("b", []int{2}, []float64{1, 2}); err == nil {
		t.Error("Set accepted an unknown name")
	}
	if err := s.Set("a", []int{2}, []float64{1, 2}); err != nil {
		t.Error(err)
	}
	if s.NumParams() != 2 {
		t.Errorf("NumParams = %d, want 2", s.NumParams())
	}
}

// A parameter's initial value depends only on the store's seed and its name: asking for the same
// parameters in reverse order (or with others interleaved) gives the same bits, other names and other
// seeds give other values.
func TestStoreInitIndependentOfOrder(t *testing.T) {
	names := []string{"a/w", "a/b", "b/w", "level0/coupling3/s/l1/w", "x"}
	shape := []int{3, 4}
	build := func(seed uint64, order []string, extra bool) map[string][]float64 {
		s := NewStore(tensor.Float64, seed)
		out := map[string][]float64{}
		for _, n := range order {
			if extra {
				s.Param("unrelated/"+n, []int{5}, Normal(1))
			}
			out[n] = Float64s(s.Param(n, shape, GlorotUniform(1)))
		}
		return out
	}
	rev := make([]string, len(names))
	for i, n := range names {
		rev[len(names)-1-i] = n
	}
	a, b, c := build(7, names, false), build(7, rev, true), build(8, names, false)
	for _, n := range names {
		for i := range a[n] {
			if a[n][i] != b[n][i] {
				t.Fatalf("%s[%d]: %v in one order, %v in another", n, i, a[n][i], b[n][i])
			}
		}
		if a[n][0] == c[n][0] {
			t.Errorf("%s: seeds 7 and 8 give the same first value %v", n, a[n][0])
		}
	}
	for i := 1; i < len(names); i++ {
		if a[names[i]][0] == a[names[0]][0] {
			t.Errorf("%s and %s start with the same value", names[i], names[0])
		}
	}
}
