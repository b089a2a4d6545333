package diffusion

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func testProcesses(t *testing.T, l *Lattice) []SDE {
	car := must[*Carosso](t)(NewCarosso(l, 2, 0, 1))
	pol := must[*Polchinski](t)(NewPolchinski(l, MassRegulator{Mu2: 0.1}, 0.5, 1))
	return []SDE{
		car,
		must[*Carosso](t)(NewCarosso(l, 0.7, 0.3, 1)),
		pol,
		must[*Polchinski](t)(NewPolchinski(l, CutoffRegulator{Lambda0: 2}, 0.5, 1)),
		must[*Rescaled](t)(NewRescaled(pol, 0.4)),
		must[*VP](t)(NewVP(l, 0.1, 20)),
		must[*VE](t)(NewVE(l, 0.01, 5)),
	}
}

// TestMarginalAgainstChains: the exact marginal variance from a free start agrees with (i) a Monte Carlo
// of many small exact transitions chained (composition of the transitions; 4000 fields, per-coordinate
// variance error √(2/4000) ≈ 2.2%, each coordinate tested at 5σ and the mode-averaged relative deviation at
// 4σ of its own spread)
// and (ii) deterministically with the Euler–Maruyama variance recursion v ← (1 + a dt)² v + b² dt at
// dt = 1e-4 (first order: relative error ≲ |a| dt·t ≈ 1e-3 plus b-variation, tolerance 1%).
func TestMarginalAgainstChains(t *testing.T) {
	l := mustLat(t, 6)
	V := l.V
	v0 := must[[]float64](t)(l.FreeVariance(0.5))
	rng := rand.New(rand.NewPCG(7, 8))
	for _, sde := range testProcesses(t, l) {
		for _, tt := range []float64{0.1, 0.5, 1} {
			want := make([]float64, V)
			if err := MarginalVariance(sde, tt, v0, want); err != nil {
				t.Fatal(err)
			}
			// (ii) Euler–Maruyama variance recursion with the coefficients.
			const dt = 1e-4
			v := append([]float64(nil), v0...)
			a, b := make([]float64, V), make([]float64, V)
			n := int(math.Round(tt / dt))
			for s := range n {
				if err := sde.Coefficients(float64(s)*dt, a, b); err != nil {
					t.Fatal(err)
				}
				for j := range v {
					v[j] = (1+a[j]*dt)*(1+a[j]*dt)*v[j] + b[j]*b[j]*dt
				}
			}
			for j := range v {
				if math.Abs(v[j]-want[j]) > 0.01*want[j]+1e-12 {
					t.Errorf("%s t=%v: EM variance of coordinate %d = %v, exact %v", sde.Name(), tt, j, v[j], want[j])
					break
				}
			}
			// (i) chained exact transitions, 20 steps, on a batch of fields.
			const B, steps = 4000, 20
			u := make([]float64, B*V)
			for i := range u {
				u[i] = math.Sqrt(v0[i%V]) * rng.NormFloat64()
			}
			m, q := make([]float64, V), make([]float64, V)
			for s := range steps {
				if err := sde.Transition(tt*float64(s)/steps, tt*float64(s+1)/steps, m, q); err != nil {
					t.Fatal(err)
				}
				for i := range u {
					u[i] = m[i%V]*u[i] + math.Sqrt(q[i%V])*rng.NormFloat64()
				}
			}
			var dev float64
			for j := range V {
				var s2 float64
				for b := range B {
					s2 += u[b*V+j] * u[b*V+j]
				}
				dev += (s2/B/want[j] - 1)
				// Each coordinate at 5σ: ≈ 6e-7 false-alarm rate each, ~4e-4 over the whole test.
				if r := s2/B/want[j] - 1; math.Abs(r) > 5*math.Sqrt(2.0/B) {
					t.Errorf("%s t=%v: chained transitions: coordinate %d variance off by %.3f (σ %.3f)", sde.Name(), tt, j, r, math.Sqrt(2.0/B))
				}
			}
			dev /= float64(V)
			if sigma := math.Sqrt(2.0 / B / float64(V)); math.Abs(dev) > 4*sigma {
				t.Errorf("%s t=%v: chained transitions: mean relative variance deviation %.4f (σ %.4f)", sde.Name(), tt, dev, sigma)
			}
		}
	}
}

