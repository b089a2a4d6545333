package models

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"

	"rgflow/layers"
)

// Config describes a hierarchical RG flow completely; Build turns it into a Flow. Every field has a
// meaning for every preset; zero values are filled by Preset.
type Config struct {
	Preset   string `json:"preset"`
	L        int    `json:"L"`
	Channels int    `json:"channels"`
	// K is the block size (2: NeuralRG, 4: RG-Flow).
	K int `json:"k"`
	// Repeat is how many disentangler+decimator pairs each level has.
	Repeat int `json:"repeat"`
	// Depths is the number of affine couplings in each level's block bijector (one entry per level; a
	// shorter list repeats its last entry).
	Depths []int `json:"depths"`
	// Conditioner: "mlp" (NeuralRG: separate s and t nets with Hidden widths and ELU) or "resmlp"
	// (RG-Flow: one net for s and t, Width, ResBlocks residual blocks, swish, optional weight norm).
	Conditioner string `json:"conditioner"`
	Hidden      []int  `json:"hidden,omitempty"`
	Width       int    `json:"width,omitempty"`
	ResBlocks   int    `json:"res_blocks,omitempty"`
	WeightNorm  bool   `json:"weight_norm,omitempty"`
	// Mask: "random" (NeuralRG's random half masks, drawn from MaskSeed) or "checkerboard" (RG-Flow).
	Mask     string `json:"mask"`
	MaskSeed uint64 `json:"mask_seed"`
	// Prior: "gaussian" or "laplace", with temperature T.
	Prior string  `json:"prior"`
	T     float64 `json:"T"`
	// InputActNorm puts a per-site ActNorm ("input/actnorm") before the hierarchy: a learnable affine map of
	// every C·L·L value, which data-dependent initialisation sets to standardise the data (images).
	InputActNorm bool `json:"input_actnorm,omitempty"`
	// Engine is how the block bijectors run: EngineGraph (Gorgonia's graph of elementary ops, the reference,
	// second-order safe) or EngineFused (one hand-written op per block bijector with its backward pass;
	// first-order only; the mlp and resmlp conditioners have one). Both have the same parameters, so weights
	// trained with one load and run with the other. Empty: fused where there is a fused kernel, graph
	// otherwise (what Preset sets, and what configs saved before the field existed get).
	Engine string `json:"engine"`
	// ODE, when set, makes the flow a continuous (neural-ODE) flow instead of a coupling hierarchy
	// (the "ode-" presets); K, Repeat, Depths, Conditioner and Mask are then unused.
	ODE *ODEConfig `json:"ode,omitempty"`
}

// The engines a Config can ask for.
const (
	EngineGraph = "graph"
	EngineFused = "fused"
)

// HasFusedKernel reports whether the configured block bijectors have a fused kernel (EngineFused).
func (c Config) HasFusedKernel() bool {
	if c.ODE != nil {
		return c.ODE.hasFusedKernel()
	}
	s, t, joint := c.conditioners()
	return layers.HasFusedKernel(s, t, joint)
}

// EngineName is the engine the flow runs with: Engine, or the default when it is empty.
func (c Config) EngineName() string {
	if c.Engine != "" {
		return c.Engine
	}
	if c.HasFusedKernel() {
		return EngineFused
	}
	return EngineGraph
}

// conditioners are the s and t nets of every block bijector (t is nil when one joint net gives both).
func (c Config) conditioners() (s, t layers.Conditioner, joint bool) {
	if c.Conditioner == "mlp" {
		return layers.MLP{Hidden: c.Hidden, Activation: "elu"}, layers.MLP{Hidden: c.Hidden, Activation: "elu", ZeroLast: true}, false
	}
	return layers.ResMLP{Width: c.Width, Blocks: c.ResBlocks, WeightNorm: c.WeightNorm, ZeroLast: true}, nil, true
}

