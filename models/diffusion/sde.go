package diffusion

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// SDE is a linear forward process, diagonal in the mode coordinates: du_j = a_j(t) u_j dt + b_j(t) dW_j
// for t in [0, T()]. Every slice argument has length V (one entry per mode coordinate).
type SDE interface {
	// Name identifies the process in messages ("carosso", "polchinski", …).
	Name() string
	// Lattice is the lattice the process lives on.
	Lattice() *Lattice
	// T is the noise end of the time range [0, T].
	T() float64
	// Coefficients writes the drift factor a_j(t) and the diffusion b_j(t) ≥ 0.
	Coefficients(t float64, a, b []float64) error
	// Transition writes the exact transition u_t = mean_j u_s + √variance_j ξ for 0 ≤ s ≤ t ≤ T.
	Transition(s, t float64, mean, variance []float64) error
}

func checkTime(name string, t, T float64) error {
	if !(t >= 0 && t <= T) {
		return fmt.Errorf("diffusion: %s: t=%v outside [0, %v]", name, t, T)
	}
	return nil
}

func checkInterval(name string, s, t, T float64) error {
	if err := checkTime(name, s, T); err != nil {
		return err
	}
	if err := checkTime(name, t, T); err != nil {
		return err
	}
	if s > t {
		return fmt.Errorf("diffusion: %s: transition from s=%v to t=%v runs backwards (want s ≤ t)", name, s, t)
	}
	return nil
}

func checkHorizon(name string, T float64) error {
	if !(T > 0) || math.IsInf(T, 1) {
		return fmt.Errorf("diffusion: %s: T=%v, want a finite T > 0", name, T)
	}
	return nil
}

// phi1 is (1 − e^{−z})/z, accurate near 0 (= 1 at z = 0).
func phi1(z float64) float64 {
	if math.Abs(z) < 1e-12 {
		return 1 - z/2
	}
	return -math.Expm1(-z) / z
}

// MarginalVariance writes the variance of u_t from a start of variance v0 (per coordinate) into dst:
// m(0,t)² v0 + q(0,t).
func MarginalVariance(sde SDE, t float64, v0, dst []float64) error {
	V := BasisOf(sde).Size()
	if len(v0) != V || len(dst) != V {
		return fmt.Errorf("diffusion: %s: MarginalVariance: v0 and dst have lengths %d, %d, want %d", sde.Name(), len(v0), len(dst), V)
	}
	m := make([]float64, V)
	if err := sde.Transition(0, t, m, dst); err != nil {
		return err
	}
	for j := range dst {
		dst[j] += m[j] * m[j] * v0[j]
	}
	return nil
}

// Prior returns the marginal at the noise end T from a start of variance v0 (nil: zero, i.e. the
// process's own noise only), as a Gaussian to sample from and to score likelihoods with.
func Prior(sde SDE, v0 []float64) (*Gaussian, error) {
	l := BasisOf(sde)
	if v0 == nil {
		v0 = make([]float64, l.Size())
	}
	v := make([]float64, l.Size())
	if err := MarginalVariance(sde, sde.T(), v0, v); err != nil {
		return nil, err
	}
	return newGaussian(l, v), nil
}

// Perturb draws x_t given x_s with the exact transition for every field of the batch x (length n·V) into
// dst (may alias x): the training pairs of denoising score matching.
func Perturb(sde SDE, s, t float64, x, dst []float64, rng *rand.Rand) error {
	l := BasisOf(sde)
	V := l.Size()
	if len(x)%V != 0 || len(dst) != len(x) {
		return fmt.Errorf("diffusion: %s: Perturb: batch of length %d (dst %d), want a multiple of V=%d", sde.Name(), len(x), len(dst), V)
	}
	m, q := make([]float64, V), make([]float64, V)
	if err := sde.Transition(s, t, m, q); err != nil {
		return err
	}
	u := make([]float64, V)
	for b := 0; b < len(x); b += V {
		l.ToModes(u, x[b:b+V])
		for j := range u {
			u[j] = m[j]*u[j] + math.Sqrt(q[j])*rng.NormFloat64()
		}
		l.FromModes(dst[b:b+V], u)
	}
	return nil
}

// Carosso is the stochastic heat flow a_k = −p̂²_k, b_k = √Ω (the zero mode with a = −μ²).
type Carosso struct {
	lat        *Lattice
	Omega, Mu2 float64
	horizon    float64
	rate       []float64
}

