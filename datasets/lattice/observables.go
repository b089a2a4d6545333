package lattice

import (
	"fmt"
	"math"
	"sync"
)

// Observables on lattice configurations. An Observer measures a fixed set of "primary" numbers
// on every configuration of every chain; ensemble estimates are functions of the primaries' means, with
// blocked-jackknife errors and τ_int per observable (Analyze).
//
// With V = L², C field components, M = Σ_x φ_x ∈ R^C the magnetisation vector, |M|² = Σ_c M_c², and
// G̃(p) = Σ_c |Σ_x e^{ip·x} φ_{c,x}|² / V, the reported observables are
//
//	abs_m   ⟨|M|⟩/V                          (for O(2) the magnitude of the mean field, also "abs_mean_field")
//	chi     χ = ⟨|M|²⟩/V = G̃(0)
//	chi_c   χ_c = (⟨|M|²⟩ − ⟨|M|⟩²)/V
//	phi2    ⟨|φ_x|²⟩, averaged over sites
//	G_half  G(L/2), with G(r) = Σ_c ⟨φ_{c,x} φ_{c,x+r μ̂}⟩ averaged over all sites x and both axes μ
//	U4      Binder cumulant 1 − (C/(C+2)) ⟨|M|⁴⟩/⟨|M|²⟩²; for C = 1 this is 1 − ⟨M⁴⟩/(3⟨M²⟩²)
//	mR2     m_R² = 4 sin²(π/L) / (G̃(0)/G̃(p₁) − 1), p₁ = (2π/L, 0), G̃(p₁) averaged over both axes
//	xi2     ξ₂ = 1/m_R (second-moment correlation length)
//	Z       G̃(0) m_R²
//	gR      −(⟨|M|⁴⟩ − (1 + 2/C)⟨|M|²⟩²) m_R² / (V χ²); for C = 1, −(⟨M⁴⟩ − 3⟨M²⟩²) m_R²/(V χ²)
//
// The C-dependent factors make U4 and g_R vanish for a Gaussian (free) field for every C: ⟨|M|⁴⟩ =
// (1 + 2/C)⟨|M|²⟩² for an isotropic Gaussian vector. Undefined values (m_R² when G̃(0) ≤ G̃(p₁), ξ₂ when
// m_R² ≤ 0) are NaN.
//
// O(2) (C = 2) adds the helicity modulus ("helicity"), the response of the free energy F = −ln Z to a
// uniform twist α per link of the O(2) angle along one axis, Υ = (1/V) ∂²F/∂α² at α = 0. For the
// standard action, whose only non-invariant term under the twist is −Σ_x φ_x·φ_{x+μ̂}, with
// e_μ = Σ_x φ_x·φ_{x+μ̂} and j_μ = Σ_x (φ_{0,x} φ_{1,x+μ̂} − φ_{1,x} φ_{0,x+μ̂}),
//
//	Υ = (1/V) [ ⟨e_μ⟩ − ⟨j_μ²⟩ ],   averaged over μ
//
// (⟨j_μ⟩ = 0 by the reflection symmetry and is dropped). Υ is dimensionless: in the fixed-modulus
// (XY) limit φ_x = √K (cos θ_x, sin θ_x) it is Υ_XY/T with K = 1/T, so the Nelson–Kosterlitz jump at
// T_BKT is Υ = 2/π (2T/π when the helicity modulus is measured in units of the coupling).
//
// The relaxed Ising model (Name "ising") adds spin observables through E[σ_i | x] = tanh x_i, the spins
// being independent given x (m = Σσ/N, N = V):
//
//	m2_improved  ⟨m²⟩ with the improved estimator (mean tanh x)² − Σ tanh² x / N² + 1/N = E[m² | x]
//	abs_m_spin   ⟨|m|⟩ with E[|m| | x] computed exactly from the Poisson-binomial distribution of Σσ
//	             (O(N²) per configuration; for N > 4096 the normal approximation, error O(1/N))
//	U4_spin      1 − E[m⁴]/(3 E[m²]²) with E[m⁴ | x] exact from the independent spins
//
// The field observables above are then those of the auxiliary field x.

