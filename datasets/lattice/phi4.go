package lattice

import (
	"fmt"
	"maps"

	G "gorgonia.org/gorgonia"

	"rgflow/layers"
)

// phi4Core is the standard-convention φ⁴ action with C real components per site:
//
//	S = Σ_x [ ½ Σ_μ |φ_{x+μ} − φ_x|² + ½ m² |φ_x|² + λ |φ_x|⁴ ],  |φ_x|² = Σ_c φ_{c,x}².
//
// Phi4 (C = 1) and O2 (C = 2) embed it. It holds no mutable state: every method is safe for concurrent use.
type phi4Core struct {
	name       string // "free", "phi4", "o2"
	L, C       int
	m2, lambda float64
	conv       string // convention the parameters were given in: "standard", "aks", "hopping"
	convParams map[string]float64
	logZOffset float64 // ln Z_conv − ln Z
}

func newPhi4Core(name string, C, L int, m2, lambda float64) (phi4Core, error) {
	if err := checkSize(name, L); err != nil {
		return phi4Core{}, err
	}
	if err := checkFinite(name, "m2", m2, "lambda", lambda); err != nil {
		return phi4Core{}, err
	}
	if lambda < 0 {
		return phi4Core{}, fmt.Errorf("lattice: %s: lambda=%v is negative (the action would be unbounded below)", name, lambda)
	}
	if lambda == 0 && !(m2 > 0) {
		return phi4Core{}, fmt.Errorf("lattice: %s: m2=%v with lambda=0: a free field needs m2 > 0", name, m2)
	}
	return phi4Core{name: name, L: L, C: C, m2: m2, lambda: lambda, conv: "standard"}, nil
}

// Name is the action's identifier: "free" (λ = 0 built by NewFree), "phi4" or "o2".
func (p *phi4Core) Name() string { return p.name }

// Channels is the number of real field components per site.
func (p *phi4Core) Channels() int { return p.C }

// Size is the lattice side L.
func (p *phi4Core) Size() int { return p.L }

// Params are the standard-convention parameters {"m2", "lambda"}.
func (p *phi4Core) Params() map[string]float64 {
	return map[string]float64{"m2": p.m2, "lambda": p.lambda}
}

// Z2 is true: S(−φ) = S(φ) (for O2 the whole O(2) group is a symmetry, and −1 belongs to it).
func (p *phi4Core) Z2() bool { return true }

// M2 is the standard-convention mass term m².
func (p *phi4Core) M2() float64 { return p.m2 }

// Lambda is the standard-convention quartic coupling λ.
func (p *phi4Core) Lambda() float64 { return p.lambda }

// Convention is the convention the parameters were given in: "standard", "aks" or "hopping".
func (p *phi4Core) Convention() string { return p.conv }

// ConventionParams returns the parameters as the user gave them, keyed by their names in that convention
// ({"m2_a", "lambda_a"} for AKS, {"kappa", "lambda_h"} for hopping, {"m2", "lambda"} for standard).
func (p *phi4Core) ConventionParams() map[string]float64 {
	if p.convParams == nil {
		return p.Params()
	}
	return maps.Clone(p.convParams)
}

// LogZOffset is ln Z_conv − ln Z: add it to a standard-convention ln Z to get the partition function of the
// convention the parameters were given in (0 for "standard"; see AKSLogZOffset, HoppingLogZOffset).
func (p *phi4Core) LogZOffset() float64 { return p.logZOffset }

