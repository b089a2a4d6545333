package layers

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
)

// UNet is the score / noise-prediction network of image diffusion models (Ho et al. 2020; Song et al.
// 2021) for (B, In, H, W) images with a per-sample time t (B):
//
//	temb = W₂·swish(W₁·sinusoidal(t) + b₁) + b₂              (EmbDim = 4·Ch features)
//	h    = conv3×3(x)                                        (Ch channels)
//	down: at resolution r (channels Ch·Mults[r]) ResBlocks residual blocks, each kept as a skip; then a
//	      2× down-sampling (kept as a skip too) except at the coarsest resolution
//	middle: ResBlock, [attention], ResBlock
//	up:   at every resolution from the coarsest, ResBlocks+1 residual blocks, each on the concatenation of
//	      h with the most recent skip; then a 2× up-sampling except at the finest resolution
//	out  = conv3×3(swish(GroupNorm(h)))                      (Out channels)
//
// A residual block from cin to cout channels is
//
//	h' = conv3×3(swish(cond(GroupNorm(conv3×3(swish(GroupNorm(h)))), temb)))
//	out = h' + (cin == cout ? h : conv1×1(h))
//
// where cond is FiLM (h·(1 + γ) + β with [γ; β] a linear map of swish(temb); Cond "film") or DDPM's
// additive conditioning (h + β; Cond "add"). The second convolution of every block starts at zero, so
// each block starts as the identity (or its 1×1 projection). Convolutions use zero padding (images).
// Down-sampling is a stride-2 3×3 convolution ("conv") or a 2×2 average (AvgPool2x; "avgpool");
// up-sampling is nearest-neighbour (Upsample2x) followed by a 3×3 convolution ("nearest"; one
// UpsampleConv2D op unless Unfused) or a stride-2 transposed convolution ("transpose"). Attention lists the sides (in pixels) at which a single-head
// self-attention block (GroupNorm, 1×1 q, k, v, softmax over positions, 1×1 output projection starting at
// zero, residual) follows each residual block; the middle always has one when Attention is not empty.
//
// Parameters live under the scope given to Apply ("temb/…", "in/…", "down0/res0/…", "mid/…", "up0/…",
// "out/…"). H and W must be divisible by 2^(len(Mults)−1).
type UNet struct {
	In, Out   int
	Ch        int   // channels at the finest resolution
	Mults     []int // channel multiplier per resolution (len = number of resolutions)
	ResBlocks int   // residual blocks per resolution on the way down
	Groups    int   // GroupNorm groups (must divide every channel count)
	Cond      string
	Down, Up  string
	Attention []int // image sides with self-attention (empty: none)
	// TimeScale multiplies t inside the sinusoidal embedding (1000 for t ∈ [0, 1], DDPM's step count).
	TimeScale float64
	// Unfused builds every GroupNorm (with its FiLM and swish) from elementary graph ops instead of the
	// fused GroupNormAct, and the nearest up-sampling and its convolution as two ops instead of
	// UpsampleConv2D: the same numbers, slower, but differentiable twice.
	Unfused bool `json:"unfused,omitempty"`
}

// UNetPreset returns a named configuration for in = out channels:
//
//	unet-tiny    Ch 16, Mults 1,2,2, 1 block, 4 groups, FiLM, stride-2 conv down, nearest up
//	unet-small   Ch 32, Mults 1,2,2, 2 blocks, 8 groups, FiLM
//	ddpm-cifar10 DDPM's CIFAR-10 network: Ch 128, Mults 1,2,2,2, 2 blocks, 32 groups, additive time
//	             conditioning, attention at 16×16 (35.7M parameters for 3 channels; dropout is not used)
func UNetPreset(name string, channels int) (UNet, error) {
	u := UNet{In: channels, Out: channels, Cond: "film", Down: "conv", Up: "nearest", TimeScale: 1000}
	switch name {
	case "unet-tiny":
		u.Ch, u.Mults, u.ResBlocks, u.Groups = 16, []int{1, 2, 2}, 1, 4
	case "unet-small":
		u.Ch, u.Mults, u.ResBlocks, u.Groups = 32, []int{1, 2, 2}, 2, 8
	case "ddpm-cifar10":
		u.Ch, u.Mults, u.ResBlocks, u.Groups, u.Cond, u.Attention = 128, []int{1, 2, 2, 2}, 2, 32, "add", []int{16}
	default:
		return UNet{}, fmt.Errorf("layers: U-Net preset %q, want unet-tiny, unet-small or ddpm-cifar10", name)
	}
	return u, nil
}