// NewCarosso returns the heat flow with noise strength Ω > 0, zero-mode regulator μ² ≥ 0 (0: exact
// Brownian zero mode) and noise end T > 0.
func NewCarosso(lat *Lattice, omega, mu2, T float64) (*Carosso, error) {
	if !(omega > 0) || math.IsInf(omega, 1) {
		return nil, fmt.Errorf("diffusion: carosso: Omega=%v, want a finite Omega > 0", omega)
	}
	if !(mu2 >= 0) || math.IsInf(mu2, 1) {
		return nil, fmt.Errorf("diffusion: carosso: mu2=%v, want a finite mu2 ≥ 0", mu2)
	}
	if err := checkHorizon("carosso", T); err != nil {
		return nil, err
	}
	c := &Carosso{lat: lat, Omega: omega, Mu2: mu2, horizon: T, rate: lat.P2Modes()}
	c.rate[0] = mu2 // coordinate 0 is the zero mode
	return c, nil
}

func (c *Carosso) Name() string      { return "carosso" }
func (c *Carosso) Lattice() *Lattice { return c.lat }
func (c *Carosso) T() float64        { return c.horizon }

func (c *Carosso) Coefficients(t float64, a, b []float64) error {
	if err := checkTime("carosso", t, c.horizon); err != nil {
		return err
	}
	for j, r := range c.rate {
		a[j], b[j] = -r, math.Sqrt(c.Omega)
	}
	return nil
}

func (c *Carosso) Transition(s, t float64, mean, variance []float64) error {
	if err := checkInterval("carosso", s, t, c.horizon); err != nil {
		return err
	}
	d := t - s
	for j, r := range c.rate {
		mean[j] = math.Exp(-r * d)
		variance[j] = c.Omega * d * phi1(2*r*d) // Ω(1 − e^{−2rd})/(2r)
	}
	return nil
}

// Regulator is a Polchinski cutoff function K_t(p̂²) in log form.
type Regulator interface {
	// LogK is ln K_t(p̂²); DLogK its time derivative K̇/K (≤ 0).
	LogK(t, p2 float64) float64
	DLogK(t, p2 float64) float64
	String() string
}

// MassRegulator is K_t = exp(−(p̂² + μ²) t).
type MassRegulator struct{ Mu2 float64 }

func (r MassRegulator) LogK(t, p2 float64) float64  { return -(p2 + r.Mu2) * t }
func (r MassRegulator) DLogK(t, p2 float64) float64 { return -(p2 + r.Mu2) }
func (r MassRegulator) String() string              { return fmt.Sprintf("exp(−(p̂²+%g)t)", r.Mu2) }

// CutoffRegulator is K_t = exp(−p̂² / (e^{−t} Λ₀)²) = exp(−p̂² e^{2t} / Λ₀²).
type CutoffRegulator struct{ Lambda0 float64 }

func (r CutoffRegulator) LogK(t, p2 float64) float64 {
	return -p2 * math.Exp(2*t) / (r.Lambda0 * r.Lambda0)
}
func (r CutoffRegulator) DLogK(t, p2 float64) float64 { return 2 * r.LogK(t, p2) }
func (r CutoffRegulator) String() string              { return fmt.Sprintf("exp(−p̂² e^{2t}/%g²)", r.Lambda0) }

// Polchinski is the Polchinski flow with regulator K and propagator C_k = 1/(p̂²_k + m²).
type Polchinski struct {
	lat     *Lattice
	Reg     Regulator
	M2      float64
	horizon float64
}

// NewPolchinski returns the Polchinski flow; m² > 0, T > 0, and the regulator's parameters are checked
// (MassRegulator μ² ≥ 0, CutoffRegulator Λ₀ > 0).
func NewPolchinski(lat *Lattice, reg Regulator, m2, T float64) (*Polchinski, error) {
	switch r := reg.(type) {
	case nil:
		return nil, fmt.Errorf("diffusion: polchinski: no regulator")
	case MassRegulator:
		if !(r.Mu2 >= 0) || math.IsInf(r.Mu2, 1) {
			return nil, fmt.Errorf("diffusion: polchinski: MassRegulator mu2=%v, want a finite mu2 ≥ 0", r.Mu2)
		}
	case CutoffRegulator:
		if !(r.Lambda0 > 0) || math.IsInf(r.Lambda0, 1) {
			return nil, fmt.Errorf("diffusion: polchinski: CutoffRegulator Lambda0=%v, want a finite Lambda0 > 0", r.Lambda0)
		}
	}
	if !(m2 > 0) || math.IsInf(m2, 1) {
		return nil, fmt.Errorf("diffusion: polchinski: m2=%v, want a finite m2 > 0", m2)
	}
	if err := checkHorizon("polchinski", T); err != nil {
		return nil, err
	}
	return &Polchinski{lat: lat, Reg: reg, M2: m2, horizon: T}, nil
}

