package train

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"gorgonia.org/tensor"

	"rgflow/checkpoints"
	"rgflow/layers"
)

// Grad is the gradient of the loss with respect to the Store parameter Name, as computed by one run of the
// graph. Value has the parameter's shape and dtype; optimisers only read it.
type Grad struct {
	Name  string
	Value *tensor.Dense
}

// Optimizer updates the tensors of a layers.Store in place. Its state is keyed by parameter name, so it can be
// saved with the weights and restored into a fresh process (see State and Restore).
type Optimizer interface {
	// Step applies one update with learning rate lr to every parameter in grads, using gradScale·g as the
	// gradient (gradScale is the clipping factor, 1 when not clipping). It must not modify the gradients.
	Step(lr, gradScale float64, grads []Grad) error
	// State exports the optimiser state as named arrays (copies).
	State() []checkpoints.Array
	// Restore replaces the whole state by one exported by State, validating names, shapes and dtypes against the
	// store.
	Restore(state []checkpoints.Array) error
}

// AdamConfig configures Adam and AdamW. Zero values select torch's defaults: Beta1 0.9, Beta2 0.999, Eps 1e-8.
// WeightDecay is used as given (0 = none): for Adam it is torch's L2 penalty (g ← g + wd·θ), for AdamW the
// decoupled decay θ ← θ − lr·wd·θ (torch's AdamW default is 0.01; set it explicitly).
type AdamConfig struct {
	AdamW       bool    `json:"adamw,omitempty"`
	Beta1       float64 `json:"beta1,omitempty"`
	Beta2       float64 `json:"beta2,omitempty"`
	Eps         float64 `json:"eps,omitempty"`
	WeightDecay float64 `json:"weight_decay,omitempty"`
}

func (c AdamConfig) withDefaults() AdamConfig {
	if c.Beta1 == 0 {
		c.Beta1 = 0.9
	}
	if c.Beta2 == 0 {
		c.Beta2 = 0.999
	}
	if c.Eps == 0 {
		c.Eps = 1e-8
	}
	return c
}

func (c AdamConfig) validate() error {
	switch {
	case !(c.Beta1 >= 0 && c.Beta1 < 1):
		return fmt.Errorf("train: Adam beta1 %g, want 0 ≤ beta1 < 1", c.Beta1)
	case !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("train: Adam beta2 %g, want 0 ≤ beta2 < 1", c.Beta2)
	case !(c.Eps > 0):
		return fmt.Errorf("train: Adam eps %g, want > 0", c.Eps)
	case !(c.WeightDecay >= 0):
		return fmt.Errorf("train: Adam weight decay %g, want ≥ 0", c.WeightDecay)
	}
	return nil
}

// Adam is torch.optim.Adam (or AdamW when AdamConfig.AdamW is set) working on a Store's tensors in place, in the
// store's dtype. For each parameter θ with gradient g, at that parameter's step t = 1, 2, …:
//
//	AdamW: θ ← θ·(1 − lr·wd)           Adam with wd > 0: g ← g + wd·θ
//	m ← m + (1−β1)·(g − m)              (torch's lerp; = β1·m + (1−β1)·g)
//	v ← β2·v + (1−β2)·g²
//	θ ← θ − (lr/(1−β1ᵗ)) · m / (√v/√(1−β2ᵗ) + ε)
//
// Like torch, the per-element arithmetic is done in the parameter dtype with the scalar factors (computed in
// float64) rounded to it. State is created lazily on a parameter's first update and kept per name: m, v and
// the step count.
type Adam struct {
	cfg   AdamConfig
	store *layers.Store
	slots map[string]*adamSlot

	bound      []*adamSlot // the states of the gradient list prepare checked last, in its order
	boundGrads []Grad      // that list (names and tensors)
}

type adamSlot struct {
	param    *tensor.Dense
	step     int64
	m64, v64 []float64
	m32, v32 []float32
}

// NewAdam returns an Adam (or AdamW) optimiser over store's parameters. It panics on an invalid configuration
// (a programmer error; Config validation reports user errors first).
func NewAdam(store *layers.Store, cfg AdamConfig) *Adam {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		panic(err)
	}
	return &Adam{cfg: cfg, store: store, slots: map[string]*adamSlot{}}
}

// Config returns the configuration in use (defaults filled in).
func (a *Adam) Config() AdamConfig { return a.cfg }

