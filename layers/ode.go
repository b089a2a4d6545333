package layers

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Continuous flows (neural ODEs).
//
// An ODE bijector evolves a field by dx/dt = v(x, t) for t ∈ [0, 1]. Forward (data → latent) integrates
// from t = 0 to 1, Inverse from t = 1 back to 0. Along a trajectory d log|det ∂x(t)/∂x(0)|/dt = div v(x, t)
// (Liouville), so the log-det is integrated together with x as one augmented system (x, ℓ) with
// dℓ/dt = div v: Forward returns ℓ(1) = ∫₀¹ div v dt, Inverse ∫₁⁰ div v dt = −(the same integral along the
// inverse trajectory). The integrator is a fixed-step explicit Runge–Kutta method (RK4, the midpoint rule
// or Euler) unrolled in the graph, so a training loss differentiates through every stage with ordinary
// reverse-mode gradients, and the divergence must come in closed form from the field (VelocityField):
// Gorgonia has no forward-over-reverse mode, and a divergence by backpropagation inside the loss would
// need the second derivative of every op of the field. Hutchinson's estimator (HutchinsonDivergence) is
// there to evaluate any field, not to train.
//
// Exactness. The discrete map x(0) → x(1) of N fixed steps is a bijection only up to the integrator's
// error: integrating back with the same steps returns x(0) up to O(h^p) (p = 4 for RK4, 2 for midpoint, 1
// for Euler, h = 1/N), and the integrated log-det is the continuous flow's, which differs from the
// discrete map's by the same order. Both errors are measured by the tests (the round trip falls as h⁴ for
// RK4), and the rgflow eval command reports the trained model's round-trip error.

// VelocityField is a time-dependent vector field on (B, C, H, W) fields with its exact divergence.
type VelocityField interface {
	// Velocity builds v(x, t) (x's shape) and div v = Σ_i ∂v_i/∂x_i per sample (shape (B)) at the time t,
	// a number known when the graph is built (the integrator's stage times). Parameters are bound under
	// s, so every stage of an unrolled integrator shares them.
	Velocity(s *Scope, x *G.Node, t float64) (v, div *G.Node, err error)
}

// The fixed-step integrators of ODE.Method.
const (
	RK4      = "rk4"      // classical fourth-order Runge–Kutta, 4 field evaluations per step
	Midpoint = "midpoint" // explicit midpoint rule, second order, 2 evaluations per step
	Euler    = "euler"    // forward Euler, first order, 1 evaluation per step
)

// ODE is the bijector x(0) → x(1) of dx/dt = Field(x, t), integrated with Steps fixed steps of Method
// (empty: RK4). It is the identity exactly when the field is zero (fields start at zero).
//
// With Kinetic = λ > 0 every integration also registers λ·∫ Σ_i v_i² dt per sample (the kinetic energy of
// the path, which straightens trajectories and keeps the fixed-step integrator accurate) as a regulariser
// of the graph (Scope.AddAux); objectives that support regularisers (losses.ReverseKL) add it to their loss.
//
// With Jacobian = μ > 0 every integration in a graph whose objective collects regularisers
// (Scope.CollectsAux) also registers μ·∫ ‖εᵀ ∂v/∂x‖² dt per sample, Hutchinson's estimate of the integrated
// squared Frobenius norm of the field's Jacobian, ∫ ‖∂v/∂x‖²_F dt (see IntegrateJacobian): it penalises
// stiff fields, whose fixed-step integration is inaccurate. Other graphs (sampling, evaluation) leave it out.
// It differentiates the field twice, so it needs the graph integrator (not Fused).
//
// With Fused the whole integration of a whole-lattice KernelField (Radius 0, power-of-two lattice sides)
// runs as one fused op with a hand-written backward pass (ode_fused.go): the same values and first
// derivatives as the graph, several times faster, but no second derivatives. Other fields with Fused are an
// error.
type ODE struct {
	Field    VelocityField
	Steps    int
	Method   string
	Kinetic  float64
	Jacobian float64
	Fused    bool
}