func (p *Polchinski) Name() string      { return "polchinski" }
func (p *Polchinski) Lattice() *Lattice { return p.lat }
func (p *Polchinski) T() float64        { return p.horizon }

func (p *Polchinski) Coefficients(t float64, a, b []float64) error {
	if err := checkTime("polchinski", t, p.horizon); err != nil {
		return err
	}
	for j, q := range p.lat.p2 {
		d := p.Reg.DLogK(t, q)
		a[j] = d
		b[j] = math.Sqrt(-d * math.Exp(p.Reg.LogK(t, q)) / (q + p.M2)) // b² = −K̇ C
	}
	return nil
}

func (p *Polchinski) Transition(s, t float64, mean, variance []float64) error {
	if err := checkInterval("polchinski", s, t, p.horizon); err != nil {
		return err
	}
	for j, q := range p.lat.p2 {
		ls, lt := p.Reg.LogK(s, q), p.Reg.LogK(t, q)
		mean[j] = math.Exp(lt - ls)
		variance[j] = math.Exp(lt) * -math.Expm1(lt-ls) / (q + p.M2) // C K_t (1 − K_t/K_s)
	}
	return nil
}

// Rescaled is ψ_j = e^{γ_j t} u_j of a base process: the "renormalised" variants.
type Rescaled struct {
	Base  SDE
	Gamma []float64 // per mode coordinate
}

// NewRescaled rescales the field of base by e^{γt} (the same γ in every mode).
func NewRescaled(base SDE, gamma float64) (*Rescaled, error) {
	g := make([]float64, base.Lattice().V)
	for j := range g {
		g[j] = gamma
	}
	return NewRescaledModes(base, g)
}

// NewRescaledModes rescales mode coordinate j by e^{γ_j t}.
func NewRescaledModes(base SDE, gamma []float64) (*Rescaled, error) {
	if len(gamma) != base.Lattice().V {
		return nil, fmt.Errorf("diffusion: rescaled %s: %d values of gamma, want V=%d", base.Name(), len(gamma), base.Lattice().V)
	}
	for j, g := range gamma {
		if math.IsNaN(g) || math.IsInf(g, 0) {
			return nil, fmt.Errorf("diffusion: rescaled %s: gamma[%d]=%v is not a finite number", base.Name(), j, g)
		}
	}
	return &Rescaled{Base: base, Gamma: append([]float64(nil), gamma...)}, nil
}

func (r *Rescaled) Name() string      { return "rescaled " + r.Base.Name() }
func (r *Rescaled) Lattice() *Lattice { return r.Base.Lattice() }
func (r *Rescaled) T() float64        { return r.Base.T() }

func (r *Rescaled) Coefficients(t float64, a, b []float64) error {
	if err := r.Base.Coefficients(t, a, b); err != nil {
		return err
	}
	for j, g := range r.Gamma {
		a[j] += g
		b[j] *= math.Exp(g * t)
	}
	return nil
}

func (r *Rescaled) Transition(s, t float64, mean, variance []float64) error {
	if err := r.Base.Transition(s, t, mean, variance); err != nil {
		return err
	}
	for j, g := range r.Gamma {
		mean[j] *= math.Exp(g * (t - s))
		variance[j] *= math.Exp(2 * g * t)
	}
	return nil
}

// VP is the variance-preserving SDE with a linear β schedule on [0, 1].
type VP struct {
	lat              *Lattice
	BetaMin, BetaMax float64
}

// NewVP returns the VP SDE; 0 ≤ β_min ≤ β_max, β_max > 0 (Song et al. use 0.1 and 20).
func NewVP(lat *Lattice, betaMin, betaMax float64) (*VP, error) {
	if !(betaMin >= 0 && betaMax >= betaMin && betaMax > 0) || math.IsInf(betaMax, 1) {
		return nil, fmt.Errorf("diffusion: vp: betaMin=%v, betaMax=%v, want 0 ≤ betaMin ≤ betaMax, betaMax > 0 finite", betaMin, betaMax)
	}
	return &VP{lat: lat, BetaMin: betaMin, BetaMax: betaMax}, nil
}

