package main

import (
	"errors"
	"flag"
	"fmt"

	"rgflow/datasets/lattice"
)

// actionSpec is the physics of a command line and of a run's config: which action, on which lattice, with
// which parameters in which convention. Set records the flags the user gave, so that flags that the
// chosen action and convention do not use are reported rather than silently ignored.
type actionSpec struct {
	Action     string          `json:"action"`
	L          int             `json:"L"`
	M2         float64         `json:"m2"`
	Lambda     float64         `json:"lambda"`
	Convention string          `json:"convention"`
	Kappa      float64         `json:"kappa,omitempty"`
	LambdaH    float64         `json:"lambda_h,omitempty"`
	T          float64         `json:"T,omitempty"`
	Set        map[string]bool `json:"set,omitempty"`
}

// physicsFlagNames are the flags register defines.
var physicsFlagNames = []string{"action", "L", "m2", "lambda", "convention", "kappa", "lambda-h", "T"}

// defaultActionSpec is the benchmark point of Albergo, Kanwar and Shanahan (AKS, 2019) at L=8 in the
// standard convention S = Σ_x [½ Σ_μ (φ_{x+μ} − φ_x)² + ½ m² φ² + λ φ⁴]: m² = −4, λ = 1.502. AKS write
// S_A = Σ_x [Σ_μ (φ_{A,x+μ} − φ_{A,x})² + m_A² φ_A² + λ_A φ_A⁴] for φ_A = φ/√2, so their m_A² = −4,
// λ_A = 6.008 is the same point: m² = m_A², λ = λ_A/4.
func defaultActionSpec() actionSpec {
	return actionSpec{Action: "phi4", L: 8, M2: -4, Lambda: 1.502, Convention: "standard"}
}

// register defines the physics flags on fs with the spec's values as defaults.
func (a *actionSpec) register(fs *flag.FlagSet) {
	fs.StringVar(&a.Action, "action", a.Action, "lattice action: free, phi4, o2 or ising")
	fs.IntVar(&a.L, "L", a.L, "lattice side: even (train lattice: a power of two, which the hierarchical flows need)")
	fs.Float64Var(&a.M2, "m2", a.M2, "mass term m² (m_A² with --convention aks)")
	fs.Float64Var(&a.Lambda, "lambda", a.Lambda, "quartic coupling λ (λ_A with --convention aks)")
	fs.StringVar(&a.Convention, "convention", a.Convention, "parameter convention: standard, aks or hopping")
	fs.Float64Var(&a.Kappa, "kappa", a.Kappa, "hopping parameter κ (--convention hopping)")
	fs.Float64Var(&a.LambdaH, "lambda-h", a.LambdaH, "hopping-convention coupling λ_H (--convention hopping)")
	fs.Float64Var(&a.T, "T", a.T, "temperature of the relaxed Ising model (default T_c = 2/ln(1+√2))")
}

// noteSet records which physics flags were given explicitly on fs (after Parse).
func (a *actionSpec) noteSet(fs *flag.FlagSet) {
	if a.Set == nil {
		a.Set = map[string]bool{}
	}
	fs.Visit(func(fl *flag.Flag) {
		for _, n := range physicsFlagNames {
			if fl.Name == n {
				a.Set[n] = true
			}
		}
	})
}

// build makes the action the spec describes, converting conventions exactly; cmd names the command in
// errors.
func (a actionSpec) build(cmd string) (lattice.Action, error) {
	conflict := func(names ...string) error {
		for _, n := range names {
			if a.Set[n] {
				return fmt.Errorf("%s: --%s is not used by --action %s with --convention %s", cmd, n, a.Action, a.Convention)
			}
		}
		return nil
	}
	switch a.Convention {
	case "standard", "aks", "hopping":
	default:
		return nil, fmt.Errorf("%s: --convention %q, want standard, aks or hopping", cmd, a.Convention)
	}
	if a.Action != "ising" && a.Set["T"] {
		return nil, fmt.Errorf("%s: --T is only used by --action ising", cmd)
	}
	if a.Convention == "hopping" {
		if a.Action == "ising" {
			return nil, fmt.Errorf("%s: --action ising takes --T, not --convention hopping", cmd)
		}
		if err := conflict("m2", "lambda"); err != nil {
			return nil, err
		}
		if !a.Set["kappa"] {
			return nil, fmt.Errorf("%s: --convention hopping needs --kappa (and --lambda-h)", cmd)
		}
		if a.Action != "free" && !a.Set["lambda-h"] {
			return nil, fmt.Errorf("%s: --convention hopping needs --lambda-h (and --kappa)", cmd)
		}
	} else if err := conflict("kappa", "lambda-h"); err != nil {
		return nil, err
	}
	var act lattice.Action
	var err error
	switch a.Action {
	case "free":
		if a.Set["lambda"] && a.Lambda != 0 {
			return nil, fmt.Errorf("%s: --action free has λ = 0, got --lambda %v (use --action phi4)", cmd, a.Lambda)
		}
		if a.Set["lambda-h"] && a.LambdaH != 0 {
			return nil, fmt.Errorf("%s: --action free has λ_H = 0, got --lambda-h %v (use --action phi4)", cmd, a.LambdaH)
		}
		if a.Convention != "hopping" && !a.Set["m2"] {
			// The default m² = −4 belongs to φ⁴'s double well; without the quartic term it has no minimum.
			return nil, fmt.Errorf("%s: --action free needs a mass term m² > 0 (the Gaussian free field has no normalisable distribution otherwise); give one, e.g. --m2 0.5", cmd)
		}
		m2 := a.M2
		if a.Convention == "hopping" {
			if !(a.Kappa > 0) {
				return nil, fmt.Errorf("%s: --kappa=%v, want κ > 0", cmd, a.Kappa)
			}
			m2, _ = lattice.HoppingToStandard(a.Kappa, 0)
		}
		act, err = lattice.NewFree(a.L, m2) // AKS and standard share m²
	case "phi4":
		switch a.Convention {
		case "standard":
			act, err = lattice.NewPhi4(a.L, a.M2, a.Lambda)
		case "aks":
			act, err = lattice.NewPhi4AKS(a.L, a.M2, a.Lambda)
		case "hopping":
			act, err = lattice.NewPhi4Hopping(a.L, a.Kappa, a.LambdaH)
		}
	case "o2":
		switch a.Convention {
		case "standard":
			act, err = lattice.NewO2(a.L, a.M2, a.Lambda)
		case "aks":
			m2, lambda := lattice.AKSToStandard(a.M2, a.Lambda)
			act, err = lattice.NewO2(a.L, m2, lambda)
		case "hopping":
			act, err = lattice.NewO2Hopping(a.L, a.Kappa, a.LambdaH)
		}
	case "ising":
		if a.Convention != "standard" {
			return nil, errors.New(cmd + ": --action ising takes --T, not --convention " + a.Convention)
		}
		if err := conflict("m2", "lambda"); err != nil {
			return nil, err
		}
		T := a.T
		if !a.Set["T"] {
			T = lattice.IsingTc()
		}
		act, err = lattice.NewIsingRelaxed(a.L, T)
	default:
		return nil, fmt.Errorf("%s: --action %q, want free, phi4, o2 or ising", cmd, a.Action)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return act, nil
}
