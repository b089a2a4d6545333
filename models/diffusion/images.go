package diffusion

import (
	"fmt"
	"math"
)

// ImageBasis is the orthonormal cosine basis (DCT-II) of C-channel H×W images, channel by channel: the
// eigenvectors of the lattice Laplacian with reflecting (Neumann) boundaries, which suit images (no
// wrap-around from one edge to the other). An image is C·H·W values in (C, H, W) order; mode coordinate
// (c, k, l), at the same flat position c·H·W + k·W + l, is
//
//	u_{c,k,l} = Σ_{y,x} s_k cos(π(y+½)k/H) s_l cos(π(x+½)l/W) x_{c,y,x},   s_0 = √(1/n), s_k = √(2/n),
//
// with frequency λ_{k,l} = 4 sin²(πk/2H) + 4 sin²(πl/2W) (the Laplacian's eigenvalue; λ = 0 for the mean
// of each channel).
type ImageBasis struct {
	C, H, W int
	ch, cw  []float64 // (n × n) cosine matrices, row k is basis vector k
	lam     []float64 // per mode coordinate
}

// NewImageBasis returns the cosine basis of C×H×W images (all ≥ 1).
func NewImageBasis(c, h, w int) (*ImageBasis, error) {
	if c < 1 || h < 1 || w < 1 {
		return nil, fmt.Errorf("diffusion: image basis %d×%d×%d, want C, H, W ≥ 1", c, h, w)
	}
	b := &ImageBasis{C: c, H: h, W: w, ch: dctMatrix(h), cw: dctMatrix(w), lam: make([]float64, c*h*w)}
	for ci := range c {
		for k := range h {
			for l := range w {
				sk, sl := math.Sin(math.Pi*float64(k)/float64(2*h)), math.Sin(math.Pi*float64(l)/float64(2*w))
				b.lam[(ci*h+k)*w+l] = 4*sk*sk + 4*sl*sl
			}
		}
	}
	return b, nil
}

func dctMatrix(n int) []float64 {
	m := make([]float64, n*n)
	for k := range n {
		s := math.Sqrt(2 / float64(n))
		if k == 0 {
			s = math.Sqrt(1 / float64(n))
		}
		for i := range n {
			m[k*n+i] = s * math.Cos(math.Pi*(float64(i)+0.5)*float64(k)/float64(n))
		}
	}
	return m
}

// Size is C·H·W.
func (b *ImageBasis) Size() int { return b.C * b.H * b.W }

// Frequencies returns a copy of λ per mode coordinate.
func (b *ImageBasis) Frequencies() []float64 { return append([]float64(nil), b.lam...) }

// ToModes writes the cosine coefficients of the image x into dst (may alias x).
func (b *ImageBasis) ToModes(dst, x []float64) { b.apply(dst, x, false) }

// FromModes writes the image with cosine coefficients u into dst (may alias u).
func (b *ImageBasis) FromModes(dst, u []float64) { b.apply(dst, u, true) }

// apply computes M_H X M_Wᵀ per channel (inverse: M_Hᵀ X M_W).
func (b *ImageBasis) apply(dst, x []float64, inv bool) {
	H, W := b.H, b.W
	tmp := make([]float64, H*W)
	out := make([]float64, H*W)
	for c := range b.C {
		src := x[c*H*W : (c+1)*H*W]
		// rows: tmp[y, l] = Σ_x src[y, x] A[l, x] (A = cw forward, cwᵀ inverse)
		clear(tmp)
		for y := range H {
			row := src[y*W : (y+1)*W]
			t := tmp[y*W : (y+1)*W]
			for l := range W {
				var s float64
				if inv {
					for i, v := range row {
						s += v * b.cw[i*W+l]
					}
				} else {
					a := b.cw[l*W : (l+1)*W]
					for i, v := range row {
						s += v * a[i]
					}
				}
				t[l] = s
			}
		}
		// columns: out[k, l] = Σ_y B[k, y] tmp[y, l]
		clear(out)
		for k := range H {
			o := out[k*W : (k+1)*W]
			for y := range H {
				var c float64
				if inv {
					c = b.ch[y*H+k]
				} else {
					c = b.ch[k*H+y]
				}
				t := tmp[y*W : (y+1)*W]
				for l := range o {
					o[l] += c * t[l]
				}
			}
		}
		copy(dst[c*H*W:(c+1)*H*W], out)
	}
}

// Schedule names of the image processes' signal/noise schedules.
const (
	ScheduleLinear = "linear" // VP: β(t) = β_min + t(β_max − β_min)
	ScheduleCosine = "cosine" // VP: log-SNR λ(t) = −2 ln tan(A t + B), from λ_max at t = 0 to λ_min at t = 1
)

