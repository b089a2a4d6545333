package losses

import (
	"fmt"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
)

// noiseFeed fills the noise inputs a flow registered in its loss graph (layers.Scope.Noise: the random
// probes of an ODE's Jacobian regulariser) with fresh standard-normal values before each run.
type noiseFeed struct {
	nodes []*G.Node
	vals  []*tensor.Dense
}

// newNoiseFeed collects the scope's noise inputs; every one must be (batch, …).
func newNoiseFeed(s *layers.Scope, batch int) (noiseFeed, error) {
	var f noiseFeed
	for _, n := range s.NoiseInputs() {
		sh := []int(n.Shape())
		if len(sh) == 0 || sh[0] != batch {
			return f, fmt.Errorf("losses: noise input %s has shape %v, want (%d, …)", n.Name(), sh, batch)
		}
		f.nodes = append(f.nodes, n)
		f.vals = append(f.vals, layers.NewDense(s.Dtype(), sh, nil))
	}
	return f, nil
}

// fillRow draws row k of every noise input from rng (row-major: the row's entries in order, input by input).
func (f noiseFeed) fillRow(rng *rand.Rand, k int) {
	for _, t := range f.vals {
		n := t.Shape().TotalSize() / t.Shape()[0]
		switch d := t.Data().(type) {
		case []float64:
			for i := range n {
				d[k*n+i] = rng.NormFloat64()
			}
		case []float32:
			for i := range n {
				d[k*n+i] = float32(rng.NormFloat64())
			}
		}
	}
}

// let binds the current values into the graph.
func (f noiseFeed) let() error {
	for i, n := range f.nodes {
		if err := G.Let(n, f.vals[i]); err != nil {
			return fmt.Errorf("losses: noise input %s: %w", n.Name(), err)
		}
	}
	return nil
}
