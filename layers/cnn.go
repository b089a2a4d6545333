package layers

import (
	"fmt"

	G "gorgonia.org/gorgonia"
)

// CNN is a stride-1 convolutional network on (B, In, H, W) fields, the local network of lattice score
// models and velocity fields: for each hidden width h_i
//
//	x ← act(FiLM_i(GroupNorm_i(conv_i(x)), emb))   (GroupNorm when Groups > 0, FiLM when conditioned)
//
// and then a last convolution to Out channels, with no activation. Every convolution is Kernel×Kernel with
// Pad padding and keeps H×W, so the output is (B, Out, H, W). Parameters under the scope given to Apply:
// conv<i>/w (h_i, h_{i−1}, k, k) (ConvInit(1)), conv<i>/b, norm<i>/scale, norm<i>/bias, film<i>/w,
// film<i>/b, out/w, out/b (out/w zero with ZeroLast).
//
// Symmetries (check them with layerstest.CheckEquivariance):
//   - With periodic padding every layer commutes with lattice translations, so the network is exactly
//     translation-equivariant (GroupNorm and FiLM act per sample and channel, uniformly over sites).
//   - With D4 set the network is averaged over the 8 rotations and reflections, f(x) = (1/8) Σ_g g⁻¹ f₀(g x)
//     (Symmetrize), which is exactly D4-equivariant on a square lattice, with either padding; with periodic
//     padding the result is also translation-equivariant. It costs 8 times the work of one pass (one batch
//     of 8B samples).
//   - With SymmetricKernels every kernel is replaced by its average over the 8 rotations and reflections
//     of the k×k window, w ← (1/8) Σ_g g·w (the stored parameter stays unconstrained). A convolution with
//     D4-invariant kernels commutes with D4, and so does every other layer, so the network is
//     D4-equivariant at the cost of one pass, but its kernels are isotropic (less expressive than D4).
//   - With Odd set it is averaged over φ → −φ as well, f(x) = ½ (f₀(x) − f₀(−x)): exactly odd. A network with
//     NoBias, an odd activation (tanh) and no conditioning is odd without averaging.
type CNN struct {
	In, Out int
	// Hidden lists the hidden widths (depth = len(Hidden) hidden layers). When it is empty, Depth layers of
	// Width channels are used.
	Hidden       []int
	Width, Depth int
	Kernel       int        // odd; 0 means 3
	Pad          Padding    // Periodic (the zero value) or Zero
	Activation   Activation // "tanh", "swish", "elu" (the default), "relu"
	Groups       int        // GroupNorm groups after every hidden convolution; 0: no normalisation
	ZeroLast     bool       // the last convolution starts at zero (the output is 0 at initialisation)
	NoBias       bool       // no biases in convolutions and normalisations
	D4, Odd      bool       // symmetrise over D4 and/or the sign flip (see above)
	// SymmetricKernels makes every kernel D4-invariant (see above).
	SymmetricKernels bool
	GroupNormEps     float64 // 0 means DefaultGroupNormEps
}

func (n CNN) widths() []int {
	if len(n.Hidden) > 0 {
		return n.Hidden
	}
	w := make([]int, n.Depth)
	for i := range w {
		w[i] = n.Width
	}
	return w
}

func (n CNN) validate(x *G.Node) error {
	if n.In < 1 || n.Out < 1 {
		return fmt.Errorf("channels %d → %d, want ≥ 1", n.In, n.Out)
	}
	if len(n.Hidden) == 0 && (n.Depth < 0 || (n.Depth > 0 && n.Width < 1)) {
		return fmt.Errorf("depth %d with width %d, want depth ≥ 0 and width ≥ 1", n.Depth, n.Width)
	}
	for i, w := range n.widths() {
		if w < 1 {
			return fmt.Errorf("hidden layer %d has width %d, want ≥ 1", i, w)
		}
		if n.Groups > 0 && w%n.Groups != 0 {
			return fmt.Errorf("hidden layer %d: %d groups do not divide width %d", i, n.Groups, w)
		}
	}
	if n.Groups < 0 {
		return fmt.Errorf("%d groups, want ≥ 0", n.Groups)
	}
	if k := n.Kernel; k != 0 && (k < 1 || k%2 == 0) {
		return fmt.Errorf("kernel size %d, want odd (1, 3, 5, …)", k)
	}
	if err := checkNode("CNN", x, 4); err != nil {
		return err
	}
	if sh := x.Shape(); x.Dims() != 4 || sh[1] != n.In {
		return fmt.Errorf("input has shape %s, want (B, %d, H, W)", shapeStr(sh), n.In)
	}
	if n.D4 && x.Shape()[2] != x.Shape()[3] {
		return fmt.Errorf("D4 symmetrisation needs a square lattice, input is %d×%d", x.Shape()[2], x.Shape()[3])
	}
	return nil
}

// Apply builds the unconditioned network on x (B, In, H, W).
func (n CNN) Apply(s *Scope, x *G.Node) (*G.Node, error) { return n.ApplyCond(s, x, nil) }