// ImageProcess is a linear forward process on C×H×W images, diagonal in the cosine modes (ImageBasis):
//
//	u_{j,t} = α(t) d_j(t) u_{j,0}·(…)  exactly:  mean factor m_j(t) = α(t) d_j(t), noise variance Q(t),
//
// i.e. u_t | u_s = (m_j(t)/m_j(s)) u_s + √(Q(t) − (m_j(t)/m_j(s))² Q(s)) ξ (white noise ξ, the same in every
// mode), so the SDE has a_j = d ln m_j/dt and b_j² = dQ/dt − 2 a_j Q. Kinds:
//
//   - "vp": α² + σ² = 1, Q = σ², d = 1; schedule linear (α = e^{−½∫β}) or cosine (α² = sigmoid(λ(t))).
//   - "ve": α = 1, d = 1, Q(t) = σ(t)² with σ(t) = σ_min (σ_max/σ_min)^t (transition variance σ_t² − σ_s²).
//   - "heat" (blurring diffusion, Hoogeboom & Salimans 2023): the VP schedule times a heat-equation decay per
//     mode, d_j(t) = (1 − d_min) e^{−λ_j τ(t)} + d_min with τ(t) = σ_B² sin⁴(πt/2)/2: high frequencies are
//     damped first, the channel means (λ = 0) only by α. Q/m_j² grows with t in every mode, so every
//     transition is a valid Gaussian.
//
// Time runs on [0, 1].
type ImageProcess struct {
	basis    *ImageBasis
	kind     string
	Schedule string
	// Linear VP schedule.
	BetaMin, BetaMax float64
	// Cosine VP schedule: log-SNR range.
	LogSNRMin, LogSNRMax float64
	// VE.
	SigmaMin, SigmaMax float64
	// Heat: blur strength σ_B (τ(1) = σ_B²/2) and the floor d_min of the decay.
	BlurSigma, BlurMin float64
	lam                []float64
}

// DefaultImageProcess returns the process of the given kind ("vp", "ve", "heat") and schedule ("linear",
// "cosine"; ignored by ve) with the standard settings: β ∈ [0.1, 20], log-SNR ∈ [−8, 12] (α² = 3·10⁻⁴ at t = 1; a lower end stiffens the SDE near t = 1 as e^{−λ_min/2}), σ ∈ [0.002, 50],
// σ_B = 20, d_min = 0.001.
func DefaultImageProcess(b *ImageBasis, kind, schedule string) (*ImageProcess, error) {
	p := &ImageProcess{basis: b, kind: kind, Schedule: schedule, BetaMin: 0.1, BetaMax: 20, LogSNRMin: -8, LogSNRMax: 12,
		SigmaMin: 0.002, SigmaMax: 50, BlurSigma: 20, BlurMin: 0.001}
	if err := p.Check(); err != nil {
		return nil, err
	}
	return p, nil
}

// Check validates the settings (call it after changing the exported fields).
func (p *ImageProcess) Check() error {
	if p.basis == nil {
		return fmt.Errorf("diffusion: image process: no basis")
	}
	switch p.kind {
	case "vp", "heat":
		switch p.Schedule {
		case ScheduleLinear:
			if !(p.BetaMin >= 0 && p.BetaMax >= p.BetaMin && p.BetaMax > 0) || math.IsInf(p.BetaMax, 1) {
				return fmt.Errorf("diffusion: %s: betaMin=%v, betaMax=%v, want 0 ≤ betaMin ≤ betaMax, betaMax > 0 finite", p.kind, p.BetaMin, p.BetaMax)
			}
		case ScheduleCosine:
			if !(p.LogSNRMin < p.LogSNRMax) || math.IsInf(p.LogSNRMin, 0) || math.IsInf(p.LogSNRMax, 0) {
				return fmt.Errorf("diffusion: %s: log-SNR range [%v, %v], want finite min < max", p.kind, p.LogSNRMin, p.LogSNRMax)
			}
		default:
			return fmt.Errorf("diffusion: %s: schedule %q, want linear or cosine", p.kind, p.Schedule)
		}
	case "ve":
		if !(p.SigmaMin > 0 && p.SigmaMax > p.SigmaMin) || math.IsInf(p.SigmaMax, 1) {
			return fmt.Errorf("diffusion: ve: sigmaMin=%v, sigmaMax=%v, want 0 < sigmaMin < sigmaMax finite", p.SigmaMin, p.SigmaMax)
		}
	default:
		return fmt.Errorf("diffusion: image process %q, want vp, ve or heat", p.kind)
	}
	if p.kind == "heat" && (!(p.BlurSigma > 0) || !(p.BlurMin > 0 && p.BlurMin < 1) || math.IsInf(p.BlurSigma, 1)) {
		return fmt.Errorf("diffusion: heat: blur sigma %v and floor %v, want sigma > 0 finite and 0 < floor < 1", p.BlurSigma, p.BlurMin)
	}
	p.lam = p.basis.Frequencies()
	return nil
}

func (p *ImageProcess) Name() string {
	if p.kind == "ve" {
		return "ve"
	}
	return p.kind + "-" + p.Schedule
}

// Kind is "vp", "ve" or "heat".
func (p *ImageProcess) Kind() string { return p.kind }

// Lattice is nil: images are not periodic lattices (Basis is the mode basis).
func (p *ImageProcess) Lattice() *Lattice { return nil }