func (a *Adam) slot(name string) (*adamSlot, error) {
	if s, ok := a.slots[name]; ok {
		return s, nil
	}
	p, ok := a.store.Get(name)
	if !ok {
		return nil, fmt.Errorf("train: Adam: no parameter %q in the store", name)
	}
	n := p.Shape().TotalSize()
	s := &adamSlot{param: p}
	switch p.Dtype() {
	case tensor.Float64:
		s.m64, s.v64 = make([]float64, n), make([]float64, n)
	case tensor.Float32:
		s.m32, s.v32 = make([]float32, n), make([]float32, n)
	default:
		return nil, fmt.Errorf("train: Adam: parameter %q has dtype %v, want float32 or float64", name, p.Dtype())
	}
	a.slots[name] = s
	return s, nil
}

// Step implements Optimizer. It does not allocate once every parameter has state.
func (a *Adam) Step(lr, gradScale float64, grads []Grad) error {
	if err := a.prepare(grads); err != nil {
		return err
	}
	a.update(lr, gradScale, grads, a.bound)
	return nil
}

// prepare checks every gradient against its parameter, creates the state of parameters that have none
// and leaves in a.bound the state of each gradient's parameter, in order, so that update can then run on
// disjoint parts of grads at once. A list checked before (the same names and tensors, as a Trainer passes
// every step) is not checked again.
func (a *Adam) prepare(grads []Grad) error {
	if len(grads) == len(a.bound) && len(a.boundGrads) == len(grads) {
		same := true
		for i, g := range grads {
			if g.Name != a.boundGrads[i].Name || g.Value != a.boundGrads[i].Value {
				same = false
				break
			}
		}
		if same {
			return nil
		}
	}
	a.bound, a.boundGrads = a.bound[:0], a.boundGrads[:0]
	for _, g := range grads {
		s, err := a.slot(g.Name)
		if err != nil {
			a.bound, a.boundGrads = nil, nil
			return err
		}
		if g.Value.Dtype() != s.param.Dtype() || g.Value.Shape().TotalSize() != s.param.Shape().TotalSize() {
			a.bound, a.boundGrads = nil, nil
			return fmt.Errorf("train: Adam: gradient of %q is %v %v, parameter is %v %v",
				g.Name, g.Value.Dtype(), g.Value.Shape(), s.param.Dtype(), s.param.Shape())
		}
		a.bound = append(a.bound, s)
		a.boundGrads = append(a.boundGrads, g)
	}
	return nil
}

// update applies one step to the parameters of grads, whose states slots are (a part of a.bound after
// prepare). Every parameter's update reads and writes only its own tensors and state, so disjoint parts
// of a gradient list may be updated concurrently, with the same bits as one call over the whole list.
func (a *Adam) update(lr, gradScale float64, grads []Grad, slots []*adamSlot) {
	var c adamCoefs
	cStep := int64(-1) // the step c was computed for (parameters usually share their step count)
	for i, g := range grads {
		s := slots[i]
		s.step++
		if s.step != cStep {
			c, cStep = a.coefs(lr, gradScale, s.step), s.step
		}
		if s.m64 != nil {
			adamUpdate(s.param.Float64s(), g.Value.Float64s(), s.m64, s.v64, c)
		} else {
			adamUpdate(s.param.Float32s(), g.Value.Float32s(), s.m32, s.v32, c)
		}
	}
}

// adamCoefs are the scalar factors of one update, computed in float64.
type adamCoefs struct {
	scale      float64 // gradient scale (clipping)
	decay      float64 // AdamW: multiply θ by this first (1 − lr·wd); 1 otherwise
	l2         float64 // Adam: add l2·θ to the gradient
	oneMinusB1 float64
	b2         float64
	oneMinusB2 float64
	stepSize   float64 // lr / (1 − β1ᵗ)
	bc2Sqrt    float64 // √(1 − β2ᵗ)
	eps        float64
}

func (a *Adam) coefs(lr, gradScale float64, t int64) adamCoefs {
	c := adamCoefs{
		scale:      gradScale,
		decay:      1,
		oneMinusB1: 1 - a.cfg.Beta1,
		b2:         a.cfg.Beta2,
		oneMinusB2: 1 - a.cfg.Beta2,
		stepSize:   lr / (1 - math.Pow(a.cfg.Beta1, float64(t))),
		bc2Sqrt:    math.Sqrt(1 - math.Pow(a.cfg.Beta2, float64(t))),
		eps:        a.cfg.Eps,
	}
	if a.cfg.WeightDecay != 0 {
		if a.cfg.AdamW {
			c.decay = 1 - lr*a.cfg.WeightDecay
		} else {
			c.l2 = a.cfg.WeightDecay
		}
	}
	return c
}