// Validate checks the configuration against an input of H×W pixels.
func (u UNet) Validate(h, w int) error {
	if u.In < 1 || u.Out < 1 || u.Ch < 1 || u.ResBlocks < 1 || len(u.Mults) < 1 || u.Groups < 1 {
		return fmt.Errorf("layers: U-Net: In=%d Out=%d Ch=%d ResBlocks=%d Mults=%v Groups=%d, want all ≥ 1", u.In, u.Out, u.Ch, u.ResBlocks, u.Mults, u.Groups)
	}
	for i, m := range u.Mults {
		if m < 1 || (u.Ch*m)%u.Groups != 0 {
			return fmt.Errorf("layers: U-Net: Mults[%d]=%d: %d channels, want a positive multiple of %d groups", i, m, u.Ch*m, u.Groups)
		}
	}
	if u.Ch%u.Groups != 0 {
		return fmt.Errorf("layers: U-Net: %d groups do not divide %d channels", u.Groups, u.Ch)
	}
	if u.Cond != "film" && u.Cond != "add" {
		return fmt.Errorf("layers: U-Net: Cond %q, want film or add", u.Cond)
	}
	if u.Down != "conv" && u.Down != "avgpool" {
		return fmt.Errorf("layers: U-Net: Down %q, want conv or avgpool", u.Down)
	}
	if u.Up != "nearest" && u.Up != "transpose" {
		return fmt.Errorf("layers: U-Net: Up %q, want nearest or transpose", u.Up)
	}
	f := 1 << (len(u.Mults) - 1)
	if h%f != 0 || w%f != 0 {
		return fmt.Errorf("layers: U-Net: %d×%d images with %d resolutions, want sides divisible by %d", h, w, len(u.Mults), f)
	}
	return nil
}

func (u UNet) attnAt(side int) bool {
	for _, a := range u.Attention {
		if a == side {
			return true
		}
	}
	return false
}