// Basis is the image cosine basis.
func (p *ImageProcess) Basis() Basis { return p.basis }

// Image is the image basis (its C, H, W).
func (p *ImageProcess) Image() *ImageBasis { return p.basis }

// T is 1.
func (p *ImageProcess) T() float64 { return 1 }

// cosine schedule: λ(t) = −2 ln tan(A t + B).
func (p *ImageProcess) cosAB() (A, B float64) {
	B = math.Atan(math.Exp(-p.LogSNRMax / 2))
	A = math.Atan(math.Exp(-p.LogSNRMin/2)) - B
	return A, B
}

// base returns ln α(t), its derivative, Q(t) and the base diffusion b²(t) = dQ/dt − 2 (d ln α/dt) Q.
func (p *ImageProcess) base(t float64) (logA, dlogA, q, b2 float64) {
	switch {
	case p.kind == "ve":
		s := p.SigmaMin * math.Pow(p.SigmaMax/p.SigmaMin, t)
		return 0, 0, s * s, 2 * math.Log(p.SigmaMax/p.SigmaMin) * s * s
	case p.Schedule == ScheduleLinear:
		beta := p.BetaMin + t*(p.BetaMax-p.BetaMin)
		B := p.BetaMin*t + 0.5*(p.BetaMax-p.BetaMin)*t*t
		return -B / 2, -beta / 2, -math.Expm1(-B), beta
	default:
		A, B := p.cosAB()
		th := A*t + B
		l := -2 * math.Log(math.Tan(th))
		dl := -4 * A / math.Sin(2*th)
		s2 := sigmoid(-l)
		return -0.5 * softplus(-l), 0.5 * s2 * dl, s2, -s2 * dl
	}
}

// baseTransition is the transition of the undamped process: mean factor α(t)/α(s), variance.
func (p *ImageProcess) baseTransition(s, t float64) (logM, q float64) {
	ls, _, qs, _ := p.base(s)
	lt, _, qt, _ := p.base(t)
	if p.kind == "ve" {
		return 0, qt - qs
	}
	return lt - ls, -math.Expm1(2 * (lt - ls)) // α² + σ² = 1: Q_t − m² Q_s = 1 − m²
}

func (p *ImageProcess) tau(t float64) (tau, dtau float64) {
	if p.kind != "heat" {
		return 0, 0
	}
	s, c := math.Sincos(math.Pi * t / 2)
	sb2 := p.BlurSigma * p.BlurSigma
	return sb2 * s * s * s * s / 2, sb2 * math.Pi * s * s * s * c
}

// logDecay is ln d_j(t) and its time derivative for a mode of frequency lam.
func (p *ImageProcess) logDecay(lam, tau, dtau float64) (ld, dld float64) {
	if p.kind != "heat" {
		return 0, 0
	}
	e := (1 - p.BlurMin) * math.Exp(-lam*tau)
	d := e + p.BlurMin
	return math.Log(d), -lam * dtau * e / d
}

func (p *ImageProcess) Coefficients(t float64, a, b []float64) error {
	if err := checkTime(p.Name(), t, 1); err != nil {
		return err
	}
	_, dlogA, q, b2 := p.base(t)
	tau, dtau := p.tau(t)
	for j, lam := range p.lam {
		_, dld := p.logDecay(lam, tau, dtau)
		a[j] = dlogA + dld
		b[j] = math.Sqrt(b2 - 2*dld*q)
	}
	return nil
}

func (p *ImageProcess) Transition(s, t float64, mean, variance []float64) error {
	if err := checkInterval(p.Name(), s, t, 1); err != nil {
		return err
	}
	logM, q := p.baseTransition(s, t)
	_, _, qs, _ := p.base(s)
	if p.kind != "heat" {
		// No mode-dependent decay (lr = 0 below for every mode): the loop's numbers, computed once.
		lr := 0.0
		m, v := math.Exp(logM+lr), q+math.Exp(2*logM)*-math.Expm1(2*lr)*qs
		for j := range p.lam {
			mean[j], variance[j] = m, v
		}
		return nil
	}
	ts, _ := p.tau(s)
	tt, _ := p.tau(t)
	for j, lam := range p.lam {
		ldS, _ := p.logDecay(lam, ts, 0)
		ldT, _ := p.logDecay(lam, tt, 0)
		lr := ldT - ldS // ln(d_t/d_s) ≤ 0
		m := math.Exp(logM + lr)
		mean[j] = m
		// Q_t − m² Q_s = [Q_t − (α_t/α_s)² Q_s] + (α_t/α_s)² (1 − (d_t/d_s)²) Q_s
		variance[j] = q + math.Exp(2*logM)*-math.Expm1(2*lr)*qs
	}
	return nil
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// softplus is ln(1 + eˣ), accurate for large |x|.
func softplus(x float64) float64 {
	if x > 0 {
		return x + math.Log1p(math.Exp(-x))
	}
	return math.Log1p(math.Exp(x))
}