// Validate checks the step count and method.
func (o ODE) Validate() error {
	if o.Field == nil {
		return fmt.Errorf("layers: ODE: no velocity field")
	}
	if o.Steps < 1 {
		return fmt.Errorf("layers: ODE: %d steps, want ≥ 1", o.Steps)
	}
	if !(o.Kinetic >= 0) || math.IsInf(o.Kinetic, 0) {
		return fmt.Errorf("layers: ODE: kinetic-energy weight %g, want a finite number ≥ 0", o.Kinetic)
	}
	if !(o.Jacobian >= 0) || math.IsInf(o.Jacobian, 0) {
		return fmt.Errorf("layers: ODE: Jacobian regulariser weight %g, want a finite number ≥ 0", o.Jacobian)
	}
	switch o.Method {
	case "", RK4, Midpoint, Euler:
	default:
		return fmt.Errorf("layers: ODE: method %q, want rk4, midpoint or euler", o.Method)
	}
	return nil
}

// Evaluations is the number of field evaluations of one integration.
func (o ODE) Evaluations() int {
	switch o.Method {
	case Euler:
		return o.Steps
	case Midpoint:
		return 2 * o.Steps
	}
	return 4 * o.Steps
}

// Forward integrates from t = 0 to t = 1 and returns x(1) and ∫₀¹ div v dt.
func (o ODE) Forward(s *Scope, x *G.Node) (*G.Node, *G.Node, error) {
	return o.Integrate(s, x, 0, 1)
}

// Inverse integrates from t = 1 to t = 0 and returns x(0) and ∫₁⁰ div v dt.
func (o ODE) Inverse(s *Scope, z *G.Node) (*G.Node, *G.Node, error) {
	return o.Integrate(s, z, 1, 0)
}

// Integrate evolves x from t0 to t1 (either order) with o.Steps steps and returns the end point and the
// integrated divergence ∫_{t0}^{t1} div v dt, shape (B).
func (o ODE) Integrate(s *Scope, x *G.Node, t0, t1 float64) (*G.Node, *G.Node, error) {
	var probe *G.Node
	if o.Jacobian > 0 && s.CollectsAux() && x != nil {
		probe = s.Noise("jacobian_probe", x.Shape()...)
	}
	xe, ld, kin, jac, err := o.integrate(s, x, t0, t1, o.Kinetic > 0, probe)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range []struct {
		term *G.Node
		w    float64
	}{{kin, o.Kinetic}, {jac, o.Jacobian}} {
		if r.term == nil {
			continue
		}
		reg, err := G.Mul(r.term, s.Scalar(r.w))
		if err != nil {
			return nil, nil, err
		}
		s.AddAux(reg)
	}
	return xe, ld, nil
}

// IntegrateKinetic is Integrate that also returns the kinetic energy of the path, ∫ Σ_i v_i² dt per
// sample (shape (B), integrated with the same quadrature weights as the log-det), the regulariser of
// kinetic-energy-regularised neural ODEs.
func (o ODE) IntegrateKinetic(s *Scope, x *G.Node, t0, t1 float64) (xe, ld, kin *G.Node, err error) {
	xe, ld, kin, _, err = o.integrate(s, x, t0, t1, true, nil)
	return xe, ld, kin, err
}

// stage is one Runge–Kutta stage: the time offset c (in units of h) and the weights a of the earlier stages.
type tableau struct {
	c []float64
	a [][]float64
	b []float64
}

func (o ODE) tableau() tableau {
	switch o.Method {
	case Euler:
		return tableau{c: []float64{0}, a: [][]float64{nil}, b: []float64{1}}
	case Midpoint:
		return tableau{c: []float64{0, 0.5}, a: [][]float64{nil, {0.5}}, b: []float64{0, 1}}
	}
	return tableau{c: []float64{0, 0.5, 0.5, 1}, a: [][]float64{nil, {0.5}, {0, 0.5}, {0, 0, 1}},
		b: []float64{1.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 6}}
}

