package lattice

import (
	"math"
	"math/cmplx"
	"testing"
)

// TestObserverPrimariesBruteForce compares the per-configuration measurements with direct O(V²)
// evaluations of their definitions on random fields (C = 1 and 2).
func TestObserverPrimariesBruteForce(t *testing.T) {
	rng := ChainRand(3, 0)
	for _, c := range [][2]int{{1, 8}, {2, 8}, {1, 6}, {2, 10}} {
		C, L := c[0], c[1]
		V := L * L
		o := newObserver(C, L, "", 1)
		phi := make([]float64, C*V)
		for i := range phi {
			phi[i] = rng.NormFloat64() + 0.3
		}
		o.Measure(0, phi)
		at := func(c, i, j int) float64 { return phi[c*V+((i+L)%L)*L+(j+L)%L] }
		var m2, phi2, gt1, gt11, gt2 float64
		g := make([]float64, L/2+1)
		for c := range C {
			var M float64
			var f0, f1, f2, f3, f4, f5 complex128
			for i := range L {
				for j := range L {
					x := at(c, i, j)
					M += x
					phi2 += x * x
					f0 += complex(x, 0) * cmplx.Exp(complex(0, 2*math.Pi*float64(i)/float64(L)))
					f1 += complex(x, 0) * cmplx.Exp(complex(0, 2*math.Pi*float64(j)/float64(L)))
					f2 += complex(x, 0) * cmplx.Exp(complex(0, 2*math.Pi*float64(i+j)/float64(L)))
					f3 += complex(x, 0) * cmplx.Exp(complex(0, 2*math.Pi*float64(i-j)/float64(L)))
					f4 += complex(x, 0) * cmplx.Exp(complex(0, 2*math.Pi*float64(2*i)/float64(L)))
					f5 += complex(x, 0) * cmplx.Exp(complex(0, 2*math.Pi*float64(2*j)/float64(L)))
					for r := range g {
						g[r] += x * (at(c, i+r, j) + at(c, i, j+r)) / float64(2*V)
					}
				}
			}
			m2 += M * M
			abs2 := func(z complex128) float64 { return real(z)*real(z) + imag(z)*imag(z) }
			gt1 += (abs2(f0) + abs2(f1)) / float64(2*V)
			gt11 += (abs2(f2) + abs2(f3)) / float64(2*V)
			gt2 += (abs2(f4) + abs2(f5)) / float64(2*V)
		}
		want := map[string]float64{"abs_m": math.Sqrt(m2) / float64(V), "m2": m2 / float64(V*V), "m4": m2 * m2 / math.Pow(float64(V), 4),
			"phi2": phi2 / float64(V), "Gt1": gt1, "Gt11": gt11, "Gt2": gt2}
		for r, v := range g {
			want["G"+string(rune('0'+r))] = v
		}
		if C == 2 {
			var hel float64
			for _, mu := range [][2]int{{1, 0}, {0, 1}} {
				var e, j float64
				for i := range L {
					for k := range L {
						a, b := at(0, i, k), at(1, i, k)
						a2, b2 := at(0, i+mu[0], k+mu[1]), at(1, i+mu[0], k+mu[1])
						e += a*a2 + b*b2
						j += a*b2 - b*a2
					}
				}
				hel += (e - j*j) / float64(2*V)
			}
			want["helicity"] = hel
		}
		for name, w := range want {
			got := o.Primary(name)[0][0]
			if math.Abs(got-w) > 1e-12*(1+math.Abs(w)) {
				t.Errorf("C=%d %s: %.15g, brute force %.15g", C, name, got, w)
			}
		}
	}
}

