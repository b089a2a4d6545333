package diffusion

import (
	"flag"
	"math"
	"math/rand/v2"
	"testing"

	"rgflow/datasets/lattice"
)

var long = flag.Bool("long", false, "run the full-count sampler validations (10,000 samples per sampler)")

func mustLat(t testing.TB, L int) *Lattice {
	t.Helper()
	l, err := NewLattice(L)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// TestModeBasis: the mode coordinates are an orthogonal map (round trip, norm), coordinate 0 is M/L, and
// the packing matches the definition φ̃_k = V^{−1/2} Σ e^{−2πik·x/L} φ_x written out directly. Tolerance
// 1e-12: rounding of sums of ≤ 400 terms.
func TestModeBasis(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, L := range []int{4, 6, 8, 20} {
		l := mustLat(t, L)
		V := l.V
		x := make([]float64, V)
		var n2, M float64
		for i := range x {
			x[i] = rng.NormFloat64()
			n2 += x[i] * x[i]
			M += x[i]
		}
		u := make([]float64, V)
		l.ToModes(u, x)
		var m2 float64
		for _, v := range u {
			m2 += v * v
		}
		if math.Abs(m2-n2) > 1e-12*n2 {
			t.Errorf("L=%d: ‖u‖² = %v, ‖x‖² = %v", L, m2, n2)
		}
		if math.Abs(u[0]-M/float64(L)) > 1e-12 {
			t.Errorf("L=%d: u_0 = %v, M/L = %v", L, u[0], M/float64(L))
		}
		self := 0
		for j := range V {
			kx, ky, part := l.Momentum(j)
			var re, im float64
			for i := range L {
				for k := range L {
					ph := -2 * math.Pi * float64(kx*i+ky*k) / float64(L)
					re += x[i*L+k] * math.Cos(ph) / float64(L)
					im += x[i*L+k] * math.Sin(ph) / float64(L)
				}
			}
			want := map[string]float64{"real": re, "re": math.Sqrt2 * re, "im": math.Sqrt2 * im}[part]
			if math.Abs(u[j]-want) > 1e-12 {
				t.Errorf("L=%d: u[%d] (k=(%d,%d) %s) = %v, direct %v", L, j, kx, ky, part, u[j], want)
			}
			if part == "real" {
				self++
				if im > 1e-12 || (kx != 0 && kx != L/2) || (ky != 0 && ky != L/2) {
					t.Errorf("L=%d: mode (%d,%d) marked self-conjugate", L, kx, ky)
				}
			}
			if math.Abs(l.p2[j]-(4*math.Pow(math.Sin(math.Pi*float64(kx)/float64(L)), 2)+4*math.Pow(math.Sin(math.Pi*float64(ky)/float64(L)), 2))) > 1e-14 {
				t.Errorf("L=%d: p2[%d] wrong", L, j)
			}
		}
		if self != 4 {
			t.Errorf("L=%d: %d self-conjugate modes, want 4", L, self)
		}
		y := make([]float64, V)
		l.FromModes(y, u)
		for i := range x {
			if math.Abs(y[i]-x[i]) > 1e-12 {
				t.Fatalf("L=%d: round trip x[%d] = %v, got %v", L, i, x[i], y[i])
			}
		}
	}
}

// TestFreeVarianceMatchesLattice: a Gaussian with the free variances has the free field's exact G(r) and
// log-density (lattice.FreeG and FreeLogZ, independent code): ⟨φ_0 φ_r⟩ = (1/V) Σ_j v_j cos(k·r) is checked
// through G(0) = (1/V) Σ_j v_j, and log N(x) = −S(x) − ln Z on random fields. Tolerance 1e-12 relative.
func TestFreeVarianceMatchesLattice(t *testing.T) {
	for _, L := range []int{6, 8, 20} {
		l := mustLat(t, L)
		v := must[[]float64](t)(l.FreeVariance(0.5))
		var s float64
		for _, x := range v {
			s += x
		}
		if g := lattice.FreeG(L, 0.5, 0, 0); math.Abs(s/float64(l.V)-g) > 1e-12*g {
			t.Errorf("L=%d: (1/V) Σ v_j = %v, FreeG(0) = %v", L, s/float64(l.V), g)
		}
		a := must[*lattice.Phi4](t)(lattice.NewFree(L, 0.5))
		g := &Gaussian{Lat: l, Var: v}
		x := make([]float64, l.V)
		g.Sample(rand.New(rand.NewPCG(3, 4)), x)
		lp := make([]float64, 1)
		g.LogProb(x, lp)
		want := -a.Eval(x) - lattice.FreeLogZ(L, 0.5)
		if math.Abs(lp[0]-want) > 1e-11*math.Abs(want) {
			t.Errorf("L=%d: log N = %v, −S − ln Z = %v", L, lp[0], want)
		}
	}
}

// gT0 is G_t(0) = (1/V) Σ_j v_j(t) from a free start of mass² m2.
func gT0(t *testing.T, sde SDE, tt, m2 float64) (vMode func(kx, ky int) float64, g0 float64) {
	l := sde.Lattice()
	v0 := must[[]float64](t)(l.FreeVariance(m2))
	v := make([]float64, l.V)
	if err := MarginalVariance(sde, tt, v0, v); err != nil {
		t.Fatal(err)
	}
	for _, x := range v {
		g0 += x
	}
	return func(kx, ky int) float64 {
		for j := range v {
			if a, b, _ := l.Momentum(j); a == kx && b == ky {
				return v[j]
			}
		}
		return math.NaN()
	}, g0 / float64(l.V)
}

// TestCheckValues: the reference numbers of the two flows (L=8, m²=0.5, t=1), quoted to 5 decimals, and the
// closed forms written out independently.
func TestCheckValues(t *testing.T) {
	l := mustLat(t, 8)
	car := must[*Carosso](t)(NewCarosso(l, 2, 0, 2))
	vk, g0 := gT0(t, car, 1, 0.5)
	p := 4 * math.Pow(math.Sin(math.Pi/8), 2)
	closed := math.Exp(-2*p)/(p+0.5) + 2*(1-math.Exp(-2*p))/(2*p)
	if math.Abs(vk(0, 1)-1.46351) > 5e-6 || math.Abs(vk(0, 1)-closed) > 1e-13 {
		t.Errorf("Carosso v_(0,1)(1) = %.6f, want 1.46351 (closed form %.6f)", vk(0, 1), closed)
	}
	if math.Abs(vk(0, 0)-(2+2)) > 1e-13 {
		t.Errorf("Carosso zero mode v_0(1) = %v, want 1/m² + Ωt = 4", vk(0, 0))
	}
	if math.Abs(g0-0.42487) > 5e-6 {
		t.Errorf("Carosso G_t(0) = %.6f, want 0.42487", g0)
	}
	pol := must[*Polchinski](t)(NewPolchinski(l, MassRegulator{Mu2: 0.1}, 0.5, 2))
	vk, g0 = gT0(t, pol, 1, 0.5)
	if math.Abs(vk(0, 1)-0.46390) > 5e-6 || math.Abs(vk(0, 1)-math.Exp(-(p+0.1))/(p+0.5)) > 1e-13 {
		t.Errorf("Polchinski v_(0,1)(1) = %.6f, want 0.46390", vk(0, 1))
	}
	if math.Abs(g0-0.07509) > 5e-6 {
		t.Errorf("Polchinski G_t(0) = %.6f, want 0.07509", g0)
	}
	t.Logf("Carosso v_(0,1) = %.6f; Polchinski v_(0,1) = %.6f, G_t(0) = %.6f", closed, vk(0, 1), g0)
}

// TestSymmetrizeModes checks the orbit average against a brute-force enumeration of the 8 rotations and
// reflections of each coordinate's momentum (and its negative, which names the same mode), and that the
// free field's exact spectrum, which has the lattice symmetries, is left unchanged.
func TestSymmetrizeModes(t *testing.T) {
	for _, L := range []int{4, 6, 8, 10} {
		lat := mustLat(t, L)
		rng := rand.New(rand.NewPCG(uint64(L), 3))
		v := make([]float64, lat.V)
		for j := range v {
			v[j] = rng.Float64()
		}
		want := make([]float64, lat.V)
		mod := func(k int) int { return ((k % L) + L) % L }
		for j := range v {
			kx, ky, _ := lat.Momentum(j)
			images := map[[2]int]bool{}
			for _, p := range [][2]int{{kx, ky}, {ky, kx}} {
				for _, sx := range []int{1, -1} {
					for _, sy := range []int{1, -1} {
						images[[2]int{mod(sx * p[0]), mod(sy * p[1])}] = true
					}
				}
			}
			s, n := 0.0, 0
			for i := range v {
				ix, iy, _ := lat.Momentum(i)
				if images[[2]int{ix, iy}] {
					s += v[i]
					n++
				}
			}
			want[j] = s / float64(n)
		}
		got := append([]float64(nil), v...)
		if err := lat.SymmetrizeModes(got); err != nil {
			t.Fatal(err)
		}
		for j := range got {
			if math.Abs(got[j]-want[j]) > 1e-12 { // sums of ≤ 8 numbers in [0, 1): rounding only
				t.Fatalf("L=%d coordinate %d: %v, brute force %v", L, j, got[j], want[j])
			}
		}
		free, err := lat.FreeVariance(0.5)
		if err != nil {
			t.Fatal(err)
		}
		sym := append([]float64(nil), free...)
		if err := lat.SymmetrizeModes(sym); err != nil {
			t.Fatal(err)
		}
		for j := range sym {
			if math.Abs(sym[j]-free[j]) > 1e-14*free[j] { // p̂² is computed once per coordinate: equal values, rounding only
				t.Fatalf("L=%d coordinate %d: free spectrum changed %v → %v", L, j, free[j], sym[j])
			}
		}
	}
	if err := mustLat(t, 4).SymmetrizeModes(make([]float64, 15)); err == nil {
		t.Fatal("SymmetrizeModes accepted 15 values on a 4×4 lattice")
	}
}
