package train

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAdamVectorBits checks that the vector kernel (where the CPU has one) gives adamScalar's bits, element
// by element, for both dtypes, lengths that leave a scalar tail, with and without gradient scaling and
// decoupled decay, over gradients spanning many binades, exact zeros of both signs and a few non-finite values.
func TestAdamVectorBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 7))
	value := func() float64 {
		switch rng.IntN(40) {
		case 0:
			return 0
		case 1:
			return math.Copysign(0, -1)
		case 2:
			return math.Inf(1 - 2*rng.IntN(2))
		case 3:
			return math.NaN()
		}
		return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(16)-10))
	}
	for _, n := range []int{1, 7, 8, 13, 1000, 1027} {
		for _, cfg := range []AdamConfig{{}, {AdamW: true, WeightDecay: 0.01}, {WeightDecay: 0.01}} {
			for _, scale := range []float64{1, 0.37} {
				a := NewAdam(nil, cfg)
				for step := int64(1); step <= 3; step++ {
					c := a.coefs(1e-3, scale, step)
					p, g, m, v := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
					for i := range p {
						p[i], g[i] = value(), value()
						m[i], v[i] = rng.NormFloat64()*1e-3, math.Abs(rng.NormFloat64())*1e-6
					}
					checkAdamBits(t, p, g, m, v, c, n, cfg, scale)
					p32, g32, m32, v32 := to32(p), to32(g), to32(m), to32(v)
					checkAdamBits(t, p32, g32, m32, v32, c, n, cfg, scale)
				}
			}
		}
	}
}

func to32(x []float64) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}

func checkAdamBits[T float32 | float64](t *testing.T, p, g, m, v []T, c adamCoefs, n int, cfg AdamConfig, scale float64) {
	t.Helper()
	cp := func(x []T) []T { return append([]T(nil), x...) }
	p1, m1, v1 := cp(p), cp(m), cp(v)
	p2, m2, v2 := cp(p), cp(m), cp(v)
	adamUpdate(p1, g, m1, v1, c)
	adamScalar(p2, g, m2, v2, c)
	same := func(a, b T) bool {
		x, y := float64(a), float64(b)
		return math.Float64bits(x) == math.Float64bits(y) || math.IsNaN(x) && math.IsNaN(y)
	}
	for i := range p1 {
		if !same(p1[i], p2[i]) || !same(m1[i], m2[i]) || !same(v1[i], v2[i]) {
			t.Fatalf("%T n=%d %+v scale %g: element %d: (p, m, v) = (%v, %v, %v), the scalar loop (%v, %v, %v)",
				p, n, cfg, scale, i, p1[i], m1[i], v1[i], p2[i], m2[i], v2[i])
		}
	}
}

// BenchmarkAdamUpdate: one Adam step over 243,648 float32 parameters (the rgflow-small image preset),
// with the vector kernel where the CPU has one (Update) and with the scalar loop alone (Scalar).
func BenchmarkAdamUpdate(b *testing.B) {
	n := 243648
	p, g, m, v := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range g {
		g[i] = float32(i%97) * 1e-3
	}
	c := NewAdam(nil, AdamConfig{}).coefs(1e-3, 1, 5)
	b.Run("Update", func(b *testing.B) {
		for b.Loop() {
			adamUpdate(p, g, m, v, c)
		}
	})
	b.Run("Scalar", func(b *testing.B) {
		for b.Loop() {
			adamScalar(p, g, m, v, c)
		}
	})
}