// adamUpdate applies one update: a leading part with vector instructions where the CPU has them
// (adamVector, the same bits), the rest with adamScalar.
func adamUpdate[T float32 | float64](p, g, m, v []T, c adamCoefs) {
	g = g[:len(p)]
	m = m[:len(p)]
	v = v[:len(p)]
	k := adamVector(p, g, m, v, c)
	adamScalar(p[k:], g[k:], m[k:], v[k:], c)
}

// adamScalar applies one update element by element. Every element's gradient is read before its parameter is
// written, so it is correct even if a gradient aliased its parameter.
func adamScalar[T float32 | float64](p, g, m, v []T, c adamCoefs) {
	scale, decay, l2 := T(c.scale), T(c.decay), T(c.l2)
	w1, b2, w2 := T(c.oneMinusB1), T(c.b2), T(c.oneMinusB2)
	stepSize, bc2Sqrt, eps := T(c.stepSize), T(c.bc2Sqrt), T(c.eps)
	applyScale, applyDecay, applyL2 := c.scale != 1, c.decay != 1, c.l2 != 0
	g = g[:len(p)]
	m = m[:len(p)]
	v = v[:len(p)]
	for i := range p {
		gi := g[i]
		if applyScale {
			gi *= scale
		}
		pi := p[i]
		if applyDecay {
			pi *= decay
		}
		if applyL2 {
			gi += l2 * pi
		}
		mi := m[i] + w1*(gi-m[i])
		vi := b2*v[i] + w2*gi*gi
		m[i], v[i] = mi, vi
		denom := T(math.Sqrt(float64(vi)))/bc2Sqrt + eps
		p[i] = pi - stepSize*(mi/denom)
	}
}

// Optimiser state array names: adam/m/<param>, adam/v/<param> (the parameter's dtype and shape) and
// adam/step/<param> (0-d int64).
const (
	adamM    = "adam/m/"
	adamV    = "adam/v/"
	adamStep = "adam/step/"
)

// State implements Optimizer: copies of m, v and the step of every parameter with state, sorted by name.
func (a *Adam) State() []checkpoints.Array {
	names := make([]string, 0, len(a.slots))
	for n := range a.slots {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]checkpoints.Array, 0, 3*len(names))
	for _, n := range names {
		s := a.slots[n]
		shape := append([]int(nil), s.param.Shape()...)
		var m, v any
		if s.m64 != nil {
			m, v = append([]float64(nil), s.m64...), append([]float64(nil), s.v64...)
		} else {
			m, v = append([]float32(nil), s.m32...), append([]float32(nil), s.v32...)
		}
		out = append(out,
			checkpoints.Array{Name: adamM + n, Shape: shape, Data: m},
			checkpoints.Array{Name: adamV + n, Shape: append([]int(nil), shape...), Data: v},
			checkpoints.Array{Name: adamStep + n, Shape: []int{}, Data: []int64{s.step}},
		)
	}
	return out
}

// Restore implements Optimizer. Every array must name a store parameter, have its shape and dtype, and come with
// its two siblings; on any error the previous state is kept.
func (a *Adam) Restore(state []checkpoints.Array) error {
	type parts struct {
		m, v *checkpoints.Array
		step *int64
	}
	byName := map[string]*parts{}
	get := func(n string) *parts {
		if byName[n] == nil {
			byName[n] = &parts{}
		}
		return byName[n]
	}
	for i := range state {
		arr := &state[i]
		switch {
		case strings.HasPrefix(arr.Name, adamM):
			get(strings.TrimPrefix(arr.Name, adamM)).m = arr
		case strings.HasPrefix(arr.Name, adamV):
			get(strings.TrimPrefix(arr.Name, adamV)).v = arr
		case strings.HasPrefix(arr.Name, adamStep):
			st, ok := arr.Data.([]int64)
			if !ok || len(st) != 1 {
				return fmt.Errorf("train: Adam state %q: want one int64, got %T of length %d", arr.Name, arr.Data, dataLen(arr.Data))
			}
			if st[0] < 1 {
				return fmt.Errorf("train: Adam state %q: step %d, want ≥ 1", arr.Name, st[0])
			}
			get(strings.TrimPrefix(arr.Name, adamStep)).step = &st[0]
		default:
			return fmt.Errorf("train: Adam state: unexpected array %q (want adam/m/…, adam/v/… or adam/step/…)", arr.Name)
		}
	}
	slots := make(map[string]*adamSlot, len(byName))
	for name, pr := range byName {
		if pr.m == nil || pr.v == nil || pr.step == nil {
			return fmt.Errorf("train: Adam state for %q is incomplete (want m, v and step)", name)
		}
		p, ok := a.store.Get(name)
		if !ok {
			return fmt.Errorf("train: Adam state for %q: no such parameter in the store", name)
		}
		for _, arr := range []*checkpoints.Array{pr.m, pr.v} {
			if !slices.Equal(p.Shape(), arr.Shape) {
				return fmt.Errorf("train: Adam state %q has shape %v, parameter has %v", arr.Name, arr.Shape, []int(p.Shape()))
			}
		}
		s := &adamSlot{param: p, step: *pr.step}
		var okM, okV bool
		n := p.Shape().TotalSize()
		switch p.Dtype() {
		case tensor.Float64:
			s.m64, okM = pr.m.Data.([]float64)
			s.v64, okV = pr.v.Data.([]float64)
			s.m64, s.v64 = append([]float64(nil), s.m64...), append([]float64(nil), s.v64...)
			okM, okV = okM && len(s.m64) == n, okV && len(s.v64) == n
		case tensor.Float32:
			s.m32, okM = pr.m.Data.([]float32)
			s.v32, okV = pr.v.Data.([]float32)
			s.m32, s.v32 = append([]float32(nil), s.m32...), append([]float32(nil), s.v32...)
			okM, okV = okM && len(s.m32) == n, okV && len(s.v32) == n
		}
		if !okM || !okV {
			return fmt.Errorf("train: Adam state for %q: want %d values of %v for m and v, got %T and %T",
				name, n, p.Dtype(), pr.m.Data, pr.v.Data)
		}
		slots[name] = s
	}
	a.slots = slots
	a.bound, a.boundGrads = nil, nil // the states prepare found are replaced
	return nil
}

