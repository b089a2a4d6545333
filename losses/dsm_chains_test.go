package losses

import (
	"math"
	"math/rand/v2"
	"testing"

	"rgflow/datasets/lattice"
	"rgflow/models/diffusion"
)

// TestDSMImportanceTimes: importance sampling of t leaves the objective unchanged in expectation. For the
// exact score and a wrong one, under both weightings, the Monte Carlo mean of the loss with t drawn by
// importance (and the correction factor) agrees with the mean under uniform t within 4 combined standard
// errors (4σ: 4 comparisons at fixed seeds), and for the exact score both agree with the analytic
// t-average. For the likelihood weighting, whose target grows like 1/t, the standard error with
// importance sampling must be smaller than with uniform t; for the variance weighting the proposal is flat
// and the correction factor is exactly 1.
func TestDSMImportanceTimes(t *testing.T) {
	const n = 6000
	for _, w := range []string{"variance", "likelihood"} {
		d, v0 := dsmFree(t, n, w)
		exact, err := diffusion.NewFreeScore(d.Net.Process(), v0)
		if err != nil {
			t.Fatal(err)
		}
		pv := make([]float64, len(v0))
		for j := range pv {
			pv[j] = v0[j] * (1 + 0.5*float64(j%3))
		}
		wrong, err := diffusion.NewFreeScore(d.Net.Process(), pv)
		if err != nil {
			t.Fatal(err)
		}
		for name, sc := range map[string]diffusion.Score{"exact": exact, "wrong": wrong} {
			d.TSampling = "uniform"
			mu, su, err := d.Evaluate(sc, n, rand.New(rand.NewPCG(1, 2)))
			if err != nil {
				t.Fatal(err)
			}
			d.TSampling = "importance"
			mi, si, err := d.Evaluate(sc, n, rand.New(rand.NewPCG(3, 4)))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s, %s score: uniform %.5g ± %.2g, importance %.5g ± %.2g", w, name, mu, su, mi, si)
			if math.Abs(mu-mi) > 4*math.Hypot(su, si) {
				t.Errorf("%s, %s score: uniform %.5g ± %.2g, importance %.5g ± %.2g", w, name, mu, su, mi, si)
			}
			if name == "exact" {
				if want := analyticDSM(t, d, v0); math.Abs(mi-want) > 4*si {
					t.Errorf("%s: importance %.5g ± %.2g, analytic %.5g", w, mi, si, want)
				}
			}
			if w == "likelihood" && !(si < su) {
				t.Errorf("likelihood weighting, %s score: importance error %.3g not below uniform %.3g", name, si, su)
			}
		}
		if w == "variance" {
			for i, p := range d.times.p {
				if math.Abs(p*timeCells-1) > 1e-12 {
					t.Fatalf("variance weighting: cell %d has probability %v, want the flat 1/%d", i, p, timeCells)
				}
			}
		}
	}
	d, _ := dsmFree(t, 10, "variance")
	d.TSampling = "stratified"
	if _, err := d.Build(nil, 1); err == nil {
		t.Error("t sampling \"stratified\" accepted")
	}
}

// TestHMCChainsState: chains saved after some steps and restored into fresh chains continue bit for bit,
// and a damaged or mismatched state is refused without changing the chains.
func TestHMCChainsState(t *testing.T) {
	act, err := lattice.NewPhi4(4, -1, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	cfg := HMCChainsConfig{Chains: 3, Seed: 9, Thermalize: 20, Every: 2}
	a, _ := NewHMCChains(act, cfg)
	if a.State() != "" {
		t.Error("unthermalised chains have a state")
	}
	for range 5 {
		if err := a.Advance(); err != nil {
			t.Fatal(err)
		}
	}
	st := a.State()
	b, _ := NewHMCChains(act, cfg)
	if err := b.Restore(st); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		a.Advance()
		b.Advance()
	}
	for c := range 3 {
		fa, fb := a.Field(c), b.Field(c)
		for i := range fa {
			if fa[i] != fb[i] {
				t.Fatalf("chain %d site %d: %v straight, %v restored", c, i, fa[i], fb[i])
			}
		}
	}
	if a.Acceptance() != b.Acceptance() || !(a.Acceptance() > 0.3) {
		t.Errorf("acceptance %v straight, %v restored", a.Acceptance(), b.Acceptance())
	}
	// A fresh start from the same seed gives the same chains (the thermalisation is seeded).
	c2, _ := NewHMCChains(act, cfg)
	for range 9 {
		c2.Advance()
	}
	if c2.Field(1)[3] != a.Field(1)[3] {
		t.Error("the same seed gave different chains")
	}
	other, _ := NewHMCChains(act, HMCChainsConfig{Chains: 2, Seed: 9})
	if err := other.Restore(st); err == nil {
		t.Error("a state of 3 chains restored into 2")
	}
	if err := b.Restore(st[:len(st)-8]); err == nil {
		t.Error("a truncated state restored")
	}
	if b.Field(0)[0] != a.Field(0)[0] {
		t.Error("a refused restore changed the chains")
	}
}
