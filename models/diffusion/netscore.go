package diffusion

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"

	"rgflow/layers"
)

// CNNScore is a learned score network on the lattice, built as a Gorgonia graph: for C channels on an L×L
// lattice,
//
//	s_θ(x, t) = c(t) · f_θ(c(t) · x, emb(t/T)),   c(t) = 1 / √(mean_j v_j(t)),
//
// where f_θ is a periodic CNN (In = Out = C, so exactly translation-equivariant; D4 optional) with FiLM
// conditioning on a sinusoidal embedding of t/T, and v_j(t) is the marginal variance per mode coordinate of
// a Gaussian start with the reference variances V0 (the data's empirical variance per mode coordinate). The
// scale c(t) makes the network's input and output O(1) at every t: the input is the field in units of its
// typical size, and the output is the score in units of its typical size 1/std (a start of exactly V0 has
// the exact score −u_j/v_j(t), of size c(t)). The scale is computed on the host and applied outside the
// graph: the graph holds f_θ only (Build), and both the loss and the host Score multiply by c(t).
type CNNScore struct {
	SDE SDE
	C   int // channels (1: a real scalar, 2: O(2))
	Net layers.CNN
	Emb layers.SinusoidalEmbedding
	V0  []float64 // reference variance per mode coordinate (length V)
	// GlobalMean adds, per channel, an input channel holding the field's lattice average at every site
	// (the network then reads the zero mode directly instead of through its receptive field; it stays
	// translation- and D4-equivariant). Set it before the first Build.
	GlobalMean bool
}

// In is the number of input channels of the CNN: C, or 2C with GlobalMean.
func (c *CNNScore) In() int {
	if c.GlobalMean {
		return 2 * c.C
	}
	return c.C
}

// Input writes the network input for a batch x (n samples of C·V values, already multiplied by c(t)) into
// dst (n·In·V values): per sample, the C channels of x and, with GlobalMean, C channels of their means.
func (c *CNNScore) Input(dst, x []float64) {
	V := c.SDE.Lattice().V
	if !c.GlobalMean {
		copy(dst, x)
		return
	}
	n := len(x) / (c.C * V)
	for b := range n {
		src := x[b*c.C*V : (b+1)*c.C*V]
		out := dst[b*2*c.C*V : (b+1)*2*c.C*V]
		copy(out, src)
		for ch := range c.C {
			m := 0.0
			for _, v := range src[ch*V : (ch+1)*V] {
				m += v
			}
			m /= float64(V)
			o := out[(c.C+ch)*V : (c.C+ch+1)*V]
			for i := range o {
				o[i] = m
			}
		}
	}
}

// NewCNNScore returns a score network of the given CNN width and depth (kernel 3, periodic padding,
// elu), sinusoidal embedding of dimension 32, and the reference variances v0 (length V, all > 0).
func NewCNNScore(sde SDE, channels, width, depth int, d4 bool, v0 []float64) (*CNNScore, error) {
	if channels < 1 {
		return nil, fmt.Errorf("diffusion: CNN score: %d channels, want ≥ 1", channels)
	}
	if width < 1 || depth < 1 {
		return nil, fmt.Errorf("diffusion: CNN score: width %d and depth %d, want both ≥ 1", width, depth)
	}
	if len(v0) != sde.Lattice().V {
		return nil, fmt.Errorf("diffusion: CNN score: %d reference variances, want V=%d", len(v0), sde.Lattice().V)
	}
	for j, v := range v0 {
		if !(v > 0) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("diffusion: CNN score: reference variance v0[%d]=%v, want finite and > 0", j, v)
		}
	}
	return &CNNScore{
		SDE: sde, C: channels,
		Net: layers.CNN{In: channels, Out: channels, Width: width, Depth: depth, Kernel: 3, Pad: layers.Periodic, D4: d4},
		Emb: layers.SinusoidalEmbedding{Dim: 32, Scale: 1000 / sde.T()},
		V0:  append([]float64(nil), v0...),
	}, nil
}

// Scale is c(t) = 1/√(mean_j v_j(t)).
func (c *CNNScore) Scale(t float64) (float64, error) {
	v := make([]float64, len(c.V0))
	if err := MarginalVariance(c.SDE, t, c.V0, v); err != nil {
		return 0, err
	}
	m := 0.0
	for _, x := range v {
		m += x
	}
	return 1 / math.Sqrt(m/float64(len(v))), nil
}

