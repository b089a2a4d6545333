package layers_test

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
)

// A time-conditioned score network s(x, t) on 8×8 periodic fields: a sinusoidal embedding of t feeds FiLM
// in every hidden layer of a D4-symmetrised CNN.
func ExampleCNN() {
	const batch, L = 4, 8
	g := G.NewGraph()
	store := layers.NewStore(tensor.Float64, 1)
	s := layers.NewScope(g, store)
	x := s.Input("x", batch, 1, L, L)
	t := s.Input("t", batch)

	emb, err := layers.SinusoidalEmbedding{Dim: 16, Scale: 1000}.Apply(t) // (B, 16)
	if err != nil {
		panic(err)
	}
	net := layers.CNN{In: 1, Out: 1, Hidden: []int{16, 16}, Activation: "swish", Groups: 4, ZeroLast: true, D4: true}
	score, err := net.ApplyCond(s.Sub("score"), x, emb)
	if err != nil {
		panic(err)
	}
	// conv0 16·9+16, norm0 2·16, film0 32·16+32, conv1 16·16·9+16, norm1 32, film1 544, out 16·9+1.
	fmt.Println("score", score.Shape(), "parameters", store.NumParams())
	// Output: score (4, 1, 8, 8) parameters 3777
}