// Eval is the host action S(φ) of one configuration laid out as (C, L, L).
func (p *phi4Core) Eval(phi []float64) float64 {
	L, V := p.L, p.L*p.L
	checkField(p.name, p.C*V, phi)
	half, m2, lam := 0.5, p.m2, p.lambda
	var kin, pot float64
	if p.C == 1 {
		// One pass: right and lower bonds of every site plus its potential.
		m := L - 1
		for i := range L {
			row := phi[i*L : (i+1)*L : (i+1)*L]
			up := phi[next(i, L)*L:][:L:L]
			for j := range m {
				x := row[j]
				dj := row[j+1] - x
				di := up[j] - x
				x2 := x * x
				kin += dj*dj + di*di
				pot += x2 * (half*m2 + lam*x2)
			}
			x := row[m]
			dj := row[0] - x
			di := up[m] - x
			x2 := x * x
			kin += dj*dj + di*di
			pot += x2 * (half*m2 + lam*x2)
		}
		return half*kin + pot
	}
	for c := range p.C {
		f := phi[c*V : (c+1)*V]
		for i := range L {
			row := f[i*L : (i+1)*L]
			up := f[next(i, L)*L:][:L]
			for j := range L {
				x := row[j]
				dj := row[next(j, L)] - x
				di := up[j] - x
				kin += dj*dj + di*di
			}
		}
	}
	switch p.C {
	case 2:
		f0, f1 := phi[:V], phi[V:2*V]
		for s, x := range f0 {
			y := f1[s]
			r2 := x*x + y*y
			pot += r2 * (half*m2 + lam*r2)
		}
	default:
		for s := range V {
			var r2 float64
			for c := range p.C {
				x := phi[c*V+s]
				r2 += x * x
			}
			pot += r2 * (half*m2 + lam*r2)
		}
	}
	return half*kin + pot
}

// Force writes −∂S/∂φ = Σ_{y~x} φ_y − (4 + m²) φ_x − 4λ|φ_x|² φ_x into dst. It does not allocate.
func (p *phi4Core) Force(dst, phi []float64) {
	L, V := p.L, p.L*p.L
	checkField(p.name, p.C*V, dst, phi)
	a := 4 + p.m2
	b := 4 * p.lambda
	if p.C == 1 {
		forceLaplacian(dst, phi, L, a, b)
		return
	}
	for c := range p.C {
		forceLaplacian(dst[c*V:(c+1)*V], phi[c*V:(c+1)*V], L, a, 0)
	}
	if b == 0 {
		return
	}
	if p.C == 2 {
		f0, f1 := phi[:V], phi[V:2*V]
		d0, d1 := dst[:V], dst[V:2*V]
		for s, x := range f0 {
			y := f1[s]
			r2 := b * (x*x + y*y)
			d0[s] -= r2 * x
			d1[s] -= r2 * y
		}
		return
	}
	for s := range V {
		var r2 float64
		for c := range p.C {
			x := phi[c*V+s]
			r2 += x * x
		}
		r2 *= b
		for c := range p.C {
			dst[c*V+s] -= r2 * phi[c*V+s]
		}
	}
}

// forceLaplacian writes dst_x = Σ_{y~x} φ_y − a φ_x − b φ_x³ for one L×L periodic component. The inner loop
// runs over the interior columns of each row with the four neighbour rows/columns as contiguous slices.
func forceLaplacian(dst, phi []float64, L int, a, b float64) {
	m := L - 1
	for i := range L {
		row := phi[i*L : (i+1)*L : (i+1)*L]
		up := phi[next(i, L)*L:][:L:L]
		dn := phi[prev(i, L)*L:][:L:L]
		d := dst[i*L : (i+1)*L : (i+1)*L]
		// j = 0 and j = L−1 wrap around.
		x := row[0]
		d[0] = row[1] + row[m] + up[0] + dn[0] - x*(a+b*x*x)
		for j := 1; j < m; j++ {
			x := row[j]
			d[j] = row[j-1] + row[j+1] + up[j] + dn[j] - x*(a+b*x*x)
		}
		x = row[m]
		d[m] = row[m-1] + row[0] + up[m] + dn[m] - x*(a+b*x*x)
	}
}