// primary indices of the quantities measured on every configuration.
const (
	pAbsM  = iota // |M|/V
	pM2           // |M|²/V²
	pM4           // |M|⁴/V⁴
	pPhi2         // Σ_x |φ_x|²/V
	pGt1          // G̃(p₁), averaged over both axes
	pGt11         // G̃ at k = (1, 1), averaged with (1, −1)
	pGt2          // G̃ at k = (2, 0), averaged over both axes
	pFixed        // number of fixed primaries; then G(r), r = 0 … L/2; then the extras
)

// Observer measures configurations of an action on the host. Measure may be called concurrently for
// different chains; Results must be called after all measurements.
type Observer struct {
	L, C    int
	name    string
	nG      int // G(r) for r = 0 … nG−1 (nG = L/2 + 1)
	pHel    int // index of the helicity primary, −1 if none
	pSpin   int // index of the first Ising spin primary (m², |m|, m⁴), −1 if none
	names   []string
	cos1    []float64 // cos(2π i/L), sin(2π i/L)
	sin1    []float64
	mu      sync.Mutex // guards growth of data's chain slices
	data    [][][]float64
	scratch [][]float64 // per chain: row sums, column sums and the Poisson-binomial table
}

// NewObserver returns an observer for configurations of a (Channels, Size, and Name when a has one: the
// "ising" spin observables are added for Name() == "ising") measured in chains chains.
func NewObserver(a HostAction, chains int) *Observer {
	name := ""
	if n, ok := a.(interface{ Name() string }); ok {
		name = n.Name()
	}
	return newObserver(a.Channels(), a.Size(), name, chains)
}

func newObserver(C, L int, name string, chains int) *Observer {
	o := &Observer{L: L, C: C, name: name, nG: L/2 + 1, pHel: -1, pSpin: -1}
	o.names = []string{"abs_m", "m2", "m4", "phi2", "Gt1", "Gt11", "Gt2"}
	for r := range o.nG {
		o.names = append(o.names, fmt.Sprintf("G%d", r))
	}
	if C == 2 {
		o.pHel = len(o.names)
		o.names = append(o.names, "helicity")
	}
	if name == "ising" && C == 1 {
		o.pSpin = len(o.names)
		o.names = append(o.names, "m2_spin", "abs_m_spin", "m4_spin")
	}
	o.cos1 = make([]float64, L)
	o.sin1 = make([]float64, L)
	for i := range L {
		o.cos1[i] = math.Cos(2 * math.Pi * float64(i) / float64(L))
		o.sin1[i] = math.Sin(2 * math.Pi * float64(i) / float64(L))
	}
	o.data = make([][][]float64, len(o.names))
	for p := range o.data {
		o.data[p] = make([][]float64, chains)
	}
	o.scratch = make([][]float64, chains)
	return o
}

// Chains is the number of chains the observer was made for.
func (o *Observer) Chains() int { return len(o.scratch) }

// Visitor returns a Visitor that measures every configuration it is given.
func (o *Observer) Visitor() Visitor {
	return func(chain, _ int, phi []float64, _ float64) { o.Measure(chain, phi) }
}

// Primary returns the series [chain][t] of a primary quantity ("abs_m", "m2", "m4", "phi2", "Gt1", "Gt11", "Gt2",
// "G0", "G1", …, "helicity", "m2_spin", "abs_m_spin", "m4_spin") or nil.
func (o *Observer) Primary(name string) [][]float64 {
	for p, n := range o.names {
		if n == name {
			return o.data[p]
		}
	}
	return nil
}

