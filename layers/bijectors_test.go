package layers_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/layers/bijectortest"
)

func nvp(dim, couplings int, rng *rand.Rand) *layers.RealNVP {
	r := &layers.RealNVP{Dim: dim, Couplings: couplings,
		S: layers.MLP{Hidden: []int{10, 10}, Activation: "elu"},
		T: layers.MLP{Hidden: []int{10, 10}, Activation: "elu", ZeroLast: true}}
	for i := 0; i < (couplings+1)/2; i++ {
		r.Splits = append(r.Splits, layers.RandomHalfSplit(rng, dim))
	}
	return r
}

func TestCouplingConformance(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		for _, n := range []int{1, 2, 3} {
			bijectortest.Run(t, bijectortest.Case{
				Name: fmt.Sprintf("realnvp/%d/%v", n, dt), Bijector: layers.Columns{nvp(6, n, rng)}, Shape: []int{4, 6}, Dtype: dt, Seed: 3,
			})
		}
		joint := &layers.RealNVP{Dim: 8, Couplings: 4, Joint: true,
			S:      layers.ResMLP{Width: 12, Blocks: 2, WeightNorm: true, ZeroLast: true},
			Splits: []layers.Split{layers.CheckerboardSplit(2, 2), layers.CheckerboardSplit(2, 2)}}
		bijectortest.Run(t, bijectortest.Case{Name: fmt.Sprintf("realnvp-resmlp/%v", dt), Bijector: layers.Columns{joint}, Shape: []int{3, 8}, Dtype: dt, Seed: 4})
	}
}

func TestActNormConformance(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		bijectortest.Run(t, bijectortest.Case{Name: "actnorm/rows", Bijector: layers.Columns{layers.ActNorm{}}, Shape: []int{5, 7}, Dtype: dt, Seed: 5})
		bijectortest.Run(t, bijectortest.Case{Name: "actnorm/field", Bijector: layers.ActNorm{}, Shape: []int{2, 3, 4, 4}, Dtype: dt, Seed: 6})
		bijectortest.Run(t, bijectortest.Case{Name: "actnorm/per-site", Bijector: layers.ActNorm{PerSite: true}, Shape: []int{3, 2, 4, 4}, Dtype: dt, Seed: 7})
	}
}

func TestChainAndInvertConformance(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	chain := layers.Columns{layers.Chain{scoped{"a", nvp(4, 2, rng)}, scoped{"n", layers.ActNorm{}}, layers.Invert{scoped{"b", nvp(4, 3, rng)}}}}
	bijectortest.Run(t, bijectortest.Case{Name: "chain", Bijector: chain, Shape: []int{3, 4}, Seed: 7})
}

// scoped binds a bijector's parameters under its own sub-scope.
type scoped struct {
	name string
	b    layers.Bijector
}

func (s scoped) Forward(sc *layers.Scope, x *G.Node) (*G.Node, *G.Node, error) {
	return s.b.Forward(sc.Sub(s.name), x)
}
func (s scoped) Inverse(sc *layers.Scope, z *G.Node) (*G.Node, *G.Node, error) {
	return s.b.Inverse(sc.Sub(s.name), z)
}

func TestBlockLayerConformance(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, k := range []int{2, 4} {
		for _, c := range []int{1, 2, 3} {
			for _, L := range []int{4, 8} {
				h, err := layers.NewHierarchy(L, k)
				if err != nil {
					t.Fatal(err)
				}
				for l := 0; l < h.Levels(); l++ {
					for _, dec := range []bool{false, true} {
						bl := &layers.BlockLayer{Name: "blk", Hier: h, Level: l, Decimator: dec, Channels: c,
							Inner: nvp(c*k*k, 2, rng)}
						dt := tensor.Float64
						if (l+c)%2 == 1 {
							dt = tensor.Float32
						}
						bijectortest.Run(t, bijectortest.Case{
							Name:     fmt.Sprintf("block/k%d/C%d/L%d/level%d/dec=%v/%v", k, c, L, l, dec, dt),
							Bijector: bl, Shape: []int{2, c, L, L}, Dtype: dt, Seed: uint64(10*k + c),
						})
					}
				}
			}
		}
	}
}

func TestBlockLayerRejectsWrongShape(t *testing.T) {
	h, _ := layers.NewHierarchy(8, 2)
	bl := &layers.BlockLayer{Name: "blk", Hier: h, Level: 0, Channels: 2, Inner: nvp(8, 2, rand.New(rand.NewPCG(1, 1)))}
	g := G.NewGraph()
	s := layers.NewScope(g, layers.NewStore(tensor.Float64, 1))
	if _, _, err := bl.Forward(s, s.Input("x", 2, 1, 8, 8)); err == nil {
		t.Error("block layer accepted 1 channel where it was built for 2")
	}
	if _, _, err := bl.Forward(s, s.Input("y", 2, 2, 16, 16)); err == nil {
		t.Error("block layer accepted a 16×16 field where it was built for 8×8")
	}
}

// Larger lattices up to L=64 (the Jacobian check is skipped above 64 dimensions; everything else runs).
func TestBlockLayerLargeLattices(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, tc := range []struct{ L, k, c, level int }{{16, 2, 1, 2}, {32, 4, 3, 1}, {64, 2, 1, 0}, {64, 4, 3, 3}} {
		h, err := layers.NewHierarchy(tc.L, tc.k)
		if err != nil {
			t.Fatal(err)
		}
		for _, dec := range []bool{false, true} {
			bl := &layers.BlockLayer{Name: "blk", Hier: h, Level: tc.level, Decimator: dec, Channels: tc.c,
				Inner: nvp(tc.c*tc.k*tc.k, 2, rng)}
			bijectortest.Run(t, bijectortest.Case{
				Name:     fmt.Sprintf("block/k%d/C%d/L%d/level%d/dec=%v", tc.k, tc.c, tc.L, tc.level, dec),
				Bijector: bl, Shape: []int{2, tc.c, tc.L, tc.L}, Dtype: tensor.Float64, Seed: 5,
			})
		}
	}
}