// TestLimits: Polchinski collapses the variance, Carosso tends to the massless fixed point Ω/(2p̂²) (its
// zero mode grows as Ωt), the Polchinski flow rescaled mode by mode with γ_k = (p̂²_k + μ²)/2 tends to the
// free field C_k = 1/(p̂²+m²) from any start (white noise in units of the propagator, u_k/√C_k), and VP
// tends to white noise. Times are chosen so that the remainders e^{−2p̂²_min t} etc. are < 1e-12 relative.
func TestLimits(t *testing.T) {
	l := mustLat(t, 8)
	V := l.V
	start := make([]float64, V) // an arbitrary non-free start
	for j := range start {
		start[j] = 0.3 + float64(j%5)
	}
	pmin := 4 * math.Pow(math.Sin(math.Pi/8), 2)
	T := 30 / pmin
	car := must[*Carosso](t)(NewCarosso(l, 2, 0, T))
	v := make([]float64, V)
	must[struct{}](t)(struct{}{}, MarginalVariance(car, T, start, v))
	for j, p := range l.p2 {
		want := 2 / (2 * p)
		if j == 0 {
			want = start[0] + 2*T
		}
		if math.Abs(v[j]-want) > 1e-12*want {
			t.Errorf("Carosso t=%v: v_%d = %v, want %v", T, j, v[j], want)
		}
	}
	Tp := 400.0 // the zero mode decays at the rate μ² = 0.1
	pol := must[*Polchinski](t)(NewPolchinski(l, MassRegulator{Mu2: 0.1}, 0.5, Tp))
	must[struct{}](t)(struct{}{}, MarginalVariance(pol, Tp, start, v))
	for j, x := range v {
		if x > 1e-10 {
			t.Errorf("Polchinski t=%v: v_%d = %v, want → 0", Tp, j, x)
		}
	}
	gam := make([]float64, V)
	for j, p := range l.p2 {
		gam[j] = (p + 0.1) / 2
	}
	ren := must[*Rescaled](t)(NewRescaledModes(pol, gam))
	must[struct{}](t)(struct{}{}, MarginalVariance(ren, Tp, start, v))
	for j, p := range l.p2 {
		if c := 1 / (p + 0.5); math.Abs(v[j]/c-1) > 1e-10 {
			t.Errorf("renormalised Polchinski t=%v: v_%d / C = %v, want 1", Tp, j, v[j]/c)
		}
	}
	vp := must[*VP](t)(NewVP(l, 0.1, 80))
	must[struct{}](t)(struct{}{}, MarginalVariance(vp, 1, start, v))
	for j, x := range v {
		if math.Abs(x-1) > 1e-12 {
			t.Errorf("VP t=1: v_%d = %v, want 1", j, x)
		}
	}
}

// TestBadInput: odd or small L, bad parameters and times outside the range give errors naming the problem.
func TestBadInput(t *testing.T) {
	l := mustLat(t, 8)
	car := must[*Carosso](t)(NewCarosso(l, 2, 0, 1))
	buf := make([]float64, l.V)
	e := func(_ any, err error) error { return err }
	for _, c := range []struct {
		err  error
		want string
	}{
		{e(NewLattice(7)), "L=7, want an even L ≥ 4"},
		{e(NewLattice(2)), "L=2"},
		{e(NewCarosso(l, -1, 0, 1)), "carosso: Omega=-1"},
		{e(NewCarosso(l, 1, -0.1, 1)), "mu2=-0.1"},
		{e(NewCarosso(l, 1, 0, 0)), "T=0"},
		{e(NewPolchinski(l, MassRegulator{Mu2: -1}, 0.5, 1)), "mu2=-1"},
		{e(NewPolchinski(l, CutoffRegulator{}, 0.5, 1)), "Lambda0=0"},
		{e(NewPolchinski(l, MassRegulator{}, 0, 1)), "m2=0"},
		{e(NewPolchinski(l, nil, 0.5, 1)), "no regulator"},
		{e(NewVP(l, 1, 0.5)), "vp: betaMin=1"},
		{e(NewVE(l, 2, 1)), "ve: sigmaMin=2"},
		{e(NewRescaled(car, math.NaN())), "gamma[0]=NaN"},
		{e(l.FreeVariance(-1)), "m2=-1"},
		{car.Transition(0, 1.5, buf, buf), "t=1.5 outside [0, 1]"},
		{car.Transition(0.5, 0.2, buf, buf), "runs backwards"},
		{car.Coefficients(-0.1, buf, buf), "t=-0.1 outside"},
		{e(EulerMaruyama(car, nil, make([]float64, 5), 10, 0, nil)), "multiple of V=64"},
		{e(EulerMaruyama(car, nil, buf, 0, 0, nil)), "steps=0"},
		{e(PredictorCorrector(car, nil, buf, 10, 0, 0, 1, nil)), "snr=0"},
		{e(ProbabilityFlowRK4(car, nil, buf, 0, 2, 10)), "t=2 outside"},
		{e(ProbabilityFlowRK45(car, nil, buf, 1, 0, 0, 1e-6)), "rtol=0"},
		{(&Gaussian{Lat: l, Var: buf}).Sample(nil, make([]float64, 65)), "length 65 is not a multiple of V=64"},
		{(&Gaussian{Lat: l, Var: buf}).LogProb(buf, make([]float64, 2)), "64 values for 2 fields"},
		{e(NewFreeScore(car, buf[:3])), "3 variances"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("error %v, want one containing %q", c.err, c.want)
		}
	}
}

