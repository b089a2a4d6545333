package lattice

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// Literal transcriptions of the AKS action S_A = Σ_x [Σ_μ (φ_{x+μ} − φ_x)² + m_A² φ² + λ_A φ⁴] and the hopping
// action S_H = Σ_x [−2κ Σ_μ φ_x φ_{x+μ} + φ_x² + λ_H (φ_x² − 1)²], in their own field variables, written
// independently of the package code. phi is (C, L, L).

func aksActionLiteral(L int, m2A, lambdaA float64, phiA []float64) float64 {
	var S float64
	for i := range L {
		for j := range L {
			x := phiA[i*L+j]
			for _, y := range []float64{phiA[((i+1)%L)*L+j], phiA[i*L+(j+1)%L]} {
				S += (y - x) * (y - x)
			}
			S += m2A*x*x + lambdaA*x*x*x*x
		}
	}
	return S
}

func hoppingActionLiteral(L, C int, kappa, lambdaH float64, phiH []float64) float64 {
	V := L * L
	var S float64
	for i := range L {
		for j := range L {
			s := i*L + j
			var r2 float64
			for c := range C {
				x := phiH[c*V+s]
				S += -2 * kappa * x * (phiH[c*V+((i+1)%L)*L+j] + phiH[c*V+i*L+(j+1)%L])
				r2 += x * x
			}
			S += r2 + lambdaH*(r2-1)*(r2-1)
		}
	}
	return S
}

func TestConventionsSamePhysics(t *testing.T) {
	// S_standard(φ) = S_AKS(φ/√2) = S_H(φ/√(2κ)) − V λ_H on random fields. Tolerance 1e-10 relative to
	// max(|S|, V): rounding only (the rescalings are exact in exact arithmetic).
	rng := rand.New(rand.NewPCG(7, 8))
	for _, L := range []int{4, 8} {
		V := L * L
		for _, p := range [][2]float64{{-4, 6.008}, {-4, 4.398}, {0.5, 0}, {1.3, 0.7}} {
			m2A, lambdaA := p[0], p[1]
			if lambdaA == 0 && m2A <= 0 {
				continue
			}
			aks, err := NewPhi4AKS(L, m2A, lambdaA)
			if err != nil {
				t.Fatal(err)
			}
			m2, lambda := AKSToStandard(m2A, lambdaA)
			std, err := NewPhi4(L, m2, lambda)
			if err != nil {
				t.Fatal(err)
			}
			phi := randomField(rng, V, 1.5)
			phiA := make([]float64, V)
			for i, v := range phi {
				phiA[i] = v / AKSFieldScale
			}
			want := aksActionLiteral(L, m2A, lambdaA, phiA)
			tol := 1e-10 * math.Max(math.Abs(want), float64(V))
			if got := std.Eval(phi); math.Abs(got-want) > tol {
				t.Errorf("L=%d AKS(%v,%v): S_std(φ) = %.15g, S_AKS(φ/√2) = %.15g", L, m2A, lambdaA, got, want)
			}
			if got := aks.Eval(phi); math.Abs(got-want) > tol {
				t.Errorf("L=%d AKS(%v,%v): NewPhi4AKS Eval(φ) = %.15g, S_AKS(φ/√2) = %.15g", L, m2A, lambdaA, got, want)
			}
			if aks.LogZOffset() != -0.5*float64(V)*math.Ln2 || aks.Convention() != "aks" {
				t.Errorf("AKS LogZOffset = %v, convention %q", aks.LogZOffset(), aks.Convention())
			}
		}
		for _, C := range []int{1, 2} {
			for _, p := range [][2]float64{{0.15, 1.145}, {0.2, 1.5}, {0.1, 0}, {0.3, 0.02}} {
				kappa, lambdaH := p[0], p[1]
				var a Action
				var off float64
				var err error
				if C == 1 {
					var h *Phi4
					h, err = NewPhi4Hopping(L, kappa, lambdaH)
					if h != nil {
						off = h.LogZOffset()
					}
					a = h
				} else {
					var h *O2
					h, err = NewO2Hopping(L, kappa, lambdaH)
					if h != nil {
						off = h.LogZOffset()
					}
					a = h
				}
				if err != nil {
					t.Fatal(err)
				}
				if want := -0.5*float64(C*V)*math.Log(2*kappa) - float64(V)*lambdaH; !relClose(off, want, 1e-15) {
					t.Errorf("hopping C=%d LogZOffset = %v, want %v", C, off, want)
				}
				phi := randomField(rng, C*V, 1.5)
				phiH := make([]float64, C*V)
				for i, v := range phi {
					phiH[i] = v / HoppingFieldScale(kappa)
				}
				want := hoppingActionLiteral(L, C, kappa, lambdaH, phiH) - float64(V)*lambdaH
				tol := 1e-10 * math.Max(math.Abs(want), float64(V))
				if got := a.Eval(phi); math.Abs(got-want) > tol {
					t.Errorf("L=%d C=%d hopping(%v,%v): S_std(φ) = %.15g, S_H(φ/√(2κ)) − Vλ_H = %.15g", L, C, kappa, lambdaH, got, want)
				}
			}
		}
	}
}