// Measure records the primaries of one configuration phi (length C·L·L) of chain chain.
func (o *Observer) Measure(chain int, phi []float64) {
	L, C, V := o.L, o.C, o.L*o.L
	if len(phi) != C*V {
		panic(fmt.Sprintf("lattice: observer: field has %d values, want %d", len(phi), C*V))
	}
	sc := o.scratch[chain]
	np := len(o.names)
	if sc == nil {
		n := 2*L + o.nG + np
		if o.pSpin >= 0 {
			n += V + 1
		}
		sc = make([]float64, n)
		o.scratch[chain] = sc
	}
	rows, cols := sc[:L], sc[L:2*L]
	g := sc[2*L : 2*L+o.nG]
	vals := sc[2*L+o.nG : 2*L+o.nG+np]
	table := sc[2*L+o.nG+np:]
	clear(g)
	vf := float64(V)
	var m2, phi2, gt1, gt11, gt2 float64
	for c := range C {
		f := phi[c*V : (c+1)*V]
		clear(rows)
		clear(cols)
		mc := 0.0
		for i := range L {
			row := f[i*L : (i+1)*L]
			s := 0.0
			for j, v := range row {
				s += v
				cols[j] += v
				phi2 += v * v
			}
			rows[i] = s
			mc += s
		}
		m2 += mc * mc
		var re0, im0, re1, im1 float64
		for i := range L {
			re0 += o.cos1[i] * rows[i]
			im0 += o.sin1[i] * rows[i]
			re1 += o.cos1[i] * cols[i]
			im1 += o.sin1[i] * cols[i]
		}
		gt1 += 0.5 * (re0*re0 + im0*im0 + re1*re1 + im1*im1) / vf
		re0, im0, re1, im1 = 0, 0, 0, 0
		var re2, im2, re3, im3 float64
		for i := range L {
			row := f[i*L : (i+1)*L]
			for j, v := range row {
				p, q := mod(i+j, L), mod(i-j, L)
				re0 += o.cos1[p] * v
				im0 += o.sin1[p] * v
				re1 += o.cos1[q] * v
				im1 += o.sin1[q] * v
			}
			p := mod(2*i, L)
			re2 += o.cos1[p] * rows[i]
			im2 += o.sin1[p] * rows[i]
			re3 += o.cos1[p] * cols[i]
			im3 += o.sin1[p] * cols[i]
		}
		gt11 += 0.5 * (re0*re0 + im0*im0 + re1*re1 + im1*im1) / vf
		gt2 += 0.5 * (re2*re2 + im2*im2 + re3*re3 + im3*im3) / vf
		for r := range o.nG {
			s := 0.0
			for i := range L {
				row := f[i*L : (i+1)*L]
				dn := f[mod(i+r, L)*L:][:L]
				for j, v := range row {
					s += v * (dn[j] + row[mod(j+r, L)])
				}
			}
			g[r] += s / (2 * vf)
		}
	}
	vals[pAbsM] = math.Sqrt(m2) / vf
	vals[pM2] = m2 / (vf * vf)
	vals[pM4] = vals[pM2] * vals[pM2]
	vals[pPhi2] = phi2 / vf
	vals[pGt1] = gt1
	vals[pGt11] = gt11
	vals[pGt2] = gt2
	copy(vals[pFixed:], g)
	if o.pHel >= 0 {
		vals[o.pHel] = o.helicity(phi)
	}
	if o.pSpin >= 0 {
		vals[o.pSpin], vals[o.pSpin+1], vals[o.pSpin+2] = spinMoments(phi, table)
	}
	o.mu.Lock()
	for p, v := range vals {
		o.data[p][chain] = append(o.data[p][chain], v)
	}
	o.mu.Unlock()
}

// helicity returns (1/(2V)) Σ_μ (e_μ − j_μ²) for a two-component field (see the package notes above).
func (o *Observer) helicity(phi []float64) float64 {
	L, V := o.L, o.L*o.L
	a, b := phi[:V], phi[V:2*V]
	var out float64
	for mu := range 2 {
		var e, j float64
		for i := range L {
			for k := range L {
				x := i*L + k
				var y int
				if mu == 0 {
					y = next(i, L)*L + k
				} else {
					y = i*L + next(k, L)
				}
				e += a[x]*a[y] + b[x]*b[y]
				j += a[x]*b[y] - b[x]*a[y]
			}
		}
		out += e - j*j
	}
	return out / (2 * float64(V))
}