var presets = map[string]Config{
	// NeuralRG (Li & Wang 2018): 2×2 blocks, 10 couplings, MLP 10,10,10 with ELU, Gaussian prior.
	"neuralrg": {K: 2, Repeat: 1, Depths: []int{10}, Conditioner: "mlp", Hidden: []int{10, 10, 10},
		Mask: "random", Prior: "gaussian", T: 1},
	// A smaller NeuralRG that trains on 2 cores in a minute or two.
	"neuralrg-small": {K: 2, Repeat: 1, Depths: []int{4}, Conditioner: "mlp", Hidden: []int{16, 16},
		Mask: "random", Prior: "gaussian", T: 1},
	// RG-Flow (Hu et al. 2020): 4×4 blocks, checkerboard masks, 8,6,4,2 couplings per level, residual MLP
	// conditioners of width 512, Laplace prior. About 10⁸ parameters at 32×32×3: a named reference, not a
	// laptop model.
	"rgflow": {K: 4, Repeat: 1, Depths: []int{8, 6, 4, 2}, Conditioner: "resmlp", Width: 512, ResBlocks: 4,
		WeightNorm: true, Mask: "checkerboard", Prior: "laplace", T: 1},
	// RG-Flow sized for 2 cores.
	"rgflow-small": {K: 4, Repeat: 1, Depths: []int{4, 4, 2, 2}, Conditioner: "resmlp", Width: 64, ResBlocks: 1,
		WeightNorm: true, Mask: "checkerboard", Prior: "laplace", T: 1},
	"rgflow-tiny": {K: 4, Repeat: 1, Depths: []int{2}, Conditioner: "resmlp", Width: 16, ResBlocks: 1,
		WeightNorm: true, Mask: "checkerboard", Prior: "laplace", T: 1},
	// Neural-ODE flows (ODEConfig). Gerdes et al.'s equivariant kernel flow: whole-lattice D4-symmetric
	// kernels on odd features φ, sin ωφ (ω = 1…4), 3 Legendre time functions, 8 RK4 steps.
	"ode-gerdes": {K: 2, Prior: "gaussian", T: 1, ODE: &ODEConfig{Field: "gerdes", Steps: 8, Method: "rk4",
		Freqs: []float64{1, 2, 3, 4}, TimeBasis: 3, Odd: true, D4: true}},
	// A local periodic CNN velocity field (3×3 kernels, tanh, two hidden layers of 16), odd in φ.
	"ode-cnn": {K: 2, Prior: "gaussian", T: 1, ODE: &ODEConfig{Field: "cnn", Steps: 8, Method: "rk4",
		Hidden: []int{16, 16}, TimeBasis: 3, Odd: true}},
	// The hierarchical ODE flow: a CNN field per RG level (the whole-lattice kernel field where the
	// level's lattice is too small for it), stride-2 decimation between levels.
	"ode-rg": {K: 2, Prior: "gaussian", T: 1, ODE: &ODEConfig{Field: "cnn", Steps: 4, Method: "rk4",
		Hierarchical: true, Hidden: []int{16}, Freqs: []float64{1, 2, 3}, TimeBasis: 3, Odd: true}},
}