func TestConversionsRoundTrip(t *testing.T) {
	for _, p := range [][2]float64{{0.15, 1.145}, {0.2, 1.5}, {0.1, 0}, {0.3, 0.02}, {0.26, 5}} {
		m2, lambda := HoppingToStandard(p[0], p[1])
		k, lh := StandardToHopping(m2, lambda)
		if !relClose(k, p[0], 1e-14) || !relClose(lh, p[1], 1e-14) {
			t.Errorf("hopping (%v, %v) → standard (%v, %v) → (%v, %v)", p[0], p[1], m2, lambda, k, lh)
		}
	}
	if m2, l := AKSToStandard(-4, 6.008); m2 != -4 || l != 1.502 {
		t.Errorf("AKSToStandard(-4, 6.008) = %v, %v", m2, l)
	}
	if m2A, lA := StandardToAKS(AKSToStandard(-4, 6.008)); m2A != -4 || lA != 6.008 {
		t.Errorf("AKS round trip: %v, %v", m2A, lA)
	}
	if k, _ := StandardToHopping(-5, 0); !math.IsNaN(k) {
		t.Errorf("StandardToHopping(-5, 0): κ = %v, want NaN (no positive κ)", k)
	}
	if !math.IsNaN(HoppingFieldScale(0)) {
		t.Error("HoppingFieldScale(0) is not NaN")
	}
}

func TestConventionLogZOffsets(t *testing.T) {
	// The ln Z offsets between conventions, checked on free fields where every ln Z is a Gaussian
	// integral: ln Z_conv = (V/2) ln 2π − ½ ln det H_conv, with H_conv the Hessian of the literal action in
	// its own variables (built by exact differences of the quadratic form), against FreeLogZ + offset.
	// Tolerance 1e-10 relative (rounding of a 64×64 Cholesky).
	const L = 8
	V := L * L
	logZ := func(S func([]float64) float64) float64 {
		H := mat.NewSymDense(V, nil)
		e := make([]float64, V)
		for i := range V {
			for j := i; j < V; j++ {
				// For a quadratic form S(x) = ½ xᵀHx: H_ij = S(e_i + e_j) − S(e_i) − S(e_j) (i ≠ j), H_ii = 2 S(e_i).
				e[i], e[j] = 1, 1
				sij := S(e)
				e[i], e[j] = 0, 0
				e[i] = 1
				si := S(e)
				e[i] = 0
				e[j] = 1
				sj := S(e)
				e[j] = 0
				if i == j {
					H.SetSym(i, i, 2*si)
				} else {
					H.SetSym(i, j, sij-si-sj)
				}
			}
		}
		var ch mat.Cholesky
		if !ch.Factorize(H) {
			t.Fatal("Hessian not positive definite")
		}
		return 0.5*float64(V)*math.Log(2*math.Pi) - 0.5*ch.LogDet()
	}
	const m2A = 0.7
	got := logZ(func(x []float64) float64 { return aksActionLiteral(L, m2A, 0, x) })
	if want := FreeLogZ(L, m2A) + AKSLogZOffset(L, 1); !relClose(got, want, 1e-10) {
		t.Errorf("AKS free ln Z_A = %.14f, FreeLogZ + AKSLogZOffset = %.14f", got, want)
	}
	const kappa = 0.2 // m² = 1/κ − 4 = 1
	got = logZ(func(x []float64) float64 { return hoppingActionLiteral(L, 1, kappa, 0, x) })
	m2, _ := HoppingToStandard(kappa, 0)
	if want := FreeLogZ(L, m2) + HoppingLogZOffset(L, 1, kappa, 0); !relClose(got, want, 1e-10) {
		t.Errorf("hopping free ln Z_H = %.14f, FreeLogZ + HoppingLogZOffset = %.14f", got, want)
	}
}

func BenchmarkPhi4ForceEval(b *testing.B) {
	// One HMC inner-loop step: Force and Eval of real φ⁴ (AKS L=8 / L=64 benchmark points). The metric
	// sites/s counts one Force + one Eval per site.
	for _, c := range []struct {
		L       int
		lambdaA float64
	}{{8, 6.008}, {64, 4.398}} {
		b.Run(fmt.Sprintf("L=%d", c.L), func(b *testing.B) {
			a, err := NewPhi4AKS(c.L, -4, c.lambdaA)
			if err != nil {
				b.Fatal(err)
			}
			V := c.L * c.L
			phi := randomField(rand.New(rand.NewPCG(1, 1)), V, 1)
			f := make([]float64, V)
			b.ReportAllocs()
			b.ResetTimer()
			var s float64
			for b.Loop() {
				a.Force(f, phi)
				s += a.Eval(phi)
			}
			b.ReportMetric(float64(V)*float64(b.N)/b.Elapsed().Seconds(), "sites/s")
			_ = s
		})
	}
}

func BenchmarkO2ForceEval(b *testing.B) {
	a, err := NewO2Hopping(64, 0.15, 1.145)
	if err != nil {
		b.Fatal(err)
	}
	V := 64 * 64
	phi := randomField(rand.New(rand.NewPCG(1, 1)), 2*V, 1)
	f := make([]float64, 2*V)
	b.ReportAllocs()
	for b.Loop() {
		a.Force(f, phi)
		a.Eval(phi)
	}
	b.ReportMetric(float64(V)*float64(b.N)/b.Elapsed().Seconds(), "sites/s")
}