// spinMoments returns E[m² | x], E[|m| | x] and E[m⁴ | x] for N independent spins with E[σ_i] = tanh x_i,
// m = Σσ/N. table needs N+1 entries when N ≤ 4096.
func spinMoments(x, table []float64) (m2, absM, m4 float64) {
	n := len(x)
	nf := float64(n)
	// Power sums of t_i = tanh x_i: the cumulants of σ_i are κ₁ = t, κ₂ = 1 − t², κ₃ = −2t(1 − t²),
	// κ₄ = −2(1 − t²)(1 − 3t²); cumulants of independent variables add.
	var k1, k2, k3, k4 float64
	for _, v := range x {
		t := math.Tanh(v)
		u := 1 - t*t
		k1 += t
		k2 += u
		k3 += -2 * t * u
		k4 += -2 * u * (1 - 3*t*t)
	}
	// Raw moments of S = Σσ from its cumulants.
	s2 := k2 + k1*k1
	s4 := k4 + 4*k3*k1 + 3*k2*k2 + 6*k2*k1*k1 + k1*k1*k1*k1
	m2 = s2 / (nf * nf)
	m4 = s4 / (nf * nf * nf * nf)
	if n <= 4096 && len(table) >= n+1 {
		// Poisson-binomial distribution of the number of up spins, updated in place.
		q := table[:n+1]
		clear(q)
		q[0] = 1
		for i, v := range x {
			p := 0.5 * (1 + math.Tanh(v))
			for k := i + 1; k >= 1; k-- {
				q[k] = q[k]*(1-p) + q[k-1]*p
			}
			q[0] *= 1 - p
		}
		for k, w := range q {
			absM += w * math.Abs(float64(2*k-n))
		}
		absM /= nf
	} else {
		// Normal approximation: E|S| for S ~ N(μ, σ²).
		mu, sd := k1, math.Sqrt(k2)
		if sd == 0 {
			absM = math.Abs(mu) / nf
		} else {
			z := mu / sd
			absM = (mu*math.Erf(z/math.Sqrt2) + sd*math.Sqrt(2/math.Pi)*math.Exp(-0.5*z*z)) / nf
		}
	}
	return m2, absM, m4
}

// Result is one named ensemble estimate.
type Result struct {
	Name string
	Estimate
}

// Results are the ensemble estimates of a run: the named observables in report order and G(r).
type Results struct {
	Observables []Result
	G           []Estimate // G(r), r = 0 … L/2
	// Gt is G̃(p) at the lowest momenta p = 2πk/L, k in GtMomenta: (0,0), (1,0), (1,1), (2,0), each averaged
	// over the lattice rotations/reflections that map k to itself up to sign ((1,0) with (0,1), (1,1) with
	// (1,−1), (2,0) with (0,2)).
	Gt        []Estimate
	GtMomenta [][2]int
	Chains    int
	PerChain  int // measurements per chain
}

// Get returns the estimate called name and whether it exists.
func (r Results) Get(name string) (Estimate, bool) {
	for _, o := range r.Observables {
		if o.Name == name {
			return o.Estimate, true
		}
	}
	return Estimate{}, false
}

// derived is an observable as a function of some primaries' means.
type derived struct {
	name string
	deps []int
	f    func(m []float64) float64
}

