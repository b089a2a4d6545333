package losses

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/models"
)

// At initialisation the flow is the identity, so x = z and log q(x) = log N(z; 0, 1): the graph loss must
// equal the host computation mean[log N(z) + S_host(z)] with the same z, to rounding (1e-12 relative,
// float64).
func TestReverseKLAtIdentityMatchesHost(t *testing.T) {
	act, err := lattice.NewPhi4(4, -1, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := models.Preset("neuralrg-small", 4, 1)
	flow, _ := models.Build(cfg)
	for _, sym := range []bool{false, true} {
		obj := &ReverseKL{Flow: flow, Action: act, Symmetrize: sym}
		store := layers.NewStore(tensor.Float64, 1)
		g := G.NewGraph()
		loss, err := obj.Build(layers.NewScope(g, store), 6)
		if err != nil {
			t.Fatal(err)
		}
		var lv G.Value
		G.Read(loss, &lv)
		m := layers.MustNewTapeMachine(g)
		if err := obj.Feed(rand.New(rand.NewPCG(2, 2))); err != nil {
			t.Fatal(err)
		}
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		z := layers.Float64s(obj.zVal)
		want := 0.0
		for b := 0; b < 6; b++ {
			phi := z[b*16 : (b+1)*16]
			lq := 0.0
			for _, v := range phi {
				lq += -v*v/2 - 0.5*math.Log(2*math.Pi)
			}
			// q at the identity is even, so q_s = q.
			want += (lq + act.Eval(phi)) / 6
		}
		got := layers.ValueFloats(lv)[0]
		if math.Abs(got-want) > 1e-12*math.Abs(want) {
			t.Errorf("symmetrize=%v: graph loss %.15g, host %.15g", sym, got, want)
		}
		met := obj.Metrics()
		if math.Abs(met["free_energy"]-want) > 1e-12*math.Abs(want) {
			t.Errorf("free_energy metric %g, want %g", met["free_energy"], want)
		}
		m.Close()
	}
}

func TestBetaAnnealing(t *testing.T) {
	r := &ReverseKL{BetaStart: 0.2, BetaSteps: 100}
	for _, tc := range []struct {
		step int64
		want float64
	}{{0, 0.2}, {50, 0.6}, {100, 1}, {1000, 1}} {
		if got := r.Beta(tc.step); math.Abs(got-tc.want) > 1e-15 {
			t.Errorf("β(%d) = %g, want %g", tc.step, got, tc.want)
		}
	}
}

func TestEstimators(t *testing.T) {
	// Equal weights: ESS = 1, log mean exp = the common value, zero error.
	lz, e := LogMeanExp([]float64{3, 3, 3, 3})
	if math.Abs(lz-3) > 1e-15 || e > 1e-15 {
		t.Errorf("LogMeanExp of equal weights = %g ± %g, want 3 ± 0", lz, e)
	}
	if ess := ESS([]float64{1, 1, 1}); math.Abs(ess-1) > 1e-15 {
		t.Errorf("ESS of equal weights = %g", ess)
	}
	// One dominant weight among n: ESS → 1/n.
	if ess := ESS([]float64{0, -1000, -1000, -1000}); math.Abs(ess-0.25) > 1e-12 {
		t.Errorf("ESS with one dominant weight = %g, want 0.25", ess)
	}
	// Against direct evaluation with large offsets (stability).
	lw := []float64{1000.5, 999.2, 1001.1, 1000}
	s := 0.0
	for _, x := range lw {
		s += math.Exp(x - 1000)
	}
	if lz, _ := LogMeanExp(lw); math.Abs(lz-(1000+math.Log(s/4))) > 1e-12 {
		t.Errorf("LogMeanExp = %.15g, want %.15g", lz, 1000+math.Log(s/4))
	}
	m, se := MeanStdErr([]float64{1, 2, 3, 4})
	if m != 2.5 || math.Abs(se-math.Sqrt(5.0/3/4)) > 1e-15 {
		t.Errorf("MeanStdErr = %g ± %g", m, se)
	}
}
