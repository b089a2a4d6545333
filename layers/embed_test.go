package layers_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/layers/layerstest"
)

func TestSinusoidalEmbedding(t *testing.T) {
	ts := []float64{0, 0.5, 3, -7.25, 812}
	e := layers.SinusoidalEmbedding{Dim: 8, MaxPeriod: 100}
	// Written out: K = 4, ω_k = 100^(−k/4) = 1, 10^(−1/2), 1/10, 10^(−3/2).
	omega := []float64{1, 1 / math.Sqrt(10), 0.1, 1 / math.Sqrt(1000)}
	want := make([]float64, 0, len(ts)*8)
	for _, tv := range ts {
		for _, w := range omega {
			want = append(want, math.Cos(w*tv))
		}
		for _, w := range omega {
			want = append(want, math.Sin(w*tv))
		}
	}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		for _, shape := range [][]int{{5}, {5, 1}} {
			got := evalNodes(t, dt, [][]int{shape}, [][]float64{ts}, func(in []*G.Node) (*G.Node, error) {
				y, err := e.Apply(in[0])
				if err == nil && (y.Shape()[0] != 5 || y.Shape()[1] != 8) {
					t.Fatalf("output shape %v, want (5, 8)", y.Shape())
				}
				return y, err
			})
			// float64: sin/cos of arguments ≤ 812 lose ≈ 812·2⁻⁵³ ≈ 1e-13. float32: the argument ω·t is
			// rounded to 2⁻²⁴ relative, an absolute error up to 812·6e-8 ≈ 5e-5 in the phase: 1e-4.
			tol := 1e-12
			if dt == tensor.Float32 {
				tol = 1e-4
			}
			compareVals(t, got, want, tol)
		}
	}
	// Scale multiplies t; the default period is 10000.
	w, err := layers.SinusoidalEmbedding{Dim: 4, Scale: 1000}.Frequencies()
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(w[0]-1000) > 1e-9 || math.Abs(w[1]-10) > 1e-9 { // 1000·10000^(−1/2) = 10
		t.Errorf("frequencies %v, want [1000 10]", w)
	}
}

func TestFourierEmbedding(t *testing.T) {
	e, err := layers.NewFourierEmbedding(rand.New(rand.NewPCG(4, 2)), 6, 3)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := layers.NewFourierEmbedding(rand.New(rand.NewPCG(4, 2)), 6, 3)
	if len(e.Freq) != 3 || e.Dim() != 6 {
		t.Fatalf("%d frequencies, dim %d, want 3 and 6", len(e.Freq), e.Dim())
	}
	for i := range e.Freq {
		if e.Freq[i] != again.Freq[i] {
			t.Fatalf("frequencies differ for the same seed: %v and %v", e.Freq, again.Freq)
		}
	}
	ts := []float64{0.1, -0.4, 0.93}
	var want []float64
	for _, tv := range ts {
		for _, f := range e.Freq {
			want = append(want, math.Sin(2*math.Pi*f*tv))
		}
		for _, f := range e.Freq {
			want = append(want, math.Cos(2*math.Pi*f*tv))
		}
	}
	got := evalNodes(t, tensor.Float64, [][]int{{3}}, [][]float64{ts}, func(in []*G.Node) (*G.Node, error) { return e.Apply(in[0]) })
	compareVals(t, got, want, 1e-12) // arguments ≤ 2π·10: a few ulp of sin/cos

	// The frequencies are N(0, std²): with 4000 draws the sample standard deviation is within
	// std·(1 ± 4/√(2·4000)) ≈ std·(1 ± 0.045) at 4σ.
	big, _ := layers.NewFourierEmbedding(rand.New(rand.NewPCG(9, 9)), 8000, 16)
	var s2 float64
	for _, f := range big.Freq {
		s2 += f * f
	}
	if sd := math.Sqrt(s2 / float64(len(big.Freq))); math.Abs(sd/16-1) > 0.045 {
		t.Errorf("sample std of the frequencies %g, want 16 ± 4.5%%", sd)
	}
}

func TestEmbeddingGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 1))
	four, _ := layers.NewFourierEmbedding(rng, 4, 0.5)
	for name, f := range map[string]func(*G.Node) (*G.Node, error){
		"sinusoidal": layers.SinusoidalEmbedding{Dim: 6, MaxPeriod: 10, Scale: 2}.Apply,
		"fourier":    four.Apply,
	} {
		t.Run(name, func(t *testing.T) {
			x := randVals(rng, 4, -1, 1)
			build := func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
				y, err := f(in[0])
				if err != nil {
					return nil, err
				}
				return wsum(g, y, "w", 3)
			}
			layerstest.GradCheck(t, [][]int{{4}}, [][]float64{x}, build, gradTol)
			layerstest.SecondOrderCheck(t, [][]int{{4}}, [][]float64{x}, [][]float64{randVals(rng, 4, -1, 1)}, build, gradTol)
		})
	}
}

func TestEmbeddingErrors(t *testing.T) {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 2, G.WithShape(3, 2), G.WithName("x"))
	tv := G.NewTensor(g, tensor.Float64, 1, G.WithShape(3), G.WithName("t"))
	_, err1 := layers.SinusoidalEmbedding{Dim: 4}.Apply(x)
	_, err2 := layers.SinusoidalEmbedding{Dim: 5}.Apply(tv)
	_, err3 := layers.NewFourierEmbedding(rand.New(rand.NewPCG(1, 1)), 3, 1)
	_, err4 := layers.NewFourierEmbedding(rand.New(rand.NewPCG(1, 1)), 4, 0)
	_, err5 := layers.FourierEmbedding{}.Apply(tv)
	_, err6 := layers.SinusoidalEmbedding{Dim: 4, MaxPeriod: 0.5}.Apply(tv)
	for i, c := range []struct {
		err  error
		want string
	}{
		{err1, "want (B) or (B, 1)"}, {err2, "dimension 5"}, {err3, "dimension 3"},
		{err4, "standard deviation 0"}, {err5, "no frequencies"}, {err6, "max period 0.5"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("case %d: error %v, want one containing %q", i, c.err, c.want)
		}
	}
}

func TestFourierEmbeddingBuffer(t *testing.T) {
	e, _ := layers.NewFourierEmbedding(rand.New(rand.NewPCG(4, 3)), 6, 2)
	ts := []float64{0.1, -0.4, 0.93}
	store := layers.NewStore(tensor.Float64, 0)
	viaBuffer := func() []float64 {
		return evalNodes(t, tensor.Float64, [][]int{{3}}, [][]float64{ts}, func(in []*G.Node) (*G.Node, error) {
			return e.ApplyBuffer(layers.NewScope(in[0].Graph(), store).Sub("emb"), in[0])
		})
	}
	want := evalNodes(t, tensor.Float64, [][]int{{3}}, [][]float64{ts}, func(in []*G.Node) (*G.Node, error) { return e.Apply(in[0]) })
	// The buffer path multiplies by 2π in the graph instead of on the host: one more rounding.
	compareVals(t, viaBuffer(), want, 1e-14)
	b, ok := store.GetBuffer("emb/freq")
	if !ok || !slices.Equal(layers.Float64s(b), e.Freq) {
		t.Fatalf("buffer emb/freq missing or not the frequencies (%v)", store.BufferNames())
	}
	if store.NumParams() != 0 {
		t.Errorf("the embedding created %d trainable parameters", store.NumParams())
	}
	// A restored buffer wins over Freq.
	other, _ := layers.NewFourierEmbedding(rand.New(rand.NewPCG(5, 5)), 6, 2)
	if err := store.SetBuffer("emb/freq", []int{1, 3}, other.Freq); err != nil {
		t.Fatal(err)
	}
	want = evalNodes(t, tensor.Float64, [][]int{{3}}, [][]float64{ts}, func(in []*G.Node) (*G.Node, error) { return other.Apply(in[0]) })
	compareVals(t, viaBuffer(), want, 1e-14)
	// A buffer of the wrong size is an error.
	short := layers.FourierEmbedding{Freq: []float64{1, 2}}
	g := G.NewGraph()
	tn := G.NewTensor(g, tensor.Float64, 1, G.WithShape(3), G.WithName("t"))
	if _, err := short.ApplyBuffer(layers.NewScope(g, store).Sub("emb"), tn); err == nil || !strings.Contains(err.Error(), "want (1, 2)") {
		t.Errorf("buffer of another size: %v", err)
	}
	// Gradient with respect to t through the buffer path.
	layerstest.GradCheck(t, [][]int{{3}}, [][]float64{ts}, func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
		y, err := e.ApplyBuffer(layers.NewScope(g, layers.NewStore(tensor.Float64, 0)).Sub("emb"), in[0])
		if err != nil {
			return nil, err
		}
		return wsum(g, y, "w", 4)
	}, gradTol)
}