// Apply builds the network on x (B, In, H, W) and t (B) under s; the result is (B, Out, H, W).
func (u UNet) Apply(s *Scope, x, t *G.Node) (*G.Node, error) {
	if x == nil || x.Dims() != 4 || x.Shape()[1] != u.In {
		return nil, fmt.Errorf("layers: U-Net %s: input must be (B, %d, H, W)", s.Prefix(), u.In)
	}
	xs := []int(x.Shape())
	if err := u.Validate(xs[2], xs[3]); err != nil {
		return nil, err
	}
	if t == nil || t.Dims() != 1 || t.Shape()[0] != xs[0] {
		return nil, fmt.Errorf("layers: U-Net %s: time must be (B) with B = %d", s.Prefix(), xs[0])
	}
	temb, err := u.timeEmbedding(s.Sub("temb"), t)
	if err != nil {
		return nil, err
	}
	zero := ConvOpts{Pad: Zero}
	h, err := u.conv(s, "in", x, u.In, u.Ch, 3, zero, false)
	if err != nil {
		return nil, err
	}
	skips := []*G.Node{h}
	ch := u.Ch
	for r, m := range u.Mults {
		ls := s.Sub(fmt.Sprintf("down%d", r))
		for i := range u.ResBlocks {
			if h, err = u.resBlock(ls.Sub(fmt.Sprintf("res%d", i)), h, temb, ch, u.Ch*m); err != nil {
				return nil, err
			}
			ch = u.Ch * m
			if u.attnAt(h.Shape()[2]) {
				if h, err = attention(ls.Sub(fmt.Sprintf("attn%d", i)), h, u.Groups, u.Unfused); err != nil {
					return nil, err
				}
			}
			skips = append(skips, h)
		}
		if r < len(u.Mults)-1 {
			if u.Down == "conv" {
				h, err = u.conv(ls, "downsample", h, ch, ch, 3, ConvOpts{Pad: Zero, Stride: 2}, false)
			} else {
				h, err = AvgPool2x(h)
			}
			if err != nil {
				return nil, err
			}
			skips = append(skips, h)
		}
	}
	ms := s.Sub("mid")
	if h, err = u.resBlock(ms.Sub("res0"), h, temb, ch, ch); err != nil {
		return nil, err
	}
	if len(u.Attention) > 0 {
		if h, err = attention(ms.Sub("attn"), h, u.Groups, u.Unfused); err != nil {
			return nil, err
		}
	}
	if h, err = u.resBlock(ms.Sub("res1"), h, temb, ch, ch); err != nil {
		return nil, err
	}
	for r := len(u.Mults) - 1; r >= 0; r-- {
		ls := s.Sub(fmt.Sprintf("up%d", r))
		cout := u.Ch * u.Mults[r]
		for i := range u.ResBlocks + 1 {
			sk := skips[len(skips)-1]
			skips = skips[:len(skips)-1]
			var cat *G.Node
			if u.Unfused {
				cat, err = G.Concat(1, h, sk)
			} else {
				cat, err = concatChannelsIn(ls.Arena(), h, sk)
			}
			if err != nil {
				return nil, err
			}
			if h, err = u.resBlock(ls.Sub(fmt.Sprintf("res%d", i)), cat, temb, ch+sk.Shape()[1], cout); err != nil {
				return nil, err
			}
			ch = cout
			if u.attnAt(h.Shape()[2]) {
				if h, err = attention(ls.Sub(fmt.Sprintf("attn%d", i)), h, u.Groups, u.Unfused); err != nil {
					return nil, err
				}
			}
		}
		if r > 0 {
			if u.Up == "nearest" && !u.Unfused {
				// nearest ×2 and the 3×3 convolution as one op (four 2×2 convolutions on the coarse grid)
				var c *Conv
				if c, err = NewConv(ls, "upsample", ch, ch, 3, zero); err == nil {
					h, err = upsampleConv2DIn(ls.Arena(), h, c.W, c.B)
				}
			} else if u.Up == "nearest" {
				if h, err = upsample2xIn(ls.Arena(), h); err != nil {
					return nil, err
				}
				h, err = u.conv(ls, "upsample", h, ch, ch, 3, zero, false)
			} else {
				var c *Conv
				if c, err = NewConvTranspose(ls, "upsample", ch, ch, 3, ConvOpts{Pad: Zero, Stride: 2}); err == nil {
					h, err = c.Apply(h)
				}
			}
			if err != nil {
				return nil, err
			}
		}
	}
	os := s.Sub("out")
	if h, err = u.normAct(os.Sub("norm"), h, u.Groups, nil, nil, true); err != nil {
		return nil, err
	}
	return u.conv(os, "conv", h, ch, u.Out, 3, zero, false)
}

// timeEmbedding returns swish(temb) feature-major, (4·Ch, B): the input every block's conditioning reads.
func (u UNet) timeEmbedding(s *Scope, t *G.Node) (*G.Node, error) {
	scale := u.TimeScale
	if scale == 0 {
		scale = 1
	}
	e, err := SinusoidalEmbedding{Dim: u.Ch, Scale: scale}.Apply(t)
	if err != nil {
		return nil, err
	}
	b, d := e.Shape()[0], e.Shape()[1]
	idx := make([]int, d*b)
	for i := range d {
		for j := range b {
			idx[i*b+j] = j*d + i
		}
	}
	et, err := Gather(e, idx, d, b)
	if err != nil {
		return nil, err
	}
	h, err := Linear(s.Sub("dense0"), et, 4*u.Ch, false, false)
	if err != nil {
		return nil, err
	}
	if h, err = Swish(h); err != nil {
		return nil, err
	}
	if h, err = Linear(s.Sub("dense1"), h, 4*u.Ch, false, false); err != nil {
		return nil, err
	}
	return Swish(h)
}

func (u UNet) conv(s *Scope, name string, x *G.Node, cin, cout, k int, opts ConvOpts, zero bool) (*G.Node, error) {
	if !zero {
		c, err := NewConv(s, name, cin, cout, k, opts)
		if err != nil {
			return nil, err
		}
		return c.Apply(x)
	}
	ls := s.Sub(name)
	c := &Conv{Name: ls.Prefix(), Cin: cin, Cout: cout, K: k, Opts: opts, ar: s.Arena(),
		W: ls.Param("w", []int{cout, cin, k, k}, Zeros), B: ls.Param("b", []int{cout}, Zeros)}
	return c.Apply(x)
}