// PresetNames lists the named presets.
func PresetNames() []string {
	var n []string
	for k := range presets {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Preset returns the named preset for an L×L lattice with the given channels.
func Preset(name string, L, channels int) (Config, error) {
	p, ok := presets[name]
	if !ok {
		return Config{}, fmt.Errorf("models: unknown preset %q (have %s)", name, strings.Join(PresetNames(), ", "))
	}
	p.Preset, p.L, p.Channels = name, L, channels
	if p.ODE != nil {
		p.ODE = p.ODE.clone()
		p.Engine = p.EngineName()
		return p, p.Validate()
	}
	p.Depths = append([]int(nil), p.Depths...)
	p.Hidden = append([]int(nil), p.Hidden...)
	p.Engine = p.EngineName()
	return p, p.Validate()
}

// Validate checks the configuration and says which field is wrong.
func (c Config) Validate() error {
	if c.ODE != nil {
		return c.validateODE()
	}
	if _, err := layers.NewHierarchy(c.L, c.K); err != nil {
		return fmt.Errorf("models: %s: %w", c.Preset, err)
	}
	if c.Channels < 1 {
		return fmt.Errorf("models: %s: channels=%d, want ≥ 1", c.Preset, c.Channels)
	}
	if c.Repeat < 1 {
		return fmt.Errorf("models: %s: repeat=%d, want ≥ 1", c.Preset, c.Repeat)
	}
	if len(c.Depths) == 0 {
		return fmt.Errorf("models: %s: no coupling depths", c.Preset)
	}
	for i, d := range c.Depths {
		if d < 1 {
			return fmt.Errorf("models: %s: depth %d of level %d, want ≥ 1", c.Preset, d, i)
		}
	}
	switch c.Conditioner {
	case "mlp":
		for _, h := range c.Hidden {
			if h < 1 {
				return fmt.Errorf("models: %s: hidden width %d, want ≥ 1", c.Preset, h)
			}
		}
	case "resmlp":
		if c.Width < 1 || c.ResBlocks < 0 {
			return fmt.Errorf("models: %s: resmlp width=%d blocks=%d, want width ≥ 1, blocks ≥ 0", c.Preset, c.Width, c.ResBlocks)
		}
	default:
		return fmt.Errorf("models: %s: conditioner %q, want mlp or resmlp", c.Preset, c.Conditioner)
	}
	if c.Mask != "random" && c.Mask != "checkerboard" {
		return fmt.Errorf("models: %s: mask %q, want random or checkerboard", c.Preset, c.Mask)
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
		if !c.HasFusedKernel() {
			return fmt.Errorf("models: %s: engine fused: the %s conditioner has no fused kernel (mlp and resmlp have); use engine graph", c.Preset, c.Conditioner)
		}
	default:
		return fmt.Errorf("models: %s: engine %q, want graph or fused", c.Preset, c.Engine)
	}
	return nil
}

// InputActNormName is the scope of the optional input ActNorm's parameters.
const InputActNormName = "input/actnorm"

// Depth is the number of couplings at a level.
func (c Config) Depth(level int) int {
	if level < len(c.Depths) {
		return c.Depths[level]
	}
	return c.Depths[len(c.Depths)-1]
}

// Build assembles the flow: for each level ℓ = 0…n−1 and each repeat, a disentangler then a decimator
// block layer, each with its own RealNVP block bijector; inference runs level 0 first. Layer names are
// "level<ℓ>/disentangler<r>" and "level<ℓ>/decimator<r>". The block bijectors run with the engine
// c.EngineName(); the parameters (names, shapes, initial values for a given store seed) do not depend on it.
func Build(c Config) (*Flow, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.ODE != nil {
		b, h := c.odeBijector()
		temps := Temperatures{T: c.T, Hier: h}
		var prior Prior = Gaussian{temps}
		if c.Prior == "laplace" {
			prior = Laplace{temps}
		}
		if c.InputActNorm {
			b = layers.Chain{layers.Named{Name: InputActNormName, Bijector: layers.ActNorm{PerSite: true}}, b}
		}
		return &Flow{Prior: prior, Bijector: b, Channels: c.Channels, L: c.L, Hier: h}, nil
	}
	h, _ := layers.NewHierarchy(c.L, c.K)
	dim := c.Channels * c.K * c.K
	rng := rand.New(rand.NewPCG(c.MaskSeed, 0x5eed))
	engine := c.EngineName()
	var chain layers.Chain
	for l := 0; l < h.Levels(); l++ {
		for r := 0; r < c.Repeat; r++ {
			for _, dec := range []bool{false, true} {
				kind := "disentangler"
				if dec {
					kind = "decimator"
				}
				if c.Repeat > 1 {
					kind = fmt.Sprintf("%s%d", kind, r)
				}
				nvp := &layers.RealNVP{Dim: dim, Couplings: c.Depth(l), Unfused: engine == EngineGraph}
				nSplits := (nvp.Couplings + 1) / 2
				for i := 0; i < nSplits; i++ {
					if c.Mask == "random" {
						nvp.Splits = append(nvp.Splits, layers.RandomHalfSplit(rng, dim))
					} else {
						nvp.Splits = append(nvp.Splits, layers.CheckerboardSplit(c.Channels, c.K))
					}
				}
				nvp.S, nvp.T, nvp.Joint = c.conditioners()
				if err := nvp.Validate(); err != nil {
					return nil, fmt.Errorf("models: level%d/%s: %w", l, kind, err)
				}
				chain = append(chain, &layers.BlockLayer{
					Name: fmt.Sprintf("level%d/%s", l, kind), Hier: h, Level: l, Decimator: dec,
					Channels: c.Channels, Inner: nvp,
				})
			}
		}
	}
	if c.InputActNorm {
		chain = append(layers.Chain{layers.Named{Name: InputActNormName, Bijector: layers.ActNorm{PerSite: true}}}, chain...)
	}
	temps := Temperatures{T: c.T, Hier: h}
	var prior Prior = Gaussian{temps}
	if c.Prior == "laplace" {
		prior = Laplace{temps}
	}
	return &Flow{Prior: prior, Bijector: chain, Channels: c.Channels, L: c.L, Hier: h}, nil
}

// NumParams counts the flow's parameters analytically (without building it), for presets too large to
// allocate casually. It agrees with Store.NumParams() after a graph of the flow is built (a test checks).
func (c Config) NumParams() (int, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	if c.ODE != nil {
		n := c.odeNumParams()
		if c.InputActNorm {
			n += 2 * c.Channels * c.L * c.L
		}
		return n, nil
	}
	h, _ := layers.NewHierarchy(c.L, c.K)
	dim := c.Channels * c.K * c.K
	a := dim / 2 // conditioning half of the first coupling of a pair (random and checkerboard splits alike)
	if c.Mask == "checkerboard" {
		a = len(layers.CheckerboardSplit(c.Channels, c.K).A)
	}
	linear := func(in, out int) int {
		n := in*out + out
		if c.Conditioner == "resmlp" && c.WeightNorm {
			n += out
		}
		return n
	}
	coupling := func(v, u int) int {
		if c.Conditioner == "mlp" {
			widths := append(append([]int{v}, c.Hidden...), u)
			net := 0
			for i := 0; i+1 < len(widths); i++ {
				net += linear(widths[i], widths[i+1])
			}
			return 2*net + u
		}
		net := linear(v, c.Width) + c.ResBlocks*2*linear(c.Width, c.Width) + linear(c.Width, 2*u)
		return net + u
	}
	total := 0
	for l := 0; l < h.Levels(); l++ {
		per := 0
		for i := 0; i < c.Depth(l); i++ {
			if i%2 == 0 {
				per += coupling(a, dim-a)
			} else {
				per += coupling(dim-a, a)
			}
		}
		total += 2 * c.Repeat * per
	}
	if c.InputActNorm {
		total += 2 * c.Channels * c.L * c.L
	}
	return total, nil
}