// Action is the graph form: phi (B, C, L, L) → S per sample (B), in the scope's dtype, as one fused op
// (the host formulas, in float64) with a one-op gradient; differentiable once (see ActionGraph).
func (p *phi4Core) Action(s *layers.Scope, phi *G.Node) (*G.Node, error) {
	if err := checkGraphInput(p.name, s, phi, p.C, p.L); err != nil {
		return nil, err
	}
	out, err := G.ApplyOp(phi4Op{p}, phi)
	if err != nil {
		return nil, fmt.Errorf("lattice: %s: graph action: %w", p.name, err)
	}
	return out, nil
}

// ActionGraph is Action built from Gorgonia's elementary ops (periodic shifts, differences, squares, sums):
// the reference the fused op is tested against, and twice differentiable.
func (p *phi4Core) ActionGraph(s *layers.Scope, phi *G.Node) (*G.Node, error) {
	if err := checkGraphInput(p.name, s, phi, p.C, p.L); err != nil {
		return nil, err
	}
	wrap := func(err error) error { return fmt.Errorf("lattice: %s: graph action: %w", p.name, err) }
	sq, err := gradSquares(phi)
	if err != nil {
		return nil, wrap(err)
	}
	p2, err := G.Square(phi)
	if err != nil {
		return nil, wrap(err)
	}
	// local = ½ Σ_μ (Δ_μ φ)² + ½ m² φ², summed over channels and sites.
	mp, err := G.Mul(s.Scalar(p.m2), p2)
	if err != nil {
		return nil, wrap(err)
	}
	local, err := G.Add(sq, mp)
	if err != nil {
		return nil, wrap(err)
	}
	if local, err = G.Mul(s.Scalar(0.5), local); err != nil {
		return nil, wrap(err)
	}
	if p.lambda == 0 {
		out, err := G.Sum(local, 1, 2, 3)
		if err != nil {
			return nil, wrap(err)
		}
		return out, nil
	}
	r2 := p2
	if p.C > 1 {
		if r2, err = G.Sum(p2, 1); err != nil { // (B, L, L)
			return nil, wrap(err)
		}
	}
	r4, err := G.Square(r2)
	if err != nil {
		return nil, wrap(err)
	}
	if r4, err = G.Mul(s.Scalar(p.lambda), r4); err != nil {
		return nil, wrap(err)
	}
	if p.C == 1 {
		if local, err = G.Add(local, r4); err != nil {
			return nil, wrap(err)
		}
		out, err := G.Sum(local, 1, 2, 3)
		if err != nil {
			return nil, wrap(err)
		}
		return out, nil
	}
	kin, err := G.Sum(local, 1, 2, 3)
	if err != nil {
		return nil, wrap(err)
	}
	quart, err := G.Sum(r4, 1, 2)
	if err != nil {
		return nil, wrap(err)
	}
	out, err := G.Add(kin, quart)
	if err != nil {
		return nil, wrap(err)
	}
	return out, nil
}

// Phi4 is real (C = 1) lattice φ⁴ theory in the standard convention,
//
//	S = Σ_x [ ½ Σ_μ (φ_{x+μ} − φ_x)² + ½ m² φ_x² + λ φ_x⁴ ],
//
// including the free field (λ = 0). Whatever convention the parameters were given in, Eval, Force and Action
// take the field in the standard normalisation (φ = √2 φ_A = √(2κ) φ_H). It holds no mutable state and is
// safe for concurrent use.
type Phi4 struct{ phi4Core }

// NewFree returns the free massive scalar field (λ = 0, m² > 0; Name "free"), whose exact references are
// FreeLogZ, FreeG and FreeGTilde.
func NewFree(L int, m2 float64) (*Phi4, error) {
	if err := checkSize("free", L); err != nil {
		return nil, err
	}
	if err := checkFinite("free", "m2", m2); err != nil {
		return nil, err
	}
	if !(m2 > 0) {
		return nil, fmt.Errorf("lattice: free: m2=%v, want m2 > 0 (a massless or tachyonic free field has no normalisable distribution)", m2)
	}
	c, err := newPhi4Core("free", 1, L, m2, 0)
	if err != nil {
		return nil, err
	}
	return &Phi4{c}, nil
}

