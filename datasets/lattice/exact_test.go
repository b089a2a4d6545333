package lattice

import (
	"fmt"
	"math"
	"math/bits"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// relClose reports |a − b| ≤ tol·max(1, |b|).
func relClose(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b))
}

func TestFreeReferenceValues(t *testing.T) {
	// Published reference values for L=8, m²=0.5 (quoted to 10 and 7 significant digits, hence the
	// tolerances).
	const L, m2 = 8, 0.5
	V := float64(L * L)
	if got := FreeLogZ(L, m2) / V; math.Abs(got-0.2355017011) > 1e-10 {
		t.Errorf("FreeLogZ(8, 0.5)/V = %.12f, want 0.2355017011", got)
	}
	if got := FreeG(L, m2, 0, 0); math.Abs(got-0.3175927) > 5e-8 {
		t.Errorf("G(0) = %.9f, want 0.3175927", got)
	}
	// G(L/2) is the separation L/2 along one axis; both axes agree by symmetry.
	for _, r := range [][2]int{{4, 0}, {0, 4}, {-4, 0}, {12, 8}} {
		if got := FreeG(L, m2, r[0], r[1]); math.Abs(got-0.0148408) > 5e-8 {
			t.Errorf("G(%d,%d) = %.9f, want 0.0148408", r[0], r[1], got)
		}
	}
	// Σ_r G(r) = G̃(0) = 1/m², and G(0) = (1/V) Σ_k G̃(k): consistency of the two transforms (rounding only).
	var sum, gt float64
	for x := range L {
		for y := range L {
			sum += FreeG(L, m2, x, y)
			gt += FreeGTilde(L, m2, x, y)
		}
	}
	if !relClose(sum, 1/m2, 1e-12) || !relClose(FreeGTilde(L, m2, 0, 0), 1/m2, 1e-15) {
		t.Errorf("Σ_r G(r) = %v, G̃(0) = %v, want 1/m² = %v", sum, FreeGTilde(L, m2, 0, 0), 1/m2)
	}
	if !relClose(gt/V, FreeG(L, m2, 0, 0), 1e-13) {
		t.Errorf("(1/V) Σ_k G̃(k) = %v, G(0) = %v", gt/V, FreeG(L, m2, 0, 0))
	}
	// The renormalised-mass estimator m_R² = 4 sin²(π/L) / (G̃(0)/G̃(p₁) − 1) is exact on the exact propagator.
	s := math.Sin(math.Pi / L)
	mR2 := 4 * s * s / (FreeGTilde(L, m2, 0, 0)/FreeGTilde(L, m2, 1, 0) - 1)
	if !relClose(mR2, m2, 1e-12) {
		t.Errorf("m_R² from exact G̃ = %v, want %v", mR2, m2)
	}
}

// hessianFromForce builds the Hessian of S as −∂Force/∂φ by central differences. For a quadratic action the
// force is linear and the difference is exact up to rounding.
func hessianFromForce(a Action, n int, h float64) *mat.SymDense {
	phi := make([]float64, n)
	fp := make([]float64, n)
	fm := make([]float64, n)
	H := mat.NewSymDense(n, nil)
	for j := range n {
		phi[j] = h
		a.Force(fp, phi)
		phi[j] = -h
		a.Force(fm, phi)
		phi[j] = 0
		for i := 0; i <= j; i++ {
			H.SetSym(i, j, -(fp[i]-fm[i])/(2*h))
		}
	}
	return H
}

