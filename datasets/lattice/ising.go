package lattice

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
)

// IsingDeltaShift is the 0.1 in NeuralRG's shift δ = 0.1 − λ_min(A/T) that makes K = A/T + δI positive definite.
const IsingDeltaShift = 0.1

// IsingRelaxed is NeuralRG's continuous relaxation of the periodic L×L Ising model H = −Σ_⟨ij⟩ σ_i σ_j at
// temperature T (Li & Wang 2018). With A the adjacency matrix (for L = 2 the two periodic images of
// a neighbour both count, A_ij = 2), K = A/T + δI and δ = 0.1 − λ_min(A/T) = 0.1 + 4/T (L even), the field
// x ∈ R^N (N = L², one channel) has the action
//
//	S(x) = −log π(x) + const = ½ xᵀ K⁻¹ x − Σ_i ln cosh x_i,
//
// obtained from the Hubbard–Stratonovich identity by summing out the spins; its partition function is
// IsingRelaxedLogZ and spins are recovered as E[σ_i | x] = tanh x_i. K⁻¹ is circulant: it is computed
// exactly from the Fourier eigenvalues κ_k = (2cos(2πk_x/L) + 2cos(2πk_y/L))/T + δ. The host forms apply it
// by a 2-D FFT for L ≥ 8 (O(N log N); scratch from an internal pool, so no allocation in the steady state)
// and by the direct circulant sum below (O(N²), no scratch); the graph form multiplies by a dense N×N
// constant (N² values: 8 MB at L = 32, 128 MB at L = 64 in float64). Safe for concurrent use.
type IsingRelaxed struct {
	size     int
	temp     float64
	delta    float64
	kinv     []float64 // circulant coefficients c(d) = (K⁻¹)_{x, x+d}, d = (dx, dy) laid out dx·L + dy
	invKappa []float64 // 1/κ_k laid out kx·L + ky
	fft      *isingFFT // nil below isingFFTMinL
}

// NewIsingRelaxed returns the relaxed Ising action on an L×L periodic lattice at temperature T > 0.
func NewIsingRelaxed(L int, T float64) (*IsingRelaxed, error) {
	if err := checkSize("ising", L); err != nil {
		return nil, err
	}
	if err := checkFinite("ising", "T", T); err != nil {
		return nil, err
	}
	if !(T > 0) {
		return nil, fmt.Errorf("lattice: ising: T=%v, want T > 0", T)
	}
	a := &IsingRelaxed{size: L, temp: T, delta: isingDelta(L, T), kinv: isingKinvCoeffs(L, T)}
	a.invKappa = make([]float64, L*L)
	for kx := range L {
		for ky := range L {
			a.invKappa[kx*L+ky] = 1 / isingKEigen(L, T, a.delta, kx, ky)
		}
	}
	if L >= isingFFTMinL {
		a.fft = newIsingFFT(L)
	}
	return a, nil
}

// adjEigen is the eigenvalue of the periodic adjacency matrix at momentum k: 2cos(2πk_x/L) + 2cos(2πk_y/L).
func adjEigen(L, kx, ky int) float64 {
	return 2*math.Cos(2*math.Pi*float64(kx)/float64(L)) + 2*math.Cos(2*math.Pi*float64(ky)/float64(L))
}

// isingDelta is δ = 0.1 − λ_min(A/T), scanning the exact spectrum (= 0.1 + 4/T for even L).
func isingDelta(L int, T float64) float64 {
	lmin := math.Inf(1)
	for kx := range L {
		for ky := range L {
			lmin = min(lmin, adjEigen(L, kx, ky))
		}
	}
	if L%2 == 0 {
		lmin = -4 // exact; avoids the rounding of 2cos(π)
	}
	return IsingDeltaShift - lmin/T
}

// isingKEigen are the eigenvalues κ_k of K = A/T + δI.
func isingKEigen(L int, T, delta float64, kx, ky int) float64 {
	return adjEigen(L, kx, ky)/T + delta
}

// isingKinvCoeffs returns c(d) = (1/N) Σ_k cos(2π k·d/L) / κ_k for d = (dx, dy), laid out dx·L + dy.
func isingKinvCoeffs(L int, T float64) []float64 {
	delta := isingDelta(L, T)
	N := L * L
	inv := make([]float64, N)
	for kx := range L {
		for ky := range L {
			inv[kx*L+ky] = 1 / isingKEigen(L, T, delta, kx, ky)
		}
	}
	// Separable cosine table: cos(2π k d / L) for k, d < L.
	cs := make([]float64, N)
	for k := range L {
		for d := range L {
			cs[k*L+d] = math.Cos(2 * math.Pi * float64((k*d)%L) / float64(L))
		}
	}
	sn := make([]float64, N)
	for k := range L {
		for d := range L {
			sn[k*L+d] = math.Sin(2 * math.Pi * float64((k*d)%L) / float64(L))
		}
	}
	c := make([]float64, N)
	for dx := range L {
		for dy := range L {
			var s float64
			for kx := range L {
				for ky := range L {
					// cos(a+b) = cos a cos b − sin a sin b
					s += inv[kx*L+ky] * (cs[kx*L+dx]*cs[ky*L+dy] - sn[kx*L+dx]*sn[ky*L+dy])
				}
			}
			c[dx*L+dy] = s / float64(N)
		}
	}
	return c
}

// Name is "ising".
func (a *IsingRelaxed) Name() string { return "ising" }

// Channels is 1.
func (a *IsingRelaxed) Channels() int { return 1 }

// Size is the lattice side L.
func (a *IsingRelaxed) Size() int { return a.size }

