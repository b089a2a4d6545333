package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"rgflow/layers"
)

// ODEConfig describes a continuous (neural-ODE) flow: the "ode-" presets. The bijector integrates
// dx/dt = v(x, t) over t ∈ [0, 1] with Steps fixed steps of Method (layers.ODE), v a velocity field with an
// exact divergence:
//   - "gerdes": the equivariant kernel flow layers.KernelField (features φ, sin ωφ, cos ωφ; kernels over the
//     whole lattice, or (2·Radius+1)² when Radius > 0);
//   - "cnn": the local periodic CNN layers.CNNField (3×3 kernels, tanh, Hidden widths).
//
// Both have time-dependent weights in TimeBasis Legendre polynomials. With Hierarchical (the "ode-rg"
// preset) the flow is the hierarchical ODE flow: at level ℓ = 0, 1, … the sites whose coordinates are
// multiples of 2^ℓ are evolved by their own ODE (a field with its own weights, "level<ℓ>/ode/…"), and the
// sites left behind are that level's latents (layers.Sublattice), organised by the same level map as the
// coupling flows'. Levels whose lattice is too small for the CNN use the whole-lattice kernel field.
//
// Engines: the gerdes field with whole-lattice kernels (Radius 0) has a fused kernel (layers.ODE.Fused:
// the whole integration as one op with a hand-written backward pass, first derivatives only), the
// default; Config.Engine "graph" runs the graph of elementary ops (the reference, second-order safe).
// The other fields, and flows trained with the Jacobian regulariser, run on the graph only.
type ODEConfig struct {
	Field        string    `json:"field"`
	Steps        int       `json:"steps"`
	Method       string    `json:"method"`
	Hierarchical bool      `json:"hierarchical,omitempty"`
	Freqs        []float64 `json:"freqs,omitempty"`
	TimeBasis    int       `json:"time_basis"`
	Radius       int       `json:"radius,omitempty"`
	Hidden       []int     `json:"hidden,omitempty"`
	Odd          bool      `json:"odd"`
	D4           bool      `json:"d4"`
	// Kinetic is the weight λ of the kinetic-energy regulariser λ ∫ |v|² dt (layers.ODE.Kinetic; 0: off).
	Kinetic float64 `json:"kinetic,omitempty"`
	// Jacobian is the weight of the Jacobian regulariser ∫ ‖εᵀ ∂v/∂x‖² dt, Hutchinson's estimate of the
	// integrated squared Frobenius norm of the field's Jacobian (layers.ODE.Jacobian; 0: off). It enters
	// only training losses that collect regularisers (losses.ReverseKL), never sampling or evaluation.
	Jacobian float64 `json:"jacobian,omitempty"`
}

func (o *ODEConfig) clone() *ODEConfig {
	c := *o
	c.Freqs = append([]float64(nil), o.Freqs...)
	c.Hidden = append([]int(nil), o.Hidden...)
	return &c
}

// IsODEPreset reports whether a preset name belongs to the ODE family.
func IsODEPreset(name string) bool { return strings.HasPrefix(name, "ode-") }

func (c Config) validateODE() error {
	o := c.ODE
	if c.L < 4 || c.L%2 != 0 {
		return fmt.Errorf("models: %s: L=%d, want an even L ≥ 4", c.Preset, c.L)
	}
	if _, err := layers.NewHierarchy(c.L, 2); err != nil {
		return fmt.Errorf("models: %s: %w (the latents are organised by the RG level map)", c.Preset, err)
	}
	if c.Channels < 1 {
		return fmt.Errorf("models: %s: channels=%d, want ≥ 1", c.Preset, c.Channels)
	}
	if o.Steps < 1 {
		return fmt.Errorf("models: %s: %d ODE steps, want ≥ 1", c.Preset, o.Steps)
	}
	switch o.Method {
	case "", layers.RK4, layers.Midpoint, layers.Euler:
	default:
		return fmt.Errorf("models: %s: ODE method %q, want rk4, midpoint or euler", c.Preset, o.Method)
	}
	switch o.Field {
	case "gerdes", "cnn":
	default:
		return fmt.Errorf("models: %s: velocity field %q, want gerdes or cnn", c.Preset, o.Field)
	}
	if !(o.Kinetic >= 0) || math.IsInf(o.Kinetic, 0) {
		return fmt.Errorf("models: %s: kinetic-energy weight %g, want a finite number ≥ 0", c.Preset, o.Kinetic)
	}
	if !(o.Jacobian >= 0) || math.IsInf(o.Jacobian, 0) {
		return fmt.Errorf("models: %s: Jacobian regulariser weight %g, want a finite number ≥ 0", c.Preset, o.Jacobian)
	}
	if o.TimeBasis < 1 {
		return fmt.Errorf("models: %s: time basis of %d functions, want ≥ 1", c.Preset, o.TimeBasis)
	}
	if o.Radius < 0 || 2*o.Radius+1 > c.L {
		return fmt.Errorf("models: %s: kernel radius %d on L=%d, want 0 (whole lattice) ≤ radius ≤ %d", c.Preset, o.Radius, c.L, (c.L-1)/2)
	}
	for _, w := range o.Freqs {
		if !(w > 0) || math.IsInf(w, 0) {
			return fmt.Errorf("models: %s: frequency %g, want a positive finite number", c.Preset, w)
		}
	}
	if o.Field == "cnn" {
		if len(o.Hidden) == 0 {
			return fmt.Errorf("models: %s: the cnn field needs hidden widths", c.Preset)
		}
		for _, h := range o.Hidden {
			if h < 1 {
				return fmt.Errorf("models: %s: hidden width %d, want ≥ 1", c.Preset, h)
			}
		}
		if !o.Hierarchical && c.L <= len(o.Hidden)+1 {
			return fmt.Errorf("models: %s: L=%d, want L > %d (the CNN's receptive field must not wrap around the lattice)", c.Preset, c.L, len(o.Hidden)+1)
		}
	}
	if c.Prior != "gaussian" && c.Prior != "laplace" {
		return fmt.Errorf("models: %s: prior %q, want gaussian or laplace", c.Preset, c.Prior)
	}
	if !(c.T > 0) {
		return fmt.Errorf("models: %s: prior temperature T=%g, want > 0", c.Preset, c.T)
	}
	switch c.Engine {
	case "", EngineGraph:
	case EngineFused:
		if o.Jacobian > 0 {
			return fmt.Errorf("models: %s: engine fused: the Jacobian regulariser differentiates the field twice, which the fused integrator cannot; use engine graph", c.Preset)
		}
		if !o.hasFusedKernel() {
			return fmt.Errorf("models: %s: engine fused: the %s velocity field (radius %d) has no fused kernel (only gerdes with whole-lattice kernels, radius 0, has); use engine graph", c.Preset, o.Field, o.Radius)
		}
	default:
		return fmt.Errorf("models: %s: engine %q, want graph or fused", c.Preset, c.Engine)
	}
	return nil
}