func TestFreeLogZBruteForce(t *testing.T) {
	// ln Z = (V/2) ln 2π − ½ ln det H with H the Hessian of the host action (Gaussian integral), computed
	// by Cholesky in gonum: independent of the Fourier formula. Tolerance 1e-10 relative: rounding of a
	// 400×400 Cholesky is ~1e-12. L = 6, 10, 20 are the even sizes that are not powers of two.
	for _, c := range []struct {
		L  int
		m2 float64
	}{{4, 0.5}, {8, 0.5}, {8, 0.05}, {4, 3}, {6, 0.5}, {10, 0.5}, {20, 0.5}, {6, 0.05}} {
		a, err := NewFree(c.L, c.m2)
		if err != nil {
			t.Fatal(err)
		}
		V := c.L * c.L
		H := hessianFromForce(a, V, 1)
		var ch mat.Cholesky
		if !ch.Factorize(H) {
			t.Fatalf("L=%d m²=%v: Hessian not positive definite", c.L, c.m2)
		}
		brute := 0.5*float64(V)*math.Log(2*math.Pi) - 0.5*ch.LogDet()
		if got := FreeLogZ(c.L, c.m2); !relClose(got, brute, 1e-10) {
			t.Errorf("L=%d m²=%v: FreeLogZ = %.14f, Gaussian integral of the host action = %.14f", c.L, c.m2, got, brute)
		}
		// G(r) is the inverse Hessian: check G(0) and G(1,0) against (H⁻¹)_{00}, (H⁻¹)_{0,L}.
		var inv mat.SymDense
		if err := ch.InverseTo(&inv); err != nil {
			t.Fatal(err)
		}
		if g := FreeG(c.L, c.m2, 0, 0); !relClose(g, inv.At(0, 0), 1e-10) {
			t.Errorf("L=%d: G(0) = %v, (H⁻¹)_00 = %v", c.L, g, inv.At(0, 0))
		}
		if g := FreeG(c.L, c.m2, 1, 0); !relClose(g, inv.At(0, c.L), 1e-10) {
			t.Errorf("L=%d: G(1,0) = %v, (H⁻¹)_{0,L} = %v", c.L, g, inv.At(0, c.L))
		}
		// G(L/2, 1) at site (L/2, 1) = index (L/2)·L + 1.
		if g := FreeG(c.L, c.m2, c.L/2, 1); !relClose(g, inv.At(0, c.L/2*c.L+1), 1e-10) {
			t.Errorf("L=%d: G(L/2,1) = %v, H⁻¹ = %v", c.L, g, inv.At(0, c.L/2*c.L+1))
		}
	}
}

// enumerateIsingLogZ is ln Z of the periodic L×L Ising model by enumerating all 2^N states (N ≤ 20):
// the number of unsatisfied bonds u fixes E = 2u − 2N; states are counted per u and summed in log space.
func enumerateIsingLogZ(L int, T float64) float64 {
	N := L * L
	hist := make([]float64, 2*N+1)
	for s := uint32(0); s < 1<<N; s++ {
		// right (down) holds at bit i the spin of i's right (lower) neighbour; for L = 2 both periodic
		// images of a neighbour count, as in Kaufman's formula.
		var right, down uint32
		for r := range L {
			for c := range L {
				i := r*L + c
				bit := (s >> uint(i)) & 1
				right |= bit << uint(r*L+(c+L-1)%L) // site left of (r,c) sees (r,c) as its right neighbour
				down |= bit << uint(((r+L-1)%L)*L+c)
			}
		}
		u := bits.OnesCount32(s^right) + bits.OnesCount32(s^down)
		hist[u]++
	}
	mx := math.Inf(-1)
	terms := make([]float64, 0, len(hist))
	for u, g := range hist {
		if g == 0 {
			continue
		}
		E := float64(2*u - 2*N)
		v := math.Log(g) - E/T
		terms = append(terms, v)
		mx = math.Max(mx, v)
	}
	var sum float64
	for _, v := range terms {
		sum += math.Exp(v - mx)
	}
	return mx + math.Log(sum)
}

func TestKaufmanAgainstEnumeration(t *testing.T) {
	// 2¹⁶ states at L = 4 (and 2⁴ at L = 2). Tolerance 1e-10 relative: both sides are sums of positive terms
	// except Kaufman's signed combination, whose cancellation loses at most a few digits at these sizes.
	for _, L := range []int{2, 4} {
		for _, T := range []float64{IsingTc(), 2.5, 1.5, 5, 1, 20, 0.2, 0.01, 0.001, 1e4} {
			want := enumerateIsingLogZ(L, T)
			if got := KaufmanLogZ(L, T); !relClose(got, want, 1e-10) {
				t.Errorf("L=%d T=%v: KaufmanLogZ = %.14f, enumeration = %.14f", L, T, got, want)
			}
		}
	}
	if got := IsingTc(); math.Abs(got-2.269185314213022) > 1e-14 {
		t.Errorf("IsingTc = %.15f", got)
	}
}

// transferIsingLogZ is ln Z of the periodic L×L Ising model from the row-to-row transfer matrix
// (2^L states per row, L ≤ 8): Z = Tr Tᴸ with T_{s,s'} = exp((E_row(s)/2 + E_row(s')/2 + E_bond(s,s'))/T')
// written as the symmetric form; computed by repeated multiplication in float64 with a running log scale.
func transferIsingLogZ(L int, T float64) float64 {
	n := 1 << L
	rowE := func(s int) float64 { // −Σ_c σ_c σ_{c+1} within a row (periodic)
		var e float64
		for c := range L {
			a, b := (s>>c)&1, (s>>((c+1)%L))&1
			if a == b {
				e--
			} else {
				e++
			}
		}
		return e
	}
	bondE := func(s, u int) float64 { // −Σ_c σ_c σ'_c between two rows
		d := bits.OnesCount(uint(s ^ u))
		return float64(2*d - L)
	}
	tm := mat.NewDense(n, n, nil)
	for s := range n {
		for u := range n {
			tm.Set(s, u, math.Exp(-(0.5*rowE(s)+0.5*rowE(u)+bondE(s, u))/T))
		}
	}
	p := mat.NewDense(n, n, nil)
	p.Copy(tm)
	logScale := 0.0
	for range L - 1 {
		var q mat.Dense
		q.Mul(p, tm)
		mx := mat.Max(&q)
		q.Scale(1/mx, &q)
		logScale += math.Log(mx)
		p = &q
	}
	return logScale + math.Log(mat.Trace(p))
}