func (v *VP) Name() string      { return "vp" }
func (v *VP) Lattice() *Lattice { return v.lat }
func (v *VP) T() float64        { return 1 }

func (v *VP) intBeta(t float64) float64 { return v.BetaMin*t + 0.5*(v.BetaMax-v.BetaMin)*t*t }

func (v *VP) Coefficients(t float64, a, b []float64) error {
	if err := checkTime("vp", t, 1); err != nil {
		return err
	}
	beta := v.BetaMin + t*(v.BetaMax-v.BetaMin)
	for j := range a {
		a[j], b[j] = -beta/2, math.Sqrt(beta)
	}
	return nil
}

func (v *VP) Transition(s, t float64, mean, variance []float64) error {
	if err := checkInterval("vp", s, t, 1); err != nil {
		return err
	}
	d := v.intBeta(t) - v.intBeta(s)
	for j := range mean {
		mean[j], variance[j] = math.Exp(-d/2), -math.Expm1(-d)
	}
	return nil
}

// VE is the variance-exploding SDE with geometric σ(t) = σ_min (σ_max/σ_min)^t on [0, 1].
type VE struct {
	lat                *Lattice
	SigmaMin, SigmaMax float64
}

// NewVE returns the VE SDE; 0 < σ_min < σ_max.
func NewVE(lat *Lattice, sigmaMin, sigmaMax float64) (*VE, error) {
	if !(sigmaMin > 0 && sigmaMax > sigmaMin) || math.IsInf(sigmaMax, 1) {
		return nil, fmt.Errorf("diffusion: ve: sigmaMin=%v, sigmaMax=%v, want 0 < sigmaMin < sigmaMax finite", sigmaMin, sigmaMax)
	}
	return &VE{lat: lat, SigmaMin: sigmaMin, SigmaMax: sigmaMax}, nil
}

func (v *VE) Name() string      { return "ve" }
func (v *VE) Lattice() *Lattice { return v.lat }
func (v *VE) T() float64        { return 1 }

func (v *VE) sigma(t float64) float64 { return v.SigmaMin * math.Pow(v.SigmaMax/v.SigmaMin, t) }

func (v *VE) Coefficients(t float64, a, b []float64) error {
	if err := checkTime("ve", t, 1); err != nil {
		return err
	}
	g := v.sigma(t) * math.Sqrt(2*math.Log(v.SigmaMax/v.SigmaMin))
	for j := range a {
		a[j], b[j] = 0, g
	}
	return nil
}

func (v *VE) Transition(s, t float64, mean, variance []float64) error {
	if err := checkInterval("ve", s, t, 1); err != nil {
		return err
	}
	ss, st := v.sigma(s), v.sigma(t)
	for j := range mean {
		mean[j], variance[j] = 1, st*st-ss*ss
	}
	return nil
}

// ReverseDrift writes the drift of the reverse-time SDE, F⁻¹[a ũ − b² s̃] (mode by mode), for every field of
// the batch x with score values s (both position space, length n·V) into dst (same length; may alias s).
// Integrated backwards in time with noise b dW̄ it samples p_t from p_T.
func ReverseDrift(sde SDE, t float64, x, s, dst []float64) error {
	return reverseDrift(sde, t, x, s, dst, 1)
}

// ProbabilityFlowDrift writes the probability-flow ODE's velocity F⁻¹[a ũ − ½ b² s̃] into dst.
func ProbabilityFlowDrift(sde SDE, t float64, x, s, dst []float64) error {
	return reverseDrift(sde, t, x, s, dst, 0.5)
}

func reverseDrift(sde SDE, t float64, x, s, dst []float64, c float64) error {
	l := BasisOf(sde)
	V := l.Size()
	if len(x)%V != 0 || len(s) != len(x) || len(dst) != len(x) {
		return fmt.Errorf("diffusion: %s: drift: x, s, dst have lengths %d, %d, %d, want equal multiples of V=%d", sde.Name(), len(x), len(s), len(dst), V)
	}
	a, b := make([]float64, V), make([]float64, V)
	if err := sde.Coefficients(t, a, b); err != nil {
		return err
	}
	u, w := make([]float64, V), make([]float64, V)
	for i := 0; i < len(x); i += V {
		l.ToModes(u, x[i:i+V])
		l.ToModes(w, s[i:i+V])
		for j := range u {
			u[j] = a[j]*u[j] - c*b[j]*b[j]*w[j]
		}
		l.FromModes(dst[i:i+V], u)
	}
	return nil
}