// resBlock is one residual block (see UNet) from cin to cout channels conditioned on temb (E, B).
func (u UNet) resBlock(s *Scope, x, temb *G.Node, cin, cout int) (*G.Node, error) {
	zero := ConvOpts{Pad: Zero}
	h, err := u.normAct(s.Sub("norm0"), x, u.groupsFor(cin), nil, nil, true)
	if err != nil {
		return nil, err
	}
	if h, err = u.conv(s, "conv0", h, cin, cout, 3, zero, false); err != nil {
		return nil, err
	}
	var gamma, beta *G.Node
	if u.Cond == "add" {
		// DDPM: the embedding's projection is added before the second normalisation.
		if h, err = addCondition(s.Sub("temb"), h, temb); err != nil {
			return nil, err
		}
	} else if gamma, beta, err = filmParamsFeatureMajor(s.Sub("film"), h, temb); err != nil {
		return nil, err
	}
	if h, err = u.normAct(s.Sub("norm1"), h, u.Groups, gamma, beta, true); err != nil {
		return nil, err
	}
	if h, err = u.conv(s, "conv1", h, cout, cout, 3, zero, true); err != nil {
		return nil, err
	}
	skip := x
	if cin != cout {
		if skip, err = u.conv(s, "skip", x, cin, cout, 1, zero, false); err != nil {
			return nil, err
		}
	}
	return G.Add(h, skip)
}

// groupsFor is the group count for a concatenation of c channels: Groups when it divides c, else the
// largest divisor of c not above Groups.
func (u UNet) groupsFor(c int) int {
	for g := u.Groups; g > 1; g-- {
		if c%g == 0 {
			return g
		}
	}
	return 1
}

// normAct is GroupNorm (parameters "scale", "bias" under s), FiLM with γ, β (B·C) when given, and swish
// when act: the fused GroupNormAct, or the graph of GroupNormalize, modulate and Swish when Unfused.
func (u UNet) normAct(s *Scope, x *G.Node, groups int, gamma, beta *G.Node, act bool) (*G.Node, error) {
	c := x.Shape()[1]
	scale := s.Param("scale", []int{c}, Constant(1))
	bias := s.Param("bias", []int{c}, Zeros)
	if !u.Unfused {
		y, err := groupNormActIn(s.Arena(), x, groups, 0, scale, bias, gamma, beta, act)
		if err != nil {
			return nil, fmt.Errorf("layers: %s: %w", s.Prefix(), err)
		}
		return y, nil
	}
	y, err := GroupNormalize(x, groups, 0, scale, bias)
	if err != nil {
		return nil, fmt.Errorf("layers: %s: %w", s.Prefix(), err)
	}
	if gamma != nil {
		if y, err = modulate(y, gamma, beta); err != nil {
			return nil, err
		}
	}
	if act {
		return Swish(y)
	}
	return y, nil
}

// filmParamsFeatureMajor returns FiLM's γ and β (B·C, sample-major) for features h (B, C, …): [γ; β] = W temb + b with
// temb feature-major (E, B), W and b zero-initialised.
func filmParamsFeatureMajor(s *Scope, h, temb *G.Node) (gamma, beta *G.Node, err error) {
	b, c := h.Shape()[0], h.Shape()[1]
	gb, err := Linear(s, temb, 2*c, true, false) // (2C, B)
	if err != nil {
		return nil, nil, err
	}
	gi, bi := make([]int, b*c), make([]int, b*c)
	for j := range b {
		for k := range c {
			gi[j*c+k] = k*b + j
			bi[j*c+k] = (c+k)*b + j
		}
	}
	if gamma, err = Gather(gb, gi, b*c); err != nil {
		return nil, nil, err
	}
	if beta, err = Gather(gb, bi, b*c); err != nil {
		return nil, nil, err
	}
	return gamma, beta, nil
}

// addCondition is DDPM's additive time conditioning, h + W temb + b per sample and channel, with temb
// feature-major (E, B).
func addCondition(s *Scope, h, temb *G.Node) (*G.Node, error) {
	hs := []int(h.Shape())
	b, c := hs[0], hs[1]
	gb, err := Linear(s, temb, c, false, false) // (C, B)
	if err != nil {
		return nil, err
	}
	bi := make([]int, b*c)
	for j := range b {
		for k := range c {
			bi[j*c+k] = k*b + j
		}
	}
	beta, err := Gather(gb, bi, b*c)
	if err != nil {
		return nil, err
	}
	r, err := Reshape(h, b*c, prod(hs[2:]))
	if err != nil {
		return nil, err
	}
	if r, err = RowBias(r, beta); err != nil {
		return nil, err
	}
	return Reshape(r, hs...)
}