// TestReverseDrift: for Carosso the drift operator F⁻¹ diag(−p̂²) F is the lattice Laplacian (zero mode
// a = −μ² = 0), so the reverse drift is Δx − Ω s and the probability-flow drift Δx − ½Ω s, written out here
// with neighbour sums; for VP it is −β/2 x − β s. Tolerance 1e-12 on O(1) entries.
func TestReverseDrift(t *testing.T) {
	l := mustLat(t, 6)
	L, V := l.L, l.V
	rng := rand.New(rand.NewPCG(5, 6))
	x, s, dst := make([]float64, 2*V), make([]float64, 2*V), make([]float64, 2*V)
	for i := range x {
		x[i], s[i] = rng.NormFloat64(), rng.NormFloat64()
	}
	lap := func(f []float64, i, j int) float64 {
		at := func(a, b int) float64 { return f[((a+L)%L)*L+(b+L)%L] }
		return at(i+1, j) + at(i-1, j) + at(i, j+1) + at(i, j-1) - 4*at(i, j)
	}
	car := must[*Carosso](t)(NewCarosso(l, 1.5, 0, 1))
	vp := must[*VP](t)(NewVP(l, 0.1, 20))
	for _, c := range []struct {
		name string
		f    func(SDE, float64, []float64, []float64, []float64) error
		k    float64
	}{{"reverse", ReverseDrift, 1}, {"probability flow", ProbabilityFlowDrift, 0.5}} {
		if err := c.f(car, 0.3, x, s, dst); err != nil {
			t.Fatal(err)
		}
		for b := range 2 {
			f := x[b*V : (b+1)*V]
			for i := range L {
				for j := range L {
					want := lap(f, i, j) - c.k*1.5*s[b*V+i*L+j]
					if got := dst[b*V+i*L+j]; math.Abs(got-want) > 1e-12 {
						t.Fatalf("carosso %s drift at (%d,%d) = %v, want %v", c.name, i, j, got, want)
					}
				}
			}
		}
		if err := c.f(vp, 0.5, x, s, dst); err != nil {
			t.Fatal(err)
		}
		beta := 0.1 + 0.5*(20-0.1)
		for i := range x {
			if want := -beta/2*x[i] - c.k*beta*s[i]; math.Abs(dst[i]-want) > 1e-12 {
				t.Fatalf("vp %s drift[%d] = %v, want %v", c.name, i, dst[i], want)
			}
		}
	}
	if err := ReverseDrift(car, 2, x, s, dst); err == nil {
		t.Error("ReverseDrift at t=2 > T: no error")
	}
}

// TestPerturb: exact transitions of a batch of free fields from 0 to t have the marginal variances
// (per-coordinate sample variance over 3000 fields, mode-averaged relative deviation within 4σ =
// 4√(2/(3000·V))), and the same rng gives the same pairs.
func TestPerturb(t *testing.T) {
	l := mustLat(t, 6)
	V := l.V
	v0 := must[[]float64](t)(l.FreeVariance(0.5))
	const B = 3000
	for _, sde := range testProcesses(t, l) {
		x := make([]float64, B*V)
		(&Gaussian{Lat: l, Var: v0}).Sample(rand.New(rand.NewPCG(1, 2)), x)
		y := make([]float64, len(x))
		if err := Perturb(sde, 0, 0.6, x, y, rand.New(rand.NewPCG(3, 4))); err != nil {
			t.Fatal(err)
		}
		y2 := make([]float64, len(x))
		if err := Perturb(sde, 0, 0.6, x, y2, rand.New(rand.NewPCG(3, 4))); err != nil {
			t.Fatal(err)
		}
		for i := range y {
			if y[i] != y2[i] {
				t.Fatalf("%s: Perturb not reproducible", sde.Name())
			}
		}
		want := make([]float64, V)
		if err := MarginalVariance(sde, 0.6, v0, want); err != nil {
			t.Fatal(err)
		}
		s2 := make([]float64, V)
		u := make([]float64, V)
		for b := range B {
			l.ToModes(u, y[b*V:(b+1)*V])
			for j := range u {
				s2[j] += u[j] * u[j] / B
			}
		}
		var dev float64
		for j := range s2 {
			dev += (s2[j]/want[j] - 1) / float64(V)
			if r := s2[j]/want[j] - 1; math.Abs(r) > 5*math.Sqrt(2.0/B) { // 5σ per coordinate
				t.Errorf("%s: Perturb: coordinate %d variance off by %.3f", sde.Name(), j, r)
			}
		}
		if sigma := math.Sqrt(2.0 / B / float64(V)); math.Abs(dev) > 4*sigma {
			t.Errorf("%s: Perturb: mean relative variance deviation %.4f (σ %.4f)", sde.Name(), dev, sigma)
		}
	}
}
