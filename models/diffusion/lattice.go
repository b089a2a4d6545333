package diffusion

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"rgflow/datasets/lattice"
)

// Lattice is an L×L periodic lattice with its real mode basis (see the package doc).
type Lattice struct {
	L, V int
	fft  *lattice.FFT2
	p2   []float64 // p̂² per mode coordinate
	idx  []int     // flat momentum index kx·L + ky of the coordinate's mode
	part []int8    // 0: self-conjugate (real), 1: √2 Re, 2: √2 Im
	conj []int     // flat index of −k, per flat momentum index
	pool sync.Pool // *[]complex128 of length V
}

// NewLattice returns the mode basis of an L×L lattice; L must be even and at least 4.
func NewLattice(L int) (*Lattice, error) {
	if L < 4 || L%2 != 0 {
		return nil, fmt.Errorf("diffusion: lattice size L=%d, want an even L ≥ 4", L)
	}
	f, err := lattice.NewFFT2(L)
	if err != nil {
		return nil, fmt.Errorf("diffusion: %w", err)
	}
	V := L * L
	l := &Lattice{L: L, V: V, fft: f, conj: make([]int, V)}
	for kx := range L {
		for ky := range L {
			l.conj[kx*L+ky] = ((L-kx)%L)*L + (L-ky)%L
		}
	}
	seen := make([]bool, V)
	for k := range V {
		if seen[k] {
			continue
		}
		seen[k], seen[l.conj[k]] = true, true
		p := P2(L, k/L, k%L)
		if l.conj[k] == k {
			l.idx, l.part, l.p2 = append(l.idx, k), append(l.part, 0), append(l.p2, p)
			continue
		}
		l.idx, l.part, l.p2 = append(l.idx, k, k), append(l.part, 1, 2), append(l.p2, p, p)
	}
	l.pool.New = func() any {
		b := make([]complex128, V)
		return &b
	}
	return l, nil
}

// P2 is the lattice momentum p̂²_k = 4 sin²(πk_x/L) + 4 sin²(πk_y/L).
func P2(L, kx, ky int) float64 {
	sx := math.Sin(math.Pi * float64(kx) / float64(L))
	sy := math.Sin(math.Pi * float64(ky) / float64(L))
	return 4*sx*sx + 4*sy*sy
}

// P2Modes returns a copy of p̂² per mode coordinate (length V).
func (l *Lattice) P2Modes() []float64 { return append([]float64(nil), l.p2...) }

// Momentum returns the momentum (kx, ky) of mode coordinate j and whether it is a real (self-conjugate)
// mode, the real part (√2 Re) or the imaginary part (√2 Im) of a complex pair.
func (l *Lattice) Momentum(j int) (kx, ky int, part string) {
	k := l.idx[j]
	return k / l.L, k % l.L, [...]string{"real", "re", "im"}[l.part[j]]
}

// ToModes writes the mode coordinates of the field x (length V) into dst (length V; may alias x).
func (l *Lattice) ToModes(dst, x []float64) {
	bp := l.pool.Get().(*[]complex128)
	defer l.pool.Put(bp)
	a := *bp
	for i, v := range x[:l.V] {
		a[i] = complex(v, 0)
	}
	l.fft.Forward(a)
	for j, k := range l.idx {
		switch l.part[j] {
		case 0:
			dst[j] = real(a[k])
		case 1:
			dst[j] = math.Sqrt2 * real(a[k])
		default:
			dst[j] = math.Sqrt2 * imag(a[k])
		}
	}
}

// FromModes writes the field whose mode coordinates are u (length V) into dst (length V; may alias u).
func (l *Lattice) FromModes(dst, u []float64) {
	bp := l.pool.Get().(*[]complex128)
	defer l.pool.Put(bp)
	a := *bp
	for j, k := range l.idx {
		switch l.part[j] {
		case 0:
			a[k] = complex(u[j], 0)
		case 1:
			re, im := u[j]/math.Sqrt2, u[j+1]/math.Sqrt2
			a[k] = complex(re, im)
			a[l.conj[k]] = complex(re, -im)
		}
	}
	l.fft.Inverse(a)
	for i := range dst[:l.V] {
		dst[i] = real(a[i])
	}
}

// SymmetrizeModes replaces v (one value per mode coordinate, length V) by its average over every orbit of
// the lattice's symmetries: translations (which rotate the √2 Re and √2 Im coordinates of a mode into each
// other and leave a self-conjugate mode alone) and the 8 rotations and reflections of the square, which map
// momentum (kx, ky) to (±kx, ±ky) and (±ky, ±kx). The variance per mode coordinate of any translation- and
// D4-invariant ensemble (every lattice action here) is constant on these orbits, so averaging a measured
// spectrum over them removes noise and no signal.
func (l *Lattice) SymmetrizeModes(v []float64) error {
	if len(v) != l.V {
		return fmt.Errorf("diffusion: SymmetrizeModes: %d values, want one per mode coordinate (V = %d)", len(v), l.V)
	}
	L := l.L
	fold := func(k int) int { return min(k, L-k) }
	key := make([]int, l.V)
	sum, cnt := make([]float64, l.V), make([]int, l.V)
	for j, k := range l.idx {
		a, b := fold(k/L), fold(k%L)
		key[j] = min(a, b)*L + max(a, b)
		sum[key[j]] += v[j]
		cnt[key[j]]++
	}
	for j := range v {
		v[j] = sum[key[j]] / float64(cnt[key[j]])
	}
	return nil
}

// FreeVariance returns v_j = 1/(p̂²_j + m²) per mode coordinate: the free field of mass² m² > 0.
func (l *Lattice) FreeVariance(m2 float64) ([]float64, error) {
	if !(m2 > 0) || math.IsInf(m2, 1) {
		return nil, fmt.Errorf("diffusion: free field m2=%v, want a finite m2 > 0", m2)
	}
	v := make([]float64, l.V)
	for j, p := range l.p2 {
		v[j] = 1 / (p + m2)
	}
	return v, nil
}

// Gaussian is a centred Gaussian that is diagonal in the mode coordinates: coordinate j has variance Var[j].
type Gaussian struct {
	Lat *Lattice
	Var []float64
	// Basis, when set, is the mode basis (an image's); otherwise Lat is.
	Basis Basis
}

// LogProb writes log N(x) for each field of the batch x (length n·V) into dst (length n).
func (g *Gaussian) LogProb(x, dst []float64) error {
	V := g.basis().Size()
	if len(x) != len(dst)*V {
		return fmt.Errorf("diffusion: Gaussian.LogProb: %d values for %d fields of V=%d", len(x), len(dst), V)
	}
	u := make([]float64, V)
	var norm float64
	for _, v := range g.Var {
		norm += math.Log(2 * math.Pi * v)
	}
	for b := range dst {
		g.basis().ToModes(u, x[b*V:(b+1)*V])
		q := 0.0
		for j, v := range g.Var {
			q += u[j] * u[j] / v
		}
		dst[b] = -0.5 * (q + norm)
	}
	return nil
}

// Sample fills dst (length n·V) with n independent fields.
func (g *Gaussian) Sample(rng *rand.Rand, dst []float64) error {
	V := g.basis().Size()
	if len(dst)%V != 0 {
		return fmt.Errorf("diffusion: Gaussian.Sample: length %d is not a multiple of V=%d", len(dst), V)
	}
	for b := 0; b+V <= len(dst); b += V {
		u := dst[b : b+V]
		for j, v := range g.Var {
			u[j] = math.Sqrt(v) * rng.NormFloat64()
		}
		g.basis().FromModes(u, u)
	}
	return nil
}