// AvgPool2x averages every 2×2 block of x (B, C, H, W) with even H and W: (B, C, H/2, W/2). It is the
// mean of four index gathers (Gather), so its gradient spreads each output gradient over its block.
func AvgPool2x(x *G.Node) (*G.Node, error) {
	if err := check4D("AvgPool2x", x, "input"); err != nil {
		return nil, err
	}
	s := []int(x.Shape())
	if s[2]%2 != 0 || s[3]%2 != 0 {
		return nil, fmt.Errorf("layers: AvgPool2x: input %s, want even H and W", shapeStr(s))
	}
	planes, h, w := s[0]*s[1], s[2]/2, s[3]/2
	var sum *G.Node
	for _, d := range [][2]int{{0, 0}, {0, 1}, {1, 0}, {1, 1}} {
		idx := make([]int, planes*h*w)
		for p := range planes {
			for y := range h {
				for xx := range w {
					idx[(p*h+y)*w+xx] = (p*s[2]+2*y+d[0])*s[3] + 2*xx + d[1]
				}
			}
		}
		g, err := Gather(x, idx, s[0], s[1], h, w)
		if err != nil {
			return nil, err
		}
		if sum == nil {
			sum = g
		} else if sum, err = G.Add(sum, g); err != nil {
			return nil, err
		}
	}
	return G.HadamardProd(sum, scalarLike(sum, 0.25))
}

// attention is a single-head self-attention block over the H·W positions of x (B, C, H, W) with a
// residual connection: q, k, v = 1×1 convolutions of GroupNorm(x), a_ij = softmax_j(q_i·k_j/√C),
// out = x + proj(Σ_j a_ij v_j), proj a 1×1 convolution starting at zero. The softmax is exp(z − LogSumExp z).
func attention(s *Scope, x *G.Node, groups int, unfused bool) (*G.Node, error) {
	xs := []int(x.Shape())
	b, c, hw := xs[0], xs[1], xs[2]*xs[3]
	u := UNet{Unfused: unfused}
	h, err := u.normAct(s.Sub("norm"), x, groups, nil, nil, false)
	if err != nil {
		return nil, err
	}
	zero := ConvOpts{Pad: Zero}
	var qkv [3]*G.Node
	for i, n := range []string{"q", "k", "v"} {
		y, err := u.conv(s, n, h, c, c, 1, zero, false)
		if err != nil {
			return nil, err
		}
		if qkv[i], err = Reshape(y, b, c, hw); err != nil {
			return nil, err
		}
	}
	qt, err := G.Transpose(qkv[0], 0, 2, 1) // (B, HW, C)
	if err != nil {
		return nil, err
	}
	sc, err := G.BatchedMatMul(qt, qkv[1]) // (B, HW, HW)
	if err != nil {
		return nil, err
	}
	if sc, err = G.HadamardProd(sc, scalarLike(sc, 1/math.Sqrt(float64(c)))); err != nil {
		return nil, err
	}
	flat, err := Reshape(sc, b*hw, hw)
	if err != nil {
		return nil, err
	}
	lse, err := LogSumExp(flat, 1)
	if err != nil {
		return nil, err
	}
	if lse, err = G.Neg(lse); err != nil {
		return nil, err
	}
	z, err := RowBias(flat, lse)
	if err != nil {
		return nil, err
	}
	a, err := G.Exp(z)
	if err != nil {
		return nil, err
	}
	if a, err = Reshape(a, b, hw, hw); err != nil {
		return nil, err
	}
	at, err := G.Transpose(a, 0, 2, 1) // (B, HW_j, HW_i)
	if err != nil {
		return nil, err
	}
	o, err := G.BatchedMatMul(qkv[2], at) // (B, C, HW_i)
	if err != nil {
		return nil, err
	}
	if o, err = Reshape(o, xs...); err != nil {
		return nil, err
	}
	if o, err = u.conv(s, "proj", o, c, c, 1, zero, true); err != nil {
		return nil, err
	}
	return G.Add(x, o)
}