// integrate is the unrolled integrator; with kinetic it also returns ∫|v|² dt, with a probe ε (x's shape)
// ∫ ‖εᵀ ∂v/∂x‖² dt (both per sample, with the quadrature weights of the log-det; nil when not asked for).
func (o ODE) integrate(s *Scope, x *G.Node, t0, t1 float64, kinetic bool, probe *G.Node) (xe, ld, kin, jac *G.Node, err error) {
	if err := o.Validate(); err != nil {
		return nil, nil, nil, nil, err
	}
	if x == nil || x.Dims() < 2 {
		return nil, nil, nil, nil, fmt.Errorf("layers: ODE %s: input must be (B, …)", s.Prefix())
	}
	if o.Fused {
		if probe != nil {
			return nil, nil, nil, nil, fmt.Errorf("layers: ODE %s: the Jacobian regulariser differentiates the field twice, which the fused integrator cannot: use the graph integrator", s.Prefix())
		}
		xe, ld, kin, err = o.integrateFused(s, x, t0, t1, kinetic)
		return xe, ld, kin, nil, err
	}
	if _, ok := o.Field.(BlockMLPField); ok && (kinetic || probe != nil) {
		return nil, nil, nil, nil, fmt.Errorf("layers: ODE %s: the kinetic and Jacobian regularisers need sample-major tensors; BlockMLPField's are feature-major", s.Prefix())
	}
	if probe != nil && !probe.Shape().Eq(x.Shape()) {
		return nil, nil, nil, nil, fmt.Errorf("layers: ODE %s: Jacobian probe of shape %v for a state of shape %v", s.Prefix(), probe.Shape(), x.Shape())
	}
	var jacStage func(xi, v *G.Node, w float64) error
	if probe != nil {
		jacStage = func(xi, v *G.Node, w float64) error {
			e, err := jacobianProbeNorm(xi, v, probe)
			if err != nil {
				return err
			}
			if jac == nil {
				jac, err = linComb(e, w, nil, 0)
			} else {
				jac, err = linComb(jac, 1, e, w)
			}
			return err
		}
	}
	tb := o.tableau()
	h := (t1 - t0) / float64(o.Steps)
	wrap := func(e error) error { return fmt.Errorf("layers: ODE %s: %w", s.Prefix(), e) }
	// axpy returns a + c·b, treating a nil a as 0 and skipping c = 0.
	axpy := func(a, b *G.Node, c float64) (*G.Node, error) {
		if c == 0 {
			return a, nil
		}
		if a == nil {
			return linComb(b, c, nil, 0)
		}
		return linComb(a, 1, b, c)
	}
	for n := 0; n < o.Steps; n++ {
		t := t0 + float64(n)*h
		ks := make([]*G.Node, len(tb.c))
		var dx, dl, dk *G.Node
		for i := range tb.c {
			xi := x
			for j, a := range tb.a[i] {
				if xi, err = axpy(xi, ks[j], h*a); err != nil {
					return nil, nil, nil, nil, wrap(err)
				}
			}
			v, div, err := o.Field.Velocity(s, xi, t+tb.c[i]*h)
			if err != nil {
				return nil, nil, nil, nil, err
			}
			ks[i] = v
			if dx, err = axpy(dx, v, h*tb.b[i]); err != nil {
				return nil, nil, nil, nil, wrap(err)
			}
			if dl, err = axpy(dl, div, h*tb.b[i]); err != nil {
				return nil, nil, nil, nil, wrap(err)
			}
			if kinetic && tb.b[i] != 0 {
				e, err := perSampleSumSquares(v)
				if err != nil {
					return nil, nil, nil, nil, wrap(err)
				}
				// |h|: the kinetic energy is a positive integral whichever way time runs.
				if dk, err = axpy(dk, e, math.Abs(h)*tb.b[i]); err != nil {
					return nil, nil, nil, nil, wrap(err)
				}
			}
			if jacStage != nil && tb.b[i] != 0 {
				if err := jacStage(xi, v, math.Abs(h)*tb.b[i]); err != nil {
					return nil, nil, nil, nil, wrap(err)
				}
			}
		}
		if x, err = G.Add(x, dx); err != nil {
			return nil, nil, nil, nil, wrap(err)
		}
		if ld == nil {
			ld = dl
		} else if ld, err = G.Add(ld, dl); err != nil {
			return nil, nil, nil, nil, wrap(err)
		}
		if kinetic {
			if kin == nil {
				kin = dk
			} else if kin, err = G.Add(kin, dk); err != nil {
				return nil, nil, nil, nil, wrap(err)
			}
		}
	}
	return x, ld, kin, jac, nil
}