// TestSpinMoments checks E[m²], E[|m|], E[m⁴] given x against enumeration of the 2^N spin states, and
// the normal approximation used for N > 4096 against the exact Poisson-binomial sum at N = 2048.
func TestSpinMoments(t *testing.T) {
	rng := ChainRand(4, 0)
	const N = 9
	x := make([]float64, N)
	for i := range x {
		x[i] = 1.3 * rng.NormFloat64()
	}
	var e2, e1, e4 float64
	for s := 0; s < 1<<N; s++ {
		p, m := 1.0, 0.0
		for i, v := range x {
			t := math.Tanh(v)
			if s>>i&1 == 1 {
				p *= (1 + t) / 2
				m++
			} else {
				p *= (1 - t) / 2
				m--
			}
		}
		m /= N
		e1 += p * math.Abs(m)
		e2 += p * m * m
		e4 += p * m * m * m * m
	}
	m2, am, m4 := spinMoments(x, make([]float64, N+1))
	for _, c := range [][3]any{{"m2", m2, e2}, {"|m|", am, e1}, {"m4", m4, e4}} {
		if got, want := c[1].(float64), c[2].(float64); math.Abs(got-want) > 1e-12 {
			t.Errorf("%s: %.15g, enumeration %.15g", c[0], got, want)
		}
	}
	// The improved estimator of ⟨m²⟩: (mean tanh x)² − Σ tanh² x / N² + 1/N.
	var mt, st2 float64
	for _, v := range x {
		mt += math.Tanh(v) / N
		st2 += math.Tanh(v) * math.Tanh(v)
	}
	if imp := mt*mt - st2/(N*N) + 1.0/N; math.Abs(imp-m2) > 1e-12 {
		t.Errorf("improved estimator %.15g, E[m²|x] %.15g", imp, m2)
	}
	big := make([]float64, 2048)
	for i := range big {
		big[i] = 0.02 + 0.5*rng.NormFloat64()
	}
	_, exact, _ := spinMoments(big, make([]float64, len(big)+1))
	_, approx, _ := spinMoments(big, nil)
	// The normal approximation of E|S| is accurate to O(1/N) relative.
	if math.Abs(approx-exact) > 1e-3*exact {
		t.Errorf("normal approximation E|m| = %.6g, exact %.6g", approx, exact)
	}
}

// TestHMCFreeO2 checks the C = 2 observables on the free O(2) field (λ = 0), where everything is known:
// χ = ⟨|M|²⟩/V = 2/m², ⟨|φ|²⟩ = 2G(0), G(L/2) summed over channels = 2G_free(L/2), U4 = g_R = 0 (they are
// normalised to vanish for a Gaussian C-vector), and the helicity modulus, with G the free propagator and
// both components independent,
//
//	Υ = 2G(μ̂) − (2/V) Σ_k G̃(k)² (1 − cos(2·2πk_μ/L)),
//
// from ⟨e_μ⟩ = 2V G(μ̂) and ⟨j_μ²⟩ = 2V Σ_r [G(r)² − G(r−μ̂) G(r+μ̂)].
func TestHMCFreeO2(t *testing.T) {
	const L, m2 = 4, 0.7
	a, err := NewO2(L, m2, 0)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := sample(t, a, HMCConfig{Trajectories: 4000, Thermalize: 200, Chains: 4, Seed: 31})
	var sk float64
	for kx := range L {
		for ky := range L {
			g := FreeGTilde(L, m2, kx, ky)
			sk += g * g * (1 - math.Cos(4*math.Pi*float64(kx)/L))
		}
	}
	hel := 2*FreeG(L, m2, 1, 0) - 2*sk/(L*L)
	get := func(n string) Estimate { e, _ := res.Get(n); return e }
	within(t, "chi", get("chi"), 2/m2, 4)
	within(t, "phi2", get("phi2"), 2*FreeG(L, m2, 0, 0), 4)
	within(t, "G_half", get("G_half"), 2*FreeG(L, m2, L/2, 0), 4)
	within(t, "U4", get("U4"), 0, 4)
	within(t, "gR", get("gR"), 0, 4)
	within(t, "helicity", get("helicity"), hel, 4)
	for i, k := range res.GtMomenta {
		within(t, "Gt"+string(rune('0'+k[0]))+string(rune('0'+k[1])), res.Gt[i], 2*FreeGTilde(L, m2, k[0], k[1]), 4)
	}
	if am, mf := get("abs_m"), get("abs_mean_field"); am.Value != mf.Value {
		t.Errorf("abs_m %v and abs_mean_field %v differ", am.Value, mf.Value)
	}
}

// TestObserverResultsErrors covers the bookkeeping errors of Results.
func TestObserverResultsErrors(t *testing.T) {
	o := newObserver(1, 4, "", 2)
	if _, err := o.Results(StatsOptions{}); err == nil {
		t.Error("no measurements: no error")
	}
	phi := make([]float64, 16)
	o.Measure(0, phi)
	o.Measure(0, phi)
	o.Measure(1, phi)
	if _, err := o.Results(StatsOptions{}); err == nil {
		t.Error("unequal chains: no error")
	}
}