func dataLen(d any) int {
	switch v := d.(type) {
	case []float32:
		return len(v)
	case []float64:
		return len(v)
	case []int64:
		return len(v)
	case []int32:
		return len(v)
	case []uint8:
		return len(v)
	}
	return 0
}

// GradNorm returns the global L2 norm √(Σ g²) over all gradients, or the name of the first gradient holding a
// NaN or ±Inf together with that value. The squares are accumulated in float64: each tensor's by
// SumSquares, then the tensors' sums in order. So the norm depends on the gradients alone, and the Trainer,
// which computes the tensors' sums on several goroutines while they are still in cache, gets the same bits.
func GradNorm(grads []Grad) (norm float64, bad string, badValue float64) {
	sq := make([]float64, len(grads))
	for i, g := range grads {
		sq[i] = SumSquares(g.Value)
	}
	return normOf(grads, sq)
}

// normOf returns √(Σ sq[i]) (summed in order) and, when the sum is NaN or +Inf, the first non-finite
// element of grads (none when finite squares overflowed).
func normOf(grads []Grad, sq []float64) (norm float64, bad string, badValue float64) {
	var sum float64
	for _, s := range sq {
		sum += s
	}
	if math.IsNaN(sum) || math.IsInf(sum, 0) {
		// A NaN or ±Inf anywhere makes the sum NaN or +Inf; find the first one (an overflow of finite
		// squares has none and gives +Inf).
		for _, g := range grads {
			for _, x := range layers.Float64s(g.Value) {
				if math.IsNaN(x) || math.IsInf(x, 0) {
					return math.NaN(), g.Name, x
				}
			}
		}
	}
	return math.Sqrt(sum), "", 0
}

// SumSquares returns Σ x² over a float32 or float64 tensor, in float64 (a float32's square is exact there):
// four partial sums over the elements i ≡ 0, 1, 2, 3 (mod 4), in order, then (s₀ + s₁) + (s₂ + s₃). Four
// independent sums run about four times faster than one, whose every addition waits for the last; the
// order is fixed, so the result is too. Other dtypes give 0.
func SumSquares(v *tensor.Dense) float64 {
	switch x := v.Data().(type) {
	case []float64:
		return sumSquares(x)
	case []float32:
		return sumSquares(x)
	}
	return 0
}

// sumSquares is SumSquares on a slice.
func sumSquares[T float32 | float64](x []T) float64 {
	var s [4]float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		a, b, c, d := float64(x[i]), float64(x[i+1]), float64(x[i+2]), float64(x[i+3])
		s[0] += a * a
		s[1] += b * b
		s[2] += c * c
		s[3] += d * d
	}
	for j, e := range x[i:] {
		f := float64(e)
		s[j] += f * f
	}
	return (s[0] + s[1]) + (s[2] + s[3])
}

// ClipScale is the factor torch's clip_grad_norm_ applies for a pre-clip norm and a maximum: 1 when maxNorm ≤ 0
// (no clipping) or norm ≤ maxNorm, else maxNorm/(norm + 1e-6).
func ClipScale(norm, maxNorm float64) float64 {
	if maxNorm <= 0 || norm <= maxNorm {
		return 1
	}
	return maxNorm / (norm + 1e-6)
}