// perSampleSumSquares is Σ v² over every axis but the first, shape (B).
func perSampleSumSquares(v *G.Node) (*G.Node, error) {
	sh := v.Shape()
	b := sh[0]
	flat, err := Reshape(v, b, prod(sh[1:]))
	if err != nil {
		return nil, err
	}
	sq, err := G.Square(flat)
	if err != nil {
		return nil, err
	}
	return SumAxis(sq, 1)
}

// perSampleDot is Σ a⊙b over every axis but the first, shape (B).
func perSampleDot(a, b *G.Node) (*G.Node, error) {
	ab, err := G.HadamardProd(a, b)
	if err != nil {
		return nil, err
	}
	sh := ab.Shape()
	flat, err := Reshape(ab, sh[0], prod(sh[1:]))
	if err != nil {
		return nil, err
	}
	return SumAxis(flat, 1)
}

// jacobianProbeNorm is ‖εᵀ ∂v/∂x‖² per sample (shape (B)) for v = v(x): the vector–Jacobian product comes
// from one reverse-mode pass (Grad of Σ ε⊙v with respect to x; samples do not interact), so a loss that
// contains it differentiates through the field twice, which the fields' ops support (second-order safe).
func jacobianProbeNorm(x, v, eps *G.Node) (*G.Node, error) {
	ev, err := G.HadamardProd(eps, v)
	if err != nil {
		return nil, err
	}
	cost, err := G.Sum(ev)
	if err != nil {
		return nil, err
	}
	g, err := gradWRTNode(cost, x)
	if err != nil {
		return nil, fmt.Errorf("Jacobian probe: %w", err)
	}
	return perSampleSumSquares(g)
}

// gradWRTNode is Grad with respect to any node of the graph, not only an input: the state at an
// integrator stage is an intermediate node. G.Grad refuses non-input nodes, but its backpropagation
// (G.Backpropagate) differentiates with respect to any node and stops there.
func gradWRTNode(cost, x *G.Node) (*G.Node, error) {
	if err := checkSecondOrder(cost); err != nil {
		return nil, err
	}
	if err := clearDerivs(cost.Graph()); err != nil {
		return nil, err
	}
	var one *G.Node
	if cost.Dtype() == tensor.Float32 {
		one = G.NewConstant(float32(1))
	} else {
		one = G.NewConstant(float64(1))
	}
	g, err := G.Backpropagate(G.Nodes{cost}, G.Nodes{cost.Graph().AddNode(one)}, G.Nodes{x})
	if err != nil {
		return nil, err
	}
	return g[0], nil
}

// IntegrateJacobian is Integrate that also returns ∫ ‖εᵀ ∂v/∂x‖² dt per sample (shape (B)) along the path
// for the probe eps (x's shape), with the quadrature weights of the log-det. For ε with independent
// zero-mean unit-variance entries (Gaussian or Rademacher), E_ε ‖εᵀ J‖² = tr(J Jᵀ) = ‖J‖²_F, so its mean
// over probes is the integrated squared Frobenius norm of the field's Jacobian: the Jacobian regulariser of
// regularised neural ODEs (Finlay et al., RNODE), built without the second-order divergence estimate it
// pairs with, since the divergence here is exact. Use one probe per path, as the training graph does.
func (o ODE) IntegrateJacobian(s *Scope, x, eps *G.Node, t0, t1 float64) (xe, ld, jac *G.Node, err error) {
	if eps == nil {
		return nil, nil, nil, fmt.Errorf("layers: ODE %s: IntegrateJacobian without a probe", s.Prefix())
	}
	xe, ld, _, jac, err = o.integrate(s, x, t0, t1, false, eps)
	return xe, ld, jac, err
}