// hasFusedKernel reports whether the flow's integrations can run fused (layers.ODE.Fused): the gerdes
// field with whole-lattice kernels, without the Jacobian regulariser (which needs second derivatives).
func (o *ODEConfig) hasFusedKernel() bool {
	return o.Field == "gerdes" && o.Radius == 0 && o.Jacobian == 0
}

// fused reports whether the ODE on an l×l lattice runs fused under the configured engine (the fused
// FFTs need a side of at least 2; every lattice of the hierarchy has a power-of-two side).
func (c Config) fused(l int) bool {
	return c.EngineName() == EngineFused && c.ODE.hasFusedKernel() && l >= 2
}

// field is the velocity field of an ODE flow on an l×l lattice.
func (o *ODEConfig) field(channels, l int) layers.VelocityField {
	if o.Field == "cnn" && l > len(o.Hidden)+1 {
		return layers.CNNField{Channels: channels, Hidden: o.Hidden, TimeBasis: o.TimeBasis, Odd: o.Odd, D4: o.D4}
	}
	radius := o.Radius
	if o.Field == "cnn" || 2*radius+1 > l {
		radius = 0
	}
	return layers.KernelField{Channels: channels, Freqs: o.Freqs, TimeBasis: o.TimeBasis, Radius: radius, Odd: o.Odd, D4: o.D4}
}

// odeBijector assembles the bijector of an ODE config.
func (c Config) odeBijector() (layers.Bijector, layers.Hierarchy) {
	h, _ := layers.NewHierarchy(c.L, 2)
	o := c.ODE
	if !o.Hierarchical {
		return layers.Named{Name: "ode", Bijector: layers.ODE{Field: o.field(c.Channels, c.L), Steps: o.Steps, Method: o.Method, Kinetic: o.Kinetic,
			Jacobian: o.Jacobian, Fused: c.fused(c.L)}}, h
	}
	var chain layers.Chain
	for l := 0; l < h.Levels(); l++ {
		st := 1 << l
		ode := layers.ODE{Field: o.field(c.Channels, c.L/st), Steps: o.Steps, Method: o.Method, Kinetic: o.Kinetic,
			Jacobian: o.Jacobian, Fused: c.fused(c.L / st)}
		chain = append(chain, layers.Named{Name: fmt.Sprintf("level%d/ode", l), Bijector: layers.Sublattice{Stride: st, Inner: ode}})
	}
	return chain, h
}

func (c Config) odeNumParams() int {
	o := c.ODE
	count := func(l int) int {
		switch f := o.field(c.Channels, l).(type) {
		case layers.CNNField:
			return f.NumParams()
		case layers.KernelField:
			return f.NumParams(l, l)
		}
		return 0
	}
	if !o.Hierarchical {
		return count(c.L)
	}
	h, _ := layers.NewHierarchy(c.L, 2)
	n := 0
	for l := 0; l < h.Levels(); l++ {
		n += count(c.L >> l)
	}
	return n
}

// RoundTrip measures how far a flow is from an exact bijection on n of its own samples: z from the
// prior, x = F⁻¹(z), z′ = F(x); it returns max |z′ − z| over every latent. Coupling flows give rounding
// (~1e-15 in float64); ODE flows give their integrator's error.
func RoundTrip(f *Flow, store *layers.Store, n int, rng *rand.Rand) (float64, error) {
	sm, err := NewSampler(f, store, n)
	if err != nil {
		return 0, err
	}
	defer sm.Close()
	x, _, z, err := sm.Sample(rng)
	if err != nil {
		return 0, err
	}
	enc, err := NewEncoder(f, store, n)
	if err != nil {
		return 0, err
	}
	defer enc.Close()
	z2, _, err := enc.Encode(x)
	if err != nil {
		return 0, err
	}
	m := 0.0
	for i := range z {
		m = max(m, math.Abs(z2[i]-z[i]))
	}
	return m, nil
}
