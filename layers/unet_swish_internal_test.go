package layers

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

// The fused Swish kernels of GroupNormAct give the bits of the passes they replace: swish(a·x + b) those
// of the affine row product followed by the Swish op's activation, dy·Swish'(a·x + b) those of the
// affine product, the Swish gradient and the elementwise product; over lengths with and without a tail
// after the last whole vector, and inputs spanning the exp's clamps (|z| up to 200), ±0 and ±Inf.
func TestSwishAffineKernelsMatchPasses(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	want := 0 // elements the kernels cover per 16: all on builds with the AVX-512 kernel, none on others
	if swishAffineVec(make([]float32, 16), make([]float32, 16), 1, 0) == 16 {
		want = 16
	}
	t.Logf("kernel covers %d of 16", want)
	for _, n := range []int{0, 7, 16, 64, 77, 1024} {
		x, dy := make([]float32, n), make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 40)
			dy[i] = float32(rng.NormFloat64())
		}
		if n > 20 {
			x[3], x[4], x[5], x[6] = 0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1))
		}
		for _, ab := range [][2]float32{{1, 0}, {0.37, -1.5}, {-2.5, 0.25}} {
			a, b := ab[0], ab[1]
			z := make([]float32, n)
			if n > 0 {
				axpyRowsSet(z, []float32{a}, x, n, b)
			}
			ref, refG := make([]float32, n), make([]float32, n)
			applyAct(ref, z, actSwish)
			applyAct(refG, z, actSwishD1)
			mulElems(refG, dy, refG)
			got, gotG := make([]float32, n), make([]float32, n)
			done := swishAffine(got, x, a, b)
			doneG := swishGradAffine(gotG, dy, x, a, b)
			if exp := n / 16 * want; done != exp || doneG != exp {
				t.Fatalf("n=%d: kernels did %d and %d elements, want %d", n, done, doneG, exp)
			}
			for i := 0; i < done; i++ {
				if math.Float32bits(got[i]) != math.Float32bits(ref[i]) {
					t.Fatalf("n=%d a=%v b=%v: swish(a·x+b) at %d (x=%v): got %v, want %v", n, a, b, i, x[i], got[i], ref[i])
				}
			}
			for i := 0; i < doneG; i++ {
				if math.Float32bits(gotG[i]) != math.Float32bits(refG[i]) && !(gotG[i] != gotG[i] && refG[i] != refG[i]) {
					t.Fatalf("n=%d a=%v b=%v: dy·Swish'(a·x+b) at %d (x=%v): got %v, want %v", n, a, b, i, x[i], gotG[i], refG[i])
				}
			}
		}
	}
}

// GroupNormAct's backward op with the forward op's statistics (ops built with an arena) gives the bits of
// the one that recomputes them, for the x the forward op saw and for another x (which must not use them).
func TestGroupNormActStatsCache(t *testing.T) {
	for _, is32 := range []bool{false, true} {
		dt := tensor.Float64
		if is32 {
			dt = tensor.Float32
		}
		rng := rand.New(rand.NewPCG(13, 14))
		rnd := func(lo, hi float64, s ...int) *tensor.Dense {
			v := make([]float64, prod(s))
			for i := range v {
				v[i] = lo + (hi-lo)*rng.Float64()
			}
			return NewDense(dt, s, v)
		}
		b, c, h, w := 3, 8, 8, 8
		g := gnGeom{b: b, c: c, hw: h * w, groups: 2, eps: DefaultGroupNormEps, film: true, swish: true, shape: []int{b, c, h, w}}
		st := &gnStatsCache{}
		fwd, cached, fresh := gnActOp{g: g, st: st}, gnGradOp{g: g, st: st}, gnGradOp{g: g}
		scale, bias, gamma, beta := rnd(0.5, 1.5, c), rnd(-0.5, 0.5, c), rnd(-0.5, 0.5, b*c), rnd(-0.5, 0.5, b*c)
		for round := range 3 {
			x, dy := rnd(-2, 3, b, c, h, w), rnd(-1, 1, b, c, h, w)
			if _, err := fwd.Do(x, scale, bias, gamma, beta); err != nil {
				t.Fatal(err)
			}
			if round == 1 { // the backward op of another x than the forward op's
				x = rnd(-3, 2, b, c, h, w)
			}
			got, err := cached.Do(x, scale, bias, gamma, beta, dy)
			if err != nil {
				t.Fatal(err)
			}
			want, err := fresh.Do(x, scale, bias, gamma, beta, dy)
			if err != nil {
				t.Fatal(err)
			}
			gv, wv := Float64s(got.(*tensor.Dense)), Float64s(want.(*tensor.Dense))
			for i := range wv {
				if math.Float64bits(gv[i]) != math.Float64bits(wv[i]) {
					t.Fatalf("%v round %d: gradient %d with the forward op's statistics %v, recomputed %v", dt, round, i, gv[i], wv[i])
				}
			}
		}
	}
}