// HutchinsonJacobianNorm builds the one-probe estimate ‖εᵀ ∂v/∂x‖² of the squared Frobenius norm of the
// field's Jacobian at (x, t), shape (B) (the integrand of IntegrateJacobian), and v.
func HutchinsonJacobianNorm(s *Scope, f VelocityField, x, eps *G.Node, t float64) (est, v *G.Node, err error) {
	v, _, err = f.Velocity(s, x, t)
	if err != nil {
		return nil, nil, err
	}
	est, err = jacobianProbeNorm(x, v, eps)
	if err != nil {
		return nil, nil, fmt.Errorf("layers: HutchinsonJacobianNorm: %w", err)
	}
	return est, v, nil
}

// HutchinsonDivergence builds Hutchinson's one-probe estimate εᵀ (∂v/∂x) ε of div v(x, t) for a probe ε
// of x's shape (an input: Rademacher or Gaussian noise fed per run), shape (B). Its mean over probes is
// the divergence; it works for any field (the Jacobian-vector product comes from one reverse-mode pass,
// Grad), so use it to check or evaluate a field, not inside a training loss (that would need second
// derivatives of every op of the field). It also returns v.
func HutchinsonDivergence(s *Scope, f VelocityField, x, eps *G.Node, t float64) (est, v *G.Node, err error) {
	v, _, err = f.Velocity(s, x, t)
	if err != nil {
		return nil, nil, err
	}
	ev, err := G.HadamardProd(eps, v)
	if err != nil {
		return nil, nil, err
	}
	cost, err := G.Sum(ev)
	if err != nil {
		return nil, nil, err
	}
	g, err := Grad(cost, x) // (εᵀ J) per sample: samples do not interact
	if err != nil {
		return nil, nil, fmt.Errorf("layers: HutchinsonDivergence: %w", err)
	}
	est, err = perSampleDot(g[0], eps)
	return est, v, err
}

// TimeBasis is the fixed basis of functions of t ∈ [0, 1] in which time-dependent kernels are expanded:
// the shifted Legendre polynomials b_k(t) = P_k(2t − 1), k = 0 … n−1 (orthogonal on [0, 1], |b_k| ≤ 1).
// Low-degree polynomials keep the time derivatives of the field small, which is what the fixed-step
// integrators' error depends on (RK4 integrates a cubic in t exactly).
func TimeBasis(n int, t float64) []float64 {
	b := make([]float64, n)
	s := 2*t - 1
	for k := range b {
		switch k {
		case 0:
			b[k] = 1
		case 1:
			b[k] = s
		default:
			b[k] = (float64(2*k-1)*s*b[k-1] - float64(k-1)*b[k-2]) / float64(k)
		}
	}
	return b
}

// timeCombine returns Σ_k b_k(t) w[k] for a parameter w of shape (K, rest…), as a node of shape rest.
func timeCombine(s *Scope, w *G.Node, t float64) (*G.Node, error) {
	sh := []int(w.Shape())
	k, rest := sh[0], sh[1:]
	bt := G.NewConstant(NewDense(s.Dtype(), []int{1, k}, TimeBasis(k, t)), G.In(s.Graph()))
	flat, err := Reshape(w, k, prod(rest))
	if err != nil {
		return nil, err
	}
	c, err := MatMul(bt, flat)
	if err != nil {
		return nil, err
	}
	return Reshape(c, rest...)
}