// ApplyCond builds the network on x (B, In, H, W) conditioned on emb (B, E) through FiLM after every
// hidden layer's normalisation; emb may be nil (no FiLM parameters then).
func (n CNN) ApplyCond(s *Scope, x, emb *G.Node) (*G.Node, error) {
	if err := n.validate(x); err != nil {
		return nil, fmt.Errorf("layers: CNN %s: %w", s.Prefix(), err)
	}
	if emb != nil {
		if err := checkNode("CNN", emb, 2); err != nil {
			return nil, err
		}
		if emb.Dims() != 2 || emb.Shape()[0] != x.Shape()[0] {
			return nil, fmt.Errorf("layers: CNN %s: embedding has shape %s, want (%d, E)", s.Prefix(), shapeStr(emb.Shape()), x.Shape()[0])
		}
	}
	group := n.group()
	if len(group) == 1 {
		return n.body(s, x, emb)
	}
	// The transformed copies are stacked along the batch; the embedding is repeated to match.
	var embs *G.Node
	if emb != nil {
		b, e := emb.Shape()[0], emb.Shape()[1]
		idx := make([]int, 0, len(group)*b*e)
		for range group {
			for i := 0; i < b*e; i++ {
				idx = append(idx, i)
			}
		}
		var err error
		if embs, err = Gather(emb, idx, len(group)*b, e); err != nil {
			return nil, err
		}
	}
	return Symmetrize(x, group, func(xs *G.Node) (*G.Node, error) { return n.body(s, xs, embs) })
}

// group is the symmetrisation group: D4 × Z₂, D4, Z₂ or the identity alone.
func (n CNN) group() []LatticeTransform {
	rot := []LatticeTransform{Sequence{}}
	if n.D4 {
		rot = D4Transforms()
	}
	if !n.Odd {
		return rot
	}
	var g []LatticeTransform
	for _, r := range rot {
		g = append(g, r, Sequence{r, SignFlip{}})
	}
	return g
}

// body is the plain network f₀.
func (n CNN) body(s *Scope, x, emb *G.Node) (*G.Node, error) {
	k := n.Kernel
	if k == 0 {
		k = 3
	}
	opts := ConvOpts{Pad: n.Pad}
	cin := n.In
	h := x
	var err error
	for i, w := range n.widths() {
		if h, err = n.conv(s.Sub(fmt.Sprintf("conv%d", i)), h, cin, w, k, opts, false); err != nil {
			return nil, err
		}
		if n.Groups > 0 {
			ns := s.Sub(fmt.Sprintf("norm%d", i))
			scale := ns.Param("scale", []int{w}, Constant(1))
			var bias *G.Node
			if !n.NoBias {
				bias = ns.Param("bias", []int{w}, Zeros)
			}
			if h, err = GroupNormalize(h, n.Groups, n.GroupNormEps, scale, bias); err != nil {
				return nil, fmt.Errorf("layers: CNN %s: %w", ns.Prefix(), err)
			}
		}
		switch {
		case emb != nil && (n.Activation == "elu" || n.Activation == ""):
			// FiLM and the activation as one fused op (the same numbers as FiLM then ELU).
			if h, err = FiLMELU(s.Sub(fmt.Sprintf("film%d", i)), h, emb); err != nil {
				return nil, err
			}
		case emb != nil:
			if h, err = FiLM(s.Sub(fmt.Sprintf("film%d", i)), h, emb); err != nil {
				return nil, err
			}
			fallthrough
		default:
			if h, err = n.Activation.apply(h); err != nil {
				return nil, err
			}
		}
		cin = w
	}
	return n.conv(s.Sub("out"), h, cin, n.Out, k, opts, n.ZeroLast)
}

func (n CNN) conv(s *Scope, x *G.Node, cin, cout, k int, opts ConvOpts, zero bool) (*G.Node, error) {
	init := ConvInit(1)
	if zero {
		init = Zeros
	}
	w := s.Param("w", []int{cout, cin, k, k}, init)
	var y *G.Node
	var err error
	if n.SymmetricKernels {
		if w, err = symmetricKernel(w); err != nil {
			return nil, err
		}
	}
	// Conv2D / Conv2DBias with the outputs drawn from the scope's arena.
	if n.NoBias {
		y, err = conv2D(s.Arena(), "Conv2D", x, w, nil, opts)
	} else {
		b := s.Param("b", []int{cout}, Zeros)
		if err = checkNode("Conv2DBias", b, 1); err == nil {
			y, err = conv2D(s.Arena(), "Conv2DBias", x, w, b, opts)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("layers: CNN %s: %w", s.Prefix(), err)
	}
	return y, nil
}

// symmetricKernel averages a (Cout, Cin, k, k) kernel over the 8 elements of D4 acting on its k×k window.
func symmetricKernel(w *G.Node) (*G.Node, error) {
	var sum *G.Node
	for _, g := range D4Group() {
		gw, err := g.Graph(w)
		if err != nil {
			return nil, err
		}
		if sum == nil {
			sum = gw
		} else if sum, err = G.Add(sum, gw); err != nil {
			return nil, err
		}
	}
	return G.Mul(sum, scalarLike(w, 1.0/8))
}