// Params are {"T": T, "delta": δ}.
func (a *IsingRelaxed) Params() map[string]float64 {
	return map[string]float64{"T": a.temp, "delta": a.delta}
}

// Z2 is true: S(−x) = S(x).
func (a *IsingRelaxed) Z2() bool { return true }

// Temperature is T.
func (a *IsingRelaxed) Temperature() float64 { return a.temp }

// Delta is the diagonal shift δ of K.
func (a *IsingRelaxed) Delta() float64 { return a.delta }

// KInverse returns the dense N×N matrix K⁻¹ (row-major, sites indexed i·L + j), built from the circulant
// coefficients.
func (a *IsingRelaxed) KInverse() []float64 {
	L, N := a.size, a.size*a.size
	out := make([]float64, N*N)
	for i := range L {
		for j := range L {
			row := out[(i*L+j)*N:]
			for k := range L {
				for l := range L {
					row[k*L+l] = a.kinv[mod(k-i, L)*L+mod(l-j, L)]
				}
			}
		}
	}
	return out
}

// Eval is the host action ½ xᵀK⁻¹x − Σ_i ln cosh x_i of one configuration of length L².
func (a *IsingRelaxed) Eval(x []float64) float64 {
	checkField("ising", a.size*a.size, x)
	var quad float64
	if a.fft != nil {
		quad = a.fft.quad(x, a.invKappa)
	} else {
		quad = a.quadDirect(x)
	}
	var lc float64
	for _, v := range x {
		lc += lnCosh(v)
	}
	return 0.5*quad - lc
}

// quadDirect is xᵀK⁻¹x = Σ_d c(d) Σ_s x_s x_{s+d}, O(N²) without scratch.
func (a *IsingRelaxed) quadDirect(x []float64) float64 {
	L := a.size
	var quad float64
	for dx := range L {
		for dy := range L {
			c := a.kinv[dx*L+dy]
			var acc float64
			for i := range L {
				row := x[i*L : (i+1)*L]
				sh := x[mod(i+dx, L)*L:][:L]
				// Σ_j row[j]·sh[(j+dy) mod L], split at the wrap.
				acc += isingDot(row[:L-dy], sh[dy:]) + isingDot(row[L-dy:], sh[:dy])
			}
			quad += c * acc
		}
	}
	return quad
}

// Force writes −∂S/∂x = tanh x − K⁻¹x into dst. It does not allocate.
func (a *IsingRelaxed) Force(dst, x []float64) {
	checkField("ising", a.size*a.size, dst, x)
	if a.fft != nil {
		a.fft.applyInv(dst, x, a.invKappa)
	} else {
		a.applyInvDirect(dst, x)
	}
	for i, v := range x {
		dst[i] = math.Tanh(v) - dst[i]
	}
}

// applyInvDirect writes K⁻¹x into dst by the direct circulant sum, O(N²) without scratch.
func (a *IsingRelaxed) applyInvDirect(dst, x []float64) {
	L := a.size
	for i := range dst {
		dst[i] = 0
	}
	// (K⁻¹x)_s = Σ_d c(d) x_{s+d}.
	for dx := range L {
		for dy := range L {
			c := a.kinv[dx*L+dy]
			for i := range L {
				d := dst[i*L : (i+1)*L]
				sh := x[mod(i+dx, L)*L:][:L]
				isingAxpy(d[:L-dy], c, sh[dy:])
				isingAxpy(d[L-dy:], c, sh[:dy])
			}
		}
	}
}

func isingDot(a, b []float64) float64 {
	b = b[:len(a)]
	var s float64
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

func isingAxpy(dst []float64, c float64, x []float64) {
	x = x[:len(dst)]
	for i := range dst {
		dst[i] += c * x[i]
	}
}

// Action is the graph form: x (B, 1, L, L) → S per sample (B). The quadratic form is a 2-D matmul
// x(B, N)·K⁻¹(N, N) against a constant of the graph's dtype.
func (a *IsingRelaxed) Action(s *layers.Scope, x *G.Node) (*G.Node, error) {
	if err := checkGraphInput("ising", s, x, 1, a.size); err != nil {
		return nil, err
	}
	wrap := func(err error) error { return fmt.Errorf("lattice: ising: graph action: %w", err) }
	B, N := x.Shape()[0], a.size*a.size
	xf, err := layers.Reshape(x, B, N)
	if err != nil {
		return nil, wrap(err)
	}
	kt := tensor.New(tensor.WithShape(N, N), tensor.Of(s.Dtype()))
	layers.SetData(kt, a.KInverse())
	kn := G.NewConstant(kt, G.In(s.Graph()), G.WithName(fmt.Sprintf("ising_kinv_L%d_T%v", a.size, a.temp)))
	y, err := G.Mul(xf, kn)
	if err != nil {
		return nil, wrap(err)
	}
	if y, err = G.HadamardProd(xf, y); err != nil {
		return nil, wrap(err)
	}
	quad, err := G.Sum(y, 1)
	if err != nil {
		return nil, wrap(err)
	}
	if quad, err = G.Mul(s.Scalar(0.5), quad); err != nil {
		return nil, wrap(err)
	}
	lc, err := graphLnCosh(s, x)
	if err != nil {
		return nil, wrap(err)
	}
	lcs, err := G.Sum(lc, 1, 2, 3)
	if err != nil {
		return nil, wrap(err)
	}
	out, err := G.Sub(quad, lcs)
	if err != nil {
		return nil, wrap(err)
	}
	return out, nil
}

var _ Action = (*IsingRelaxed)(nil)
