package bulk

import (
	"math"
	"math/rand/v2"
	"testing"

	"rgflow/layers"
	"rgflow/models"
)

// The causal cone against a real flow with random weights: perturbing any latent outside the cone of a
// region leaves the region's values unchanged to 1e-12 (not bit for bit: the vectorised tanh/exp kernels
// treat a value differently by its position in the batch, which moves results by an ulp or so), and perturbing each latent inside moves at least one of them. The layer
// sequence is read from the built flow, here with repeat = 2.
func TestConeAgainstFlow(t *testing.T) {
	for _, tc := range []struct {
		preset string
		L      int
		repeat int
		region []int
	}{
		{"neuralrg-small", 8, 1, []int{3*8 + 3}},
		{"neuralrg-small", 8, 2, []int{5*8 + 1, 5*8 + 2}},
		{"rgflow-tiny", 16, 1, []int{7*16 + 7}},
	} {
		cfg, err := models.Preset(tc.preset, tc.L, 1)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Repeat = tc.repeat
		flow, err := models.Build(cfg)
		if err != nil {
			t.Fatal(err)
		}
		seq, err := layers.BlockSequence(flow.Bijector)
		if err != nil {
			t.Fatal(err)
		}
		if len(seq) != 2*tc.repeat*flow.Hier.Levels() {
			t.Fatalf("%d block layers, want %d", len(seq), 2*tc.repeat*flow.Hier.Levels())
		}
		_, store := testFlowCfg(t, cfg, 0.3, 21)
		n := tc.L * tc.L
		sm, err := models.NewSampler(flow, store, n+1)
		if err != nil {
			t.Fatal(err)
		}
		cone, err := flow.Hier.Cone(tc.region, seq)
		if err != nil {
			t.Fatal(err)
		}
		in := make([]bool, n)
		for _, lv := range cone {
			for _, s := range lv {
				in[s] = true
			}
		}
		// Sample 0 is the base z; sample 1+i perturbs latent i by 0.5.
		rng := rand.New(rand.NewPCG(1, 2))
		base := gauss(rng, n, 1)
		z := make([]float64, 0, (n+1)*n)
		z = append(z, base...)
		for i := range n {
			zi := append([]float64(nil), base...)
			zi[i] += 0.5
			z = append(z, zi...)
		}
		x, _, err := sm.Decode(z)
		if err != nil {
			t.Fatal(err)
		}
		sm.Close()
		for i := range n {
			moved := false
			for _, r := range tc.region {
				d := math.Abs(x[(1+i)*n+r] - x[r])
				if !in[i] && d > 1e-12 {
					t.Errorf("%s L=%d repeat=%d: latent %d outside the cone moved site %d by %g", tc.preset, tc.L, tc.repeat, i, r, d)
				}
				// A latent inside the cone moves the region by O(0.5·∂x/∂z) ≫ 1e-12 for random weights.
				moved = moved || d > 1e-9
			}
			if in[i] && !moved {
				t.Errorf("%s L=%d repeat=%d: latent %d is in the cone but moves nothing", tc.preset, tc.L, tc.repeat, i)
			}
		}
	}
}