func (o *Observer) derivedList() []derived {
	V := float64(o.L * o.L)
	Cf := float64(o.C)
	s2 := math.Sin(math.Pi / float64(o.L))
	s2 = 4 * s2 * s2
	mR2 := func(m2, gt1 float64) float64 {
		r := V*m2/gt1 - 1
		if !(r > 0) || math.IsInf(r, 0) {
			return math.NaN()
		}
		return s2 / r
	}
	gHalf := pFixed + o.L/2
	list := []derived{
		{"abs_m", []int{pAbsM}, func(m []float64) float64 { return m[0] }},
		{"chi", []int{pM2}, func(m []float64) float64 { return V * m[0] }},
		{"chi_c", []int{pM2, pAbsM}, func(m []float64) float64 { return V * (m[0] - m[1]*m[1]) }},
		{"phi2", []int{pPhi2}, func(m []float64) float64 { return m[0] }},
		{"G_half", []int{gHalf}, func(m []float64) float64 { return m[0] }},
		{"U4", []int{pM2, pM4}, func(m []float64) float64 { return 1 - Cf/(Cf+2)*m[1]/(m[0]*m[0]) }},
		{"xi2", []int{pM2, pGt1}, func(m []float64) float64 { return 1 / math.Sqrt(mR2(m[0], m[1])) }},
		{"mR2", []int{pM2, pGt1}, func(m []float64) float64 { return mR2(m[0], m[1]) }},
		{"Z", []int{pM2, pGt1}, func(m []float64) float64 { return V * m[0] * mR2(m[0], m[1]) }},
		{"gR", []int{pM2, pM4, pGt1}, func(m []float64) float64 {
			return -V * (m[1] - (1+2/Cf)*m[0]*m[0]) * mR2(m[0], m[2]) / (m[0] * m[0])
		}},
	}
	if o.pHel >= 0 {
		list = append(list,
			derived{"helicity", []int{o.pHel}, func(m []float64) float64 { return m[0] }},
			derived{"abs_mean_field", []int{pAbsM}, func(m []float64) float64 { return m[0] }})
	}
	if o.pSpin >= 0 {
		list = append(list,
			derived{"m2_improved", []int{o.pSpin}, func(m []float64) float64 { return m[0] }},
			derived{"abs_m_spin", []int{o.pSpin + 1}, func(m []float64) float64 { return m[0] }},
			derived{"U4_spin", []int{o.pSpin, o.pSpin + 2}, func(m []float64) float64 { return 1 - m[1]/(3*m[0]*m[0]) }})
	}
	return list
}

// Names lists the observables Results reports, in order.
func (o *Observer) Names() []string {
	var out []string
	for _, d := range o.derivedList() {
		out = append(out, d.name)
	}
	return out
}

// Results analyses everything measured so far. Every chain must hold the same number of measurements.
func (o *Observer) Results(opt StatsOptions) (Results, error) {
	per := -1
	for c, ch := range o.data[0] {
		if per >= 0 && len(ch) != per {
			return Results{}, fmt.Errorf("lattice: observer: chain %d has %d measurements, chain 0 has %d", c, len(ch), per)
		}
		per = len(ch)
	}
	if per < 2 {
		return Results{}, fmt.Errorf("lattice: observer: %d measurements per chain, need at least 2", max(per, 0))
	}
	res := Results{Chains: len(o.data[0]), PerChain: per}
	for _, d := range o.derivedList() {
		sub := make([][][]float64, len(d.deps))
		for i, p := range d.deps {
			sub[i] = o.data[p]
		}
		res.Observables = append(res.Observables, Result{Name: d.name, Estimate: Analyze(sub, d.f, opt)})
	}
	id := func(m []float64) float64 { return m[0] }
	for r := range o.nG {
		res.G = append(res.G, Analyze(o.data[pFixed+r:pFixed+r+1], id, opt))
	}
	V := float64(o.L * o.L)
	res.GtMomenta = [][2]int{{0, 0}, {1, 0}, {1, 1}, {2, 0}}
	res.Gt = []Estimate{Analyze(o.data[pM2:pM2+1], func(m []float64) float64 { return V * m[0] }, opt),
		Analyze(o.data[pGt1:pGt1+1], id, opt), Analyze(o.data[pGt11:pGt11+1], id, opt), Analyze(o.data[pGt2:pGt2+1], id, opt)}
	return res, nil
}
