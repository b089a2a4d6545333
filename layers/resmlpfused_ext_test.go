package layers_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/layers/bijectortest"
)

func resNVP(unfused, weightNorm bool, blocks int) *layers.RealNVP {
	return &layers.RealNVP{Dim: 8, Couplings: 3, Joint: true, Unfused: unfused,
		S:      layers.ResMLP{Width: 10, Blocks: blocks, WeightNorm: weightNorm, ZeroLast: true},
		Splits: []layers.Split{layers.CheckerboardSplit(2, 2), layers.CheckerboardSplit(2, 2)}}
}

// The fused residual-MLP stack passes the bijector conformance suite (identity at initialisation, round
// trips, log-dets against finite-difference Jacobians, a gradient for every parameter), with and without
// weight normalisation and residual blocks, as does its unfused reference.
func TestFusedResMLPConformance(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		for _, unfused := range []bool{false, true} {
			for _, c := range []struct {
				wn     bool
				blocks int
			}{{true, 1}, {false, 0}, {false, 2}} {
				bijectortest.Run(t, bijectortest.Case{
					Name:     fmt.Sprintf("resmlp/%v/unfused=%v/wn=%v/blocks=%d", dt, unfused, c.wn, c.blocks),
					Bijector: layers.Columns{resNVP(unfused, c.wn, c.blocks)}, Shape: []int{4, 8}, Dtype: dt, Seed: 8,
				})
			}
		}
	}
}

// With an Arena, the fused stack's unpacked outputs and gradients are recycled from run to run: the same
// loss and gradients bit for bit as the graph that allocates afresh, over runs with new inputs, and no new
// tensors after the first run.
func TestFusedResMLPArena(t *testing.T) {
	const dim, n = 8, 13
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		store := layers.NewStore(dt, 6)
		type rig struct {
			x    *G.Node
			m    G.VM
			vals []G.Value
		}
		build := func(ar *layers.Arena) *rig {
			g := G.NewGraph()
			s := layers.NewScope(g, store)
			s.SetArena(ar)
			r := &rig{x: s.Input("x", dim, n)}
			y, ld, err := resNVP(false, true, 1).Forward(s, r.x)
			if err != nil {
				t.Fatal(err)
			}
			y3 := G.Must(G.HadamardProd(G.Must(G.Square(y)), y))
			loss := G.Must(G.Add(G.Must(G.Sum(y3)), G.Must(G.Sum(ld))))
			_, params := s.Params()
			grads, err := layers.Grad(loss, append([]*G.Node{r.x}, params...)...)
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
		arena := layers.NewArena()
		reused, fresh := build(arena), build(nil)
		defer reused.m.Close()
		defer fresh.m.Close()
		store.Perturb(rand.New(rand.NewPCG(1, 1)), 0.3)
		run := func(r *rig, x []float64) [][]float64 {
			if err := G.Let(r.x, layers.NewDense(dt, []int{dim, n}, x)); err != nil {
				t.Fatal(err)
			}
			if err := r.m.RunAll(); err != nil {
				t.Fatal(err)
			}
			defer r.m.Reset()
			out := make([][]float64, len(r.vals))
			for i, v := range r.vals {
				if tt, ok := v.(tensor.Tensor); ok {
					out[i] = slices.Clone(layers.Float64s(tt))
				} else {
					out[i] = layers.ValueFloats(v)
				}
			}
			return out
		}
		rng := rand.New(rand.NewPCG(2, 2))
		var allocated int
		for k := 0; k < 4; k++ {
			x := make([]float64, dim*n)
			for i := range x {
				x[i] = rng.NormFloat64()
			}
			arena.Reset()
			got, want := run(reused, x), run(fresh, x)
			for i := range want {
				if !slices.Equal(got[i], want[i]) {
					t.Fatalf("%v run %d: value %d differs between the arena graph and the fresh one", dt, k, i)
				}
			}
			handed, news := arena.Stats()
			switch {
			case k == 0:
				if news == 0 {
					t.Fatalf("%v: the arena handed out nothing", dt)
				}
				allocated = news
			case news != allocated:
				t.Errorf("%v run %d: %d tensors allocated in all, %d after the first run", dt, k, news, allocated)
			case handed != (k+1)*allocated:
				t.Errorf("%v run %d: %d tensors handed out, want %d per run", dt, k, handed, allocated)
			}
		}
	}
}
