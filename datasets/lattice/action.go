package lattice

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"

	"rgflow/layers"
)

// checkSize validates a lattice size: an even L ≥ 2 (any even L works for the actions, HMC, Metropolis and the
// observables; physics runs use L ≥ 4, the hierarchical flows in package models add their own power-of-two
// requirement). kind names the action in the message ("phi4", "o2", "ising").
func checkSize(kind string, L int) error {
	switch {
	case L < 0:
		return fmt.Errorf("lattice: %s: L=%d is negative (want an even L ≥ 2: 4, 6, 8, …)", kind, L)
	case L < 2:
		return fmt.Errorf("lattice: %s: L=%d is too small (want an even L ≥ 2: 4, 6, 8, …)", kind, L)
	case L%2 != 0:
		return fmt.Errorf("lattice: %s: L=%d is odd (want an even L: 4, 6, 8, …)", kind, L)
	}
	return nil
}

// validSize reports whether L is a valid lattice size (the exact references return NaN otherwise).
func validSize(L int) bool { return L >= 2 && L%2 == 0 }

// next, prev and mod are periodic index arithmetic on 0…L−1 for any L (next and prev need 0 ≤ i < L; mod
// takes any integer).
func next(i, L int) int {
	if i++; i == L {
		return 0
	}
	return i
}

func prev(i, L int) int {
	if i == 0 {
		return L - 1
	}
	return i - 1
}

func mod(i, L int) int {
	if i %= L; i < 0 {
		i += L
	}
	return i
}

// checkFinite returns an error naming the first parameter that is NaN or ±Inf. names and values alternate:
// checkFinite("phi4", "m2", m2, "lambda", lambda).
func checkFinite(kind string, nv ...any) error {
	for i := 0; i+1 < len(nv); i += 2 {
		v := nv[i+1].(float64)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("lattice: %s: %s=%v is not a finite number", kind, nv[i].(string), v)
		}
	}
	return nil
}

// lnCosh is ln cosh x evaluated without overflow or cancellation: |x| + log1p(e^{−2|x|}) − ln 2.
func lnCosh(x float64) float64 {
	a := math.Abs(x)
	return a + math.Log1p(math.Exp(-2*a)) - math.Ln2
}

// checkField panics (programmer error) if a host field has the wrong length.
func checkField(kind string, n int, fields ...[]float64) {
	for _, f := range fields {
		if len(f) != n {
			panic(fmt.Sprintf("lattice: %s: field has %d values, want %d", kind, len(f), n))
		}
	}
}

// checkGraphInput returns an error unless phi is (B, C, L, L) with the scope's dtype.
func checkGraphInput(kind string, s *layers.Scope, phi *G.Node, C, L int) error {
	sh := phi.Shape()
	if len(sh) != 4 || sh[1] != C || sh[2] != L || sh[3] != L {
		return fmt.Errorf("lattice: %s: input has shape %v, want (B, %d, %d, %d)", kind, []int(sh), C, L, L)
	}
	if phi.Dtype() != s.Dtype() {
		return fmt.Errorf("lattice: %s: input dtype %v, graph dtype %v", kind, phi.Dtype(), s.Dtype())
	}
	return nil
}

// gradSquares returns Σ_μ (φ_{x+μ} − φ_x)² elementwise, shape (B, C, L, L), built from periodic shifts
// along the two lattice axes (2 and 3).
func gradSquares(phi *G.Node) (*G.Node, error) {
	var out *G.Node
	for _, axis := range []int{2, 3} {
		sh, err := layers.Roll(phi, axis, -1) // sh[x] = φ[x+μ]
		if err != nil {
			return nil, err
		}
		d, err := G.Sub(sh, phi)
		if err != nil {
			return nil, err
		}
		d2, err := G.Square(d)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = d2
		} else if out, err = G.Add(out, d2); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// graphLnCosh is ln cosh x in the graph, as |x| + log1p(exp(−2|x|)) − ln 2. It deliberately avoids
// G.Softplus: Gorgonia's softplus returns x unchanged for x > 16 (float64) / 14 (float32), an absolute
// error of up to 1.1e-7 per site, which would break float64 agreement with the host form.
func graphLnCosh(s *layers.Scope, x *G.Node) (*G.Node, error) {
	a, err := G.Abs(x)
	if err != nil {
		return nil, err
	}
	e, err := G.Mul(s.Scalar(-2), a)
	if err != nil {
		return nil, err
	}
	if e, err = G.Exp(e); err != nil {
		return nil, err
	}
	if e, err = G.Log1p(e); err != nil {
		return nil, err
	}
	r, err := G.Add(a, e)
	if err != nil {
		return nil, err
	}
	return G.Sub(r, s.Scalar(math.Ln2))
}