// TestKaufmanTransferMatrix checks Kaufman's formula at L = 6 (not a power of two) against the transfer
// matrix, above, at and below T_c. Tolerance 1e-10 relative: 64×64 products in float64.
func TestKaufmanTransferMatrix(t *testing.T) {
	for _, L := range []int{4, 6} {
		for _, T := range []float64{1.5, IsingTc(), 3.5} {
			want := transferIsingLogZ(L, T)
			if got := KaufmanLogZ(L, T); !relClose(got, want, 1e-10) {
				t.Errorf("L=%d T=%v: Kaufman %.12f, transfer matrix %.12f", L, T, got, want)
			}
		}
	}
}

func TestKaufmanLargeLattice(t *testing.T) {
	// Far from any enumeration: ln Z/N must approach Onsager's infinite-volume value at T_c,
	// ln Z/N = 2G/π + ½ ln 2 = 0.929695398… (G Catalan's constant); finite-size corrections are O(1/L²).
	const onsagerTc = 0.9296953983416107
	for _, L := range []int{64, 256} {
		f := KaufmanLogZ(L, IsingTc()) / float64(L*L)
		if math.Abs(f-onsagerTc) > 1.0/float64(L*L) {
			t.Errorf("L=%d: ln Z/N at T_c = %.12f, Onsager %.12f", L, f, onsagerTc)
		}
	}
	// Above T_c the signed γ₀ matters: ln Z must stay finite and decrease with T (∂ ln Z/∂T = ⟨E⟩/T² < 0).
	prev := math.Inf(1)
	for T := 0.5; T < 10; T += 0.25 {
		v := KaufmanLogZ(32, T)
		if math.IsNaN(v) || v >= prev {
			t.Errorf("KaufmanLogZ(32, %v) = %v not decreasing (previous %v)", T, v, prev)
		}
		prev = v
	}
}

func TestExactInvalidInputs(t *testing.T) {
	for name, v := range map[string]float64{
		"FreeLogZ L=7":         FreeLogZ(7, 0.5),
		"FreeLogZ L=1":         FreeLogZ(1, 0.5),
		"FreeLogZ m2=0":        FreeLogZ(8, 0),
		"FreeLogZ m2=NaN":      FreeLogZ(8, math.NaN()),
		"FreeG L=-4":           FreeG(-4, 0.5, 0, 0),
		"FreeGTilde m2<0":      FreeGTilde(8, -1, 0, 0),
		"KaufmanLogZ T=0":      KaufmanLogZ(4, 0),
		"KaufmanLogZ T=Inf":    KaufmanLogZ(4, math.Inf(1)),
		"KaufmanLogZ L=3":      KaufmanLogZ(3, 2),
		"IsingRelaxedLogZ T<0": IsingRelaxedLogZ(4, -1),
		"IsingRelaxedLogZ L=0": IsingRelaxedLogZ(0, 2),
	} {
		if !math.IsNaN(v) {
			t.Errorf("%s = %v, want NaN", name, v)
		}
	}
}

func ExampleFreeLogZ() {
	const L, m2 = 8, 0.5
	fmt.Printf("ln Z/V = %.10f, G(0) = %.7f, G(L/2, 0) = %.7f\n",
		FreeLogZ(L, m2)/(L*L), FreeG(L, m2, 0, 0), FreeG(L, m2, L/2, 0))
	// Output: ln Z/V = 0.2355017011, G(0) = 0.3175927, G(L/2, 0) = 0.0148408
}

func ExampleKaufmanLogZ() {
	fmt.Printf("T_c = %.6f, ln Z(L=4, T_c) = %.10f, ln Z_x(L=4, T_c) = %.10f\n",
		IsingTc(), KaufmanLogZ(4, IsingTc()), IsingRelaxedLogZ(4, IsingTc()))
	// Output: T_c = 2.269185, ln Z(L=4, T_c) = 15.5219154588, ln Z_x(L=4, T_c) = 37.3767316899
}