// Build builds f_θ(xin, emb(t/T)) under s: xin is (B, In, L, L) (made by Input), t is (B); the output is
// (B, C, L, L).
// The score is c(t) times the result.
func (c *CNNScore) Build(s *layers.Scope, xin, t *G.Node) (*G.Node, error) {
	emb, err := c.Emb.Apply(t)
	if err != nil {
		return nil, err
	}
	net := c.Net
	net.In = c.In()
	return net.ApplyCond(s.Sub("score"), xin, emb)
}

// NetScore evaluates a GraphScore on the host (a diffusion Score): it runs a forward graph of a fixed batch
// and pads the last chunk of a larger batch. A Residual network's exact base is added on the host. A batch holds fields of C·V values (a sample's channels are
// consecutive fields of V values each).
type NetScore struct {
	net     GraphScore
	base    *FreeScore // the exact base of a Residual network (nil: none)
	bs      []float64
	batch   int
	x, t    *G.Node
	out     *G.Node
	vm      G.VM
	xv, tv  []float64
	xs      []float64
	dtShape []int
	store   *layers.Store
}

// NewNetScore binds net's parameters from store into a forward graph of batch samples.
func NewNetScore(net GraphScore, store *layers.Store, batch int) (*NetScore, error) {
	if batch < 1 {
		return nil, fmt.Errorf("diffusion: net score: batch %d, want ≥ 1", batch)
	}
	L := net.Process().Lattice().L
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	n := &NetScore{net: net, batch: batch, store: store, dtShape: []int{batch, net.InputChannels(), L, L}}
	n.x = s.Input("netscore/x", batch, net.InputChannels(), L, L)
	n.t = s.Input("netscore/t", batch)
	out, err := net.Build(s, n.x, n.t)
	if err != nil {
		return nil, fmt.Errorf("diffusion: net score: %w", err)
	}
	n.out = out
	if n.vm, err = layers.NewTapeMachine(g); err != nil {
		return nil, fmt.Errorf("diffusion: net score: %w", err)
	}
	n.xv = make([]float64, batch*net.InputChannels()*L*L)
	n.xs = make([]float64, batch*net.Channels()*L*L)
	n.tv = make([]float64, batch)
	if r, ok := net.(Residual); ok {
		n.base = r.ResidualBase()
	}
	return n, nil
}

// Close releases the machine.
func (n *NetScore) Close() error { return n.vm.Close() }

func (n *NetScore) Score(t float64, x, dst []float64) error {
	D := n.net.Channels() * n.net.Process().Lattice().V
	if len(x)%D != 0 || len(dst) != len(x) {
		return fmt.Errorf("diffusion: net score: batch of length %d (dst %d), want a multiple of C·V=%d", len(x), len(dst), D)
	}
	c, err := n.net.Scale(t)
	if err != nil {
		return err
	}
	for i := range n.tv {
		n.tv[i] = t
	}
	dt := n.store.Dtype()
	for b := 0; b < len(x); b += n.batch * D {
		e := min(len(x), b+n.batch*D)
		clear(n.xs)
		for i, v := range x[b:e] {
			n.xs[i] = c * v
		}
		n.net.Input(n.xv, n.xs)
		if err := G.Let(n.x, layers.NewDense(dt, n.dtShape, n.xv)); err != nil {
			return err
		}
		if err := G.Let(n.t, layers.NewDense(dt, []int{n.batch}, n.tv)); err != nil {
			return err
		}
		if err := n.vm.RunAll(); err != nil {
			n.vm.Reset()
			return fmt.Errorf("diffusion: net score: %w", err)
		}
		out := layers.ValueFloats(n.out.Value())
		n.vm.Reset()
		for i := range dst[b:e] {
			dst[b+i] = c * out[i]
		}
	}
	if n.base != nil {
		if len(n.bs) != len(x) {
			n.bs = make([]float64, len(x))
		}
		if err := n.base.Score(t, x, n.bs); err != nil {
			return fmt.Errorf("diffusion: net score: gaussian base: %w", err)
		}
		for i, v := range n.bs {
			dst[i] += v
		}
	}
	return nil
}
