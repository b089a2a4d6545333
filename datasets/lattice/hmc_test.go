package lattice

import (
	"context"
	"math"
	"slices"
	"testing"
)

// sample runs HMC on a and returns the ensemble results and the run statistics.
func sample(t testing.TB, a HostAction, cfg HMCConfig) (Results, RunResult) {
	t.Helper()
	cfg = cfg.withDefaults()
	obs := NewObserver(a, cfg.Chains)
	run, err := RunHMC(context.Background(), a, cfg, obs.Visitor())
	if err != nil {
		t.Fatal(err)
	}
	res, err := obs.Results(StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res, run
}

// within checks |est − exact| ≤ nsigma·err and that the run was long enough for an honest error.
func within(t *testing.T, name string, e Estimate, exact, nsigma float64) {
	t.Helper()
	dev := (e.Value - exact) / e.Err
	t.Logf("%-8s %.6f ± %.6f (τ_int %.2f ± %.2f, %d blocks of %d)  exact %.6f  (%+.2fσ)",
		name, e.Value, e.Err, e.Tau, e.TauErr, e.Blocks, e.Block, exact, dev)
	if !(math.Abs(dev) <= nsigma) {
		t.Errorf("%s = %.6f ± %.6f, exact %.6f: %.1fσ off (allowed %gσ)", name, e.Value, e.Err, exact, dev, nsigma)
	}
	if e.ShortRun {
		t.Errorf("%s: run too short for a reliable error: %+v", name, e)
	}
}

// freeHMCConfig is the statistics used for the free-field checks, shared with the fixed-length experiment
// so that both have the same resolving power.
func freeHMCConfig(seed uint64) HMCConfig {
	return HMCConfig{Trajectories: 4000, Thermalize: 200, Chains: 4, Seed: seed, StepSize: 0.25, FixedStep: true, TrajLength: 1.5}
}

// TestHMCFreeField: L = 8, m² = 0.5 against the exact ⟨φ²⟩ = G(0), χ = 1/m² and G(L/2) (FreeG), 4σ.
func TestHMCFreeField(t *testing.T) {
	const L, m2 = 8, 0.5
	a, err := NewFree(L, m2)
	if err != nil {
		t.Fatal(err)
	}
	res, run := sample(t, a, freeHMCConfig(11))
	t.Logf("acceptance %.3f, ε %.3f, n̄ %d, ⟨e^{−ΔH}⟩ chain 0 %.4f", run.Acceptance(), run.Chains[0].StepSize, run.Chains[0].MeanSteps, run.Chains[0].MeanExpMinus)
	get := func(n string) Estimate { e, _ := res.Get(n); return e }
	within(t, "phi2", get("phi2"), FreeG(L, m2, 0, 0), 4)
	within(t, "chi", get("chi"), 1/m2, 4)
	within(t, "G_half", get("G_half"), FreeG(L, m2, L/2, 0), 4)
	// m_R² is exactly m² on the exact propagator (FreeGTilde); U4 and g_R vanish for a Gaussian field.
	within(t, "mR2", get("mR2"), 4*math.Pow(math.Sin(math.Pi/L), 2)/(FreeGTilde(L, m2, 0, 0)/FreeGTilde(L, m2, 1, 0)-1), 4)
	within(t, "U4", get("U4"), 0, 4)
	for r, g := range res.G {
		if d := math.Abs(g.Value-FreeG(L, m2, r, 0)) / g.Err; d > 4.5 { // 5 values: allow a little more
			t.Errorf("G(%d) = %.5f ± %.5f, exact %.5f", r, g.Value, g.Err, FreeG(L, m2, r, 0))
		}
	}
	for c, st := range run.Chains {
		// Creutz: ⟨e^{−ΔH}⟩ = 1. Its spread per chain is ≲ 0.02 at this acceptance.
		if math.Abs(st.MeanExpMinus-1) > 0.05 {
			t.Errorf("chain %d: ⟨e^{−ΔH}⟩ = %.4f, want 1", c, st.MeanExpMinus)
		}
	}
}

// TestHMCFixedLengthBias shows that a fixed trajectory length biases the free field, run with exactly the statistics of TestHMCFreeField. Leapfrog moves each Fourier mode of the
// free field on an ellipse with the modified frequency ω̃, cos(ω̃ε) = 1 − ε²ω²/2. If a fixed trajectory of
// n steps spans half a period of a mode (ω̃nε = π), the trajectory maps that mode to minus itself whatever
// the momentum: its modulus never changes and HMC is not ergodic (near the resonance τ_int diverges). Here
// the zero mode (ω² = m²) resonates; from a cold start M stays 0, so χ ≈ 0 instead of 1/m² and ⟨φ²⟩ lacks
// the zero mode's 1/(V m²) = 0.031, with an error bar that cannot see it. The randomised length, with the
// same ε and the same mean number of steps, is right. (From a hot start at a near resonance the bias shows
// up instead as a huge τ_int and error bar: the automatic window detects it.)
func TestHMCFixedLengthBias(t *testing.T) {
	const L, m2, n = 8, 0.5, 12
	a, err := NewFree(L, m2)
	if err != nil {
		t.Fatal(err)
	}
	cfg := freeHMCConfig(11)
	cfg.StepSize = math.Sqrt(2 * (1 - math.Cos(math.Pi/n)) / m2) // ω̃ n ε = π for the zero mode
	cfg.TrajLength = n * cfg.StepSize
	cfg.Cold = true
	cfg.FixedLength = true
	fixed, frun := sample(t, a, cfg)
	cfg.FixedLength = false
	random, rrun := sample(t, a, cfg)
	t.Logf("ε = %.4f, %d steps (τ = %.3f = π/ω̃₀); acceptance fixed %.3f, randomised %.3f", cfg.StepSize, n, cfg.TrajLength, frun.Acceptance(), rrun.Acceptance())
	for _, c := range []struct {
		name  string
		exact float64
	}{{"phi2", FreeG(L, m2, 0, 0)}, {"chi", 1 / m2}} {
		ef, _ := fixed.Get(c.name)
		er, _ := random.Get(c.name)
		t.Logf("%-5s fixed length %.5f ± %.5f, randomised %.5f ± %.5f (%+.1fσ), exact %.5f", c.name,
			ef.Value, ef.Err, er.Value, er.Err, (er.Value-c.exact)/er.Err, c.exact)
		if !(math.Abs(ef.Value-c.exact) > 6*ef.Err) {
			t.Errorf("%s: fixed-length HMC is not visibly biased: %.5f ± %.5f, exact %.5f", c.name, ef.Value, ef.Err, c.exact)
		}
		if math.Abs(er.Value-c.exact) > 4*er.Err {
			t.Errorf("%s: randomised HMC %.5f ± %.5f, exact %.5f", c.name, er.Value, er.Err, c.exact)
		}
	}
}

// isingExact enumerates the 2^(L²) spin states of the periodic L×L Ising model H = −Σ_⟨ij⟩ σ_i σ_j at
// temperature T and returns ⟨m²⟩, ⟨|m|⟩ and ⟨m⁴⟩, m = Σσ/N.
func isingExact(L int, T float64) (m2, absM, m4 float64) {
	N := L * L
	var z float64
	for s := 0; s < 1<<N; s++ {
		spin := func(i, j int) int { return 2*int((s>>(((i+L)%L)*L+(j+L)%L))&1) - 1 }
		e, m := 0, 0
		for i := range L {
			for j := range L {
				e -= spin(i, j) * (spin(i+1, j) + spin(i, j+1))
				m += spin(i, j)
			}
		}
		w := math.Exp(-float64(e) / T)
		mf := float64(m) / float64(N)
		z += w
		m2 += w * mf * mf
		absM += w * math.Abs(mf)
		m4 += w * mf * mf * mf * mf
	}
	return m2 / z, absM / z, m4 / z
}

// TestHMCIsingRelaxed: L = 4 at T_c, the spin observables from the relaxed field (improved ⟨m²⟩, ⟨|m|⟩
// and the Binder cumulant through E[·|x]) against exact enumeration of the 2¹⁶ spin states, 4σ.
func TestHMCIsingRelaxed(t *testing.T) {
	const L = 4
	T := IsingTc()
	exact, exactAbs, exact4 := isingExact(L, T)
	if math.Abs(exact-0.761359) > 1e-6 {
		t.Fatalf("enumerated ⟨m²⟩ = %.7f, want 0.761359 (L = 4 at T_c, to 6 decimals)", exact)
	}
	a, err := NewIsingRelaxed(L, T)
	if err != nil {
		t.Fatal(err)
	}
	// The soft (magnetisation) direction has a period ≈ 10: trajectories of length 5 decorrelate it
	// (τ_int ≈ 3.6 trajectories against 42 at length 1).
	res, run := sample(t, a, HMCConfig{Trajectories: 5000, Thermalize: 300, Chains: 4, Seed: 5, TrajLength: 5})
	t.Logf("acceptance %.3f, ε %.3f, n̄ %d", run.Acceptance(), run.Chains[0].StepSize, run.Chains[0].MeanSteps)
	e, _ := res.Get("m2_improved")
	within(t, "m2_improved", e, exact, 4)
	am, _ := res.Get("abs_m_spin")
	within(t, "abs_m_spin", am, exactAbs, 4)
	u4, _ := res.Get("U4_spin")
	within(t, "U4_spin", u4, 1-exact4/(3*exact*exact), 4)
}

func TestSeedReproducibility(t *testing.T) {
	a, err := NewPhi4(4, -1, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	collect := func(chains, workers int) [][]float64 {
		out := make([][]float64, chains)
		_, err := RunHMC(context.Background(), a, HMCConfig{Trajectories: 30, Thermalize: 20, Chains: chains, Workers: workers, Seed: 42},
			func(c, k int, phi []float64, s float64) { out[c] = append(out[c], phi...) })
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	ref := collect(3, 1)
	again := collect(3, 3)
	more := collect(5, 2)
	for c := range ref {
		if !slices.Equal(ref[c], again[c]) {
			t.Errorf("chain %d differs between 1 and 3 workers", c)
		}
		if !slices.Equal(ref[c], more[c]) {
			t.Errorf("chain %d differs between 3 and 5 chains", c)
		}
	}
	if slices.Equal(ref[0], ref[1]) {
		t.Error("chains 0 and 1 are identical")
	}
	other := make([][]float64, 1)
	if _, err := RunHMC(context.Background(), a, HMCConfig{Trajectories: 30, Thermalize: 20, Seed: 43},
		func(c, k int, phi []float64, s float64) { other[c] = append(other[c], phi...) }); err != nil {
		t.Fatal(err)
	}
	if slices.Equal(ref[0], other[0]) {
		t.Error("seeds 42 and 43 give the same chain")
	}
}

func TestHMCZeroAllocs(t *testing.T) {
	a, err := NewPhi4(8, -4, 1.502)
	if err != nil {
		t.Fatal(err)
	}
	rng := ChainRand(1, 0)
	h, err := NewHMC(a, rng, startConfig(a, rng, false), 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(20, func() { h.Trajectory(10); h.Flip() }); n != 0 {
		t.Errorf("a trajectory allocates %v times", n)
	}
}

// TestFlipAlwaysAcceptedForZ2: ΔS = 0 for an even action, so every proposed flip is accepted; flips are
// proposed with probability ½, so 200 trajectories propose Binomial(200, ½) of them (5σ ≈ 35).
func TestFlipAlwaysAcceptedForZ2(t *testing.T) {
	a, err := NewPhi4(4, -2, 0.3)
	if err != nil {
		t.Fatal(err)
	}
	_, run := sample(t, a, HMCConfig{Trajectories: 200, Chains: 2, Seed: 3})
	for _, st := range run.Chains {
		if st.FlipAccepted != st.Flips || math.Abs(float64(st.Flips)-100) > 35 {
			t.Errorf("flips %d accepted of %d proposed in 200 trajectories", st.FlipAccepted, st.Flips)
		}
	}
}

// TestRandomFlipBalancesSigns: deep in the broken phase HMC never tunnels, so the sign of M comes from the
// flips alone. With the flip a fair coin after every trajectory, fields recorded every second trajectory
// have independent fair signs: the fraction with M > 0 over 4 chains × 200 fields is ½ with standard error
// 0.018 (5σ = 0.09). A flip after every trajectory would give each chain one sign throughout (fraction 0 or 1
// per chain), which this catches.
func TestRandomFlipBalancesSigns(t *testing.T) {
	a, err := NewPhi4(4, -4, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	pos, n := 0, 0
	perChain := make([]int, 4)
	visit := func(chain, _ int, phi []float64, _ float64) {
		m := 0.0
		for _, v := range phi {
			m += v
		}
		if m > 0 {
			pos++
			perChain[chain]++
		}
		n++
	}
	if _, err := RunHMC(context.Background(), a, HMCConfig{Trajectories: 400, Thermalize: 50, Every: 2, Chains: 4, Seed: 5, Workers: 1}, visit); err != nil {
		t.Fatal(err)
	}
	if f := float64(pos) / float64(n); math.Abs(f-0.5) > 0.09 {
		t.Errorf("fraction with M > 0 is %.3f over %d fields (per chain %v of 200), want 0.5 ± 0.09", f, n, perChain)
	}
	for c, k := range perChain {
		if k == 0 || k == 200 {
			t.Errorf("chain %d recorded one sign only (%d of 200 positive)", c, k)
		}
	}
}

func TestHMCConfigErrors(t *testing.T) {
	a, _ := NewFree(4, 1)
	for _, cfg := range []HMCConfig{{Chains: -1}, {Every: -2}, {StepSize: -1}, {TargetAccept: 1.5}, {Trajectories: -3}, {TrajLength: math.Inf(1)}} {
		if _, err := RunHMC(context.Background(), a, cfg, nil); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := RunHMC(ctx, a, HMCConfig{Chains: 2}, nil); err == nil {
		t.Error("cancelled context: no error")
	}
}

func TestStepSizeTuning(t *testing.T) {
	a, err := NewPhi4(8, -4, 1.502)
	if err != nil {
		t.Fatal(err)
	}
	_, run := sample(t, a, HMCConfig{Trajectories: 400, Thermalize: 400, Chains: 2, Seed: 9, StepSize: 1, TargetAccept: 0.8})
	for c, st := range run.Chains {
		t.Logf("chain %d: ε = %.4f, n̄ = %d, mean acceptance probability %.3f", c, st.StepSize, st.MeanSteps, st.MeanProb)
		// 400 trajectories: the mean acceptance probability has a spread of ≈ 0.03; the frozen average ε
		// lands within ≈ 0.1 of the target.
		if math.Abs(st.MeanProb-0.8) > 0.12 {
			t.Errorf("chain %d: acceptance %.3f after tuning for 0.8", c, st.MeanProb)
		}
	}
}

func benchmarkTrajectory(b *testing.B, L int) {
	a, err := NewPhi4(L, -4, 1.502)
	if err != nil {
		b.Fatal(err)
	}
	rng := ChainRand(1, 0)
	h, err := NewHMC(a, rng, startConfig(a, rng, false), 0.05)
	if err != nil {
		b.Fatal(err)
	}
	const steps = 10
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		h.Trajectory(steps)
	}
	b.ReportMetric(float64(b.N)*steps*float64(L*L)/b.Elapsed().Seconds(), "site-updates/s")
}

// BenchmarkHMCTrajectory measures leapfrog throughput on one core: site updates (one site, one leapfrog
// step) per second, for real φ⁴ at L = 8 and L = 64, 10 steps per trajectory. It must report 0 allocs/op.
func BenchmarkHMCTrajectory(b *testing.B) {
	b.Run("L=8", func(b *testing.B) { benchmarkTrajectory(b, 8) })
	b.Run("L=64", func(b *testing.B) { benchmarkTrajectory(b, 64) })
}

// TestHMCFreeFieldL10: HMC and the observables on an even size that is not a power of two, against the
// exact ⟨φ²⟩, χ and G(L/2) at 4σ (same tolerance and error analysis as TestHMCFreeField).
func TestHMCFreeFieldL10(t *testing.T) {
	const L, m2 = 10, 0.5
	a, err := NewFree(L, m2)
	if err != nil {
		t.Fatal(err)
	}
	cfg := freeHMCConfig(12)
	cfg.Trajectories = 2000
	res, _ := sample(t, a, cfg)
	get := func(n string) Estimate { e, _ := res.Get(n); return e }
	within(t, "phi2", get("phi2"), FreeG(L, m2, 0, 0), 4)
	within(t, "chi", get("chi"), 1/m2, 4)
	within(t, "G_half", get("G_half"), FreeG(L, m2, L/2, 0), 4)
}