// NewPhi4 returns real φ⁴ in the standard convention. m² may be negative (broken phase) when λ > 0;
// λ = 0 requires m² > 0.
func NewPhi4(L int, m2, lambda float64) (*Phi4, error) {
	c, err := newPhi4Core("phi4", 1, L, m2, lambda)
	if err != nil {
		return nil, err
	}
	return &Phi4{c}, nil
}

// NewPhi4AKS returns real φ⁴ given in the Albergo–Kanwar–Shanahan / Gerdes convention
// S_A = Σ_x [ Σ_μ (φ_{A,x+μ} − φ_{A,x})² + m_A² φ_A² + λ_A φ_A⁴ ], converted exactly (m² = m_A², λ = λ_A/4,
// φ = √2 φ_A). The returned action is in standard variables; LogZOffset is −(V/2) ln 2.
func NewPhi4AKS(L int, m2A, lambdaA float64) (*Phi4, error) {
	if err := checkFinite("phi4", "m2A", m2A, "lambdaA", lambdaA); err != nil {
		return nil, err
	}
	if lambdaA < 0 {
		return nil, fmt.Errorf("lattice: phi4: lambdaA=%v is negative (the action would be unbounded below)", lambdaA)
	}
	m2, lambda := AKSToStandard(m2A, lambdaA)
	c, err := newPhi4Core("phi4", 1, L, m2, lambda)
	if err != nil {
		return nil, fmt.Errorf("%w (AKS m2A=%v, lambdaA=%v)", err, m2A, lambdaA)
	}
	c.conv = "aks"
	c.convParams = map[string]float64{"m2_a": m2A, "lambda_a": lambdaA}
	c.logZOffset = AKSLogZOffset(L, 1)
	return &Phi4{c}, nil
}

// NewPhi4Hopping returns real φ⁴ given in the hopping (NeuralRG) convention
// S_H = Σ_x [ −2κ Σ_μ φ_{H,x} φ_{H,x+μ} + φ_H² + λ_H (φ_H² − 1)² ] (constant V·λ_H kept), converted
// exactly (m² = (1 − 2λ_H)/κ − 4, λ = λ_H/(4κ²), φ = √(2κ) φ_H). κ must be positive. The returned action
// is in standard variables; LogZOffset is −(V/2) ln(2κ) − V λ_H.
func NewPhi4Hopping(L int, kappa, lambdaH float64) (*Phi4, error) {
	c, err := newHoppingCore("phi4", 1, L, kappa, lambdaH)
	if err != nil {
		return nil, err
	}
	return &Phi4{c}, nil
}

func newHoppingCore(name string, C, L int, kappa, lambdaH float64) (phi4Core, error) {
	if err := checkFinite(name, "kappa", kappa, "lambdaH", lambdaH); err != nil {
		return phi4Core{}, err
	}
	if !(kappa > 0) {
		return phi4Core{}, fmt.Errorf("lattice: %s: kappa=%v, want kappa > 0 (hopping convention)", name, kappa)
	}
	if lambdaH < 0 {
		return phi4Core{}, fmt.Errorf("lattice: %s: lambdaH=%v is negative (the action would be unbounded below)", name, lambdaH)
	}
	m2, lambda := HoppingToStandard(kappa, lambdaH)
	c, err := newPhi4Core(name, C, L, m2, lambda)
	if err != nil {
		return phi4Core{}, fmt.Errorf("%w (hopping kappa=%v, lambdaH=%v)", err, kappa, lambdaH)
	}
	c.conv = "hopping"
	c.convParams = map[string]float64{"kappa": kappa, "lambda_h": lambdaH}
	c.logZOffset = HoppingLogZOffset(L, C, kappa, lambdaH)
	return c, nil
}

var _ Action = (*Phi4)(nil)
