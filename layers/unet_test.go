package layers_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/layers/layerstest"
)

// TestAvgPool2x: the forward pass is the 2×2 block mean written as a loop here; the gradient is checked
// against finite differences (float64, tolerance 1e-6 as for every op of the kit).
func TestAvgPool2x(t *testing.T) {
	shape := []int{2, 3, 4, 6}
	rng := rand.New(rand.NewPCG(4, 1))
	x := randVals(rng, size(shape), -1, 1)
	got := evalNodes(t, tensor.Float64, [][]int{shape}, [][]float64{x}, func(in []*G.Node) (*G.Node, error) {
		return layers.AvgPool2x(in[0])
	})
	want := make([]float64, 0, len(x)/4)
	for p := range 6 {
		for y := range 2 {
			for xx := range 3 {
				at := func(dy, dx int) float64 { return x[(p*4+2*y+dy)*6+2*xx+dx] }
				want = append(want, (at(0, 0)+at(0, 1)+at(1, 0)+at(1, 1))/4)
			}
		}
	}
	compareVals(t, got, want, 1e-15) // three additions and a multiplication by ¼: 2 ulp
	layerstest.GradCheck(t, [][]int{shape}, [][]float64{x}, func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
		y, err := layers.AvgPool2x(in[0])
		if err != nil {
			return nil, err
		}
		return weightedSum(y, 3)
	}, 1e-6)
	g := G.NewGraph()
	odd := G.NewTensor(g, tensor.Float64, 4, G.WithShape(1, 1, 3, 4), G.WithName("odd"))
	if _, err := layers.AvgPool2x(odd); err == nil || !strings.Contains(err.Error(), "want even H and W") {
		t.Errorf("odd input: %v", err)
	}
}

// weightedSum is Σ_i w_i y_i² with fixed weights w_i = 1 + (i mod k)/k: a loss whose gradient sees every
// output element differently.
func weightedSum(y *G.Node, k int) (*G.Node, error) {
	n := y.Shape().TotalSize()
	w := make([]float64, n)
	for i := range w {
		w[i] = 1 + float64(i%k)/float64(k)
	}
	c := G.NewConstant(layers.NewDense(y.Dtype(), y.Shape(), w), G.WithName("weights"))
	sq, err := G.Square(y)
	if err != nil {
		return nil, err
	}
	p, err := G.HadamardProd(sq, c)
	if err != nil {
		return nil, err
	}
	return G.Sum(p)
}

// tinyUNet is a U-Net small enough for finite differences: 2 channels, 4×4 images, two resolutions,
// attention at 2×2 (the coarse one).
func tinyUNet(cond, down, up string) layers.UNet {
	return layers.UNet{In: 2, Out: 2, Ch: 4, Mults: []int{1, 2}, ResBlocks: 1, Groups: 2, Cond: cond, Down: down, Up: up,
		Attention: []int{2}, TimeScale: 10}
}

// TestUNetGradient: the gradient of a weighted squared output of a tiny U-Net, with respect to the input
// and to 40 randomly chosen parameter entries, agrees with central finite differences (step 1e-5 in
// float64: truncation O(h²)·f”' ≈ 1e-10, rounding ≈ 1e-16·|f|/h ≈ 1e-10 relative; tolerance 1e-6
// relative to max(1, |g|)). The parameters are perturbed first so that no zero-initialised layer hides
// its gradient. Every conditioning, down- and up-sampling variant is covered.
func TestUNetGradient(t *testing.T) {
	for _, v := range [][3]string{{"film", "conv", "nearest"}, {"add", "avgpool", "transpose"}} {
		u := tinyUNet(v[0], v[1], v[2])
		const B = 2
		store := layers.NewStore(tensor.Float64, 3)
		g := G.NewGraph()
		s := layers.NewScope(g, store)
		rng := rand.New(rand.NewPCG(5, 5))
		x := G.NewTensor(g, tensor.Float64, 4, G.WithShape(B, 2, 4, 4), G.WithName("x"),
			G.WithValue(layers.NewDense(tensor.Float64, []int{B, 2, 4, 4}, randVals(rng, B*32, -1, 1))))
		tn := G.NewTensor(g, tensor.Float64, 1, G.WithShape(B), G.WithName("t"),
			G.WithValue(layers.NewDense(tensor.Float64, []int{B}, []float64{0.3, 0.8})))
		y, err := u.Apply(s, x, tn)
		if err != nil {
			t.Fatal(err)
		}
		loss, err := weightedSum(y, 5)
		if err != nil {
			t.Fatal(err)
		}
		store.Perturb(rand.New(rand.NewPCG(9, 9)), 0.3)
		names, params := s.Params()
		grads, err := layers.Grad(loss, append([]*G.Node{x}, params...)...)
		if err != nil {
			t.Fatal(err)
		}
		m := layers.MustNewTapeMachine(g)
		run := func() float64 {
			if err := m.RunAll(); err != nil {
				t.Fatal(err)
			}
			v := layers.ValueFloats(loss.Value())[0]
			return v
		}
		run()
		symX := layers.ValueFloats(grads[0].Value())
		symP := make([][]float64, len(params))
		for i := range params {
			symP[i] = layers.ValueFloats(grads[i+1].Value())
		}
		m.Reset()
		check := func(what string, sym float64, set func(float64), orig float64) {
			const h = 1e-5
			set(orig + h)
			fp := run()
			m.Reset()
			set(orig - h)
			fm := run()
			m.Reset()
			set(orig)
			fd := (fp - fm) / (2 * h)
			if math.Abs(fd-sym) > 1e-6*math.Max(1, math.Abs(sym)) {
				t.Errorf("%v %s: symbolic %v, finite difference %v", v, what, sym, fd)
			}
		}
		xt := x.Value().(*tensor.Dense)
		xv := xt.Data().([]float64)
		for i := 0; i < len(xv); i += 3 {
			check("x["+itoa(i)+"]", symX[i], func(a float64) { xv[i] = a }, xv[i])
		}
		for range 40 {
			p := rng.IntN(len(params))
			pt, _ := store.Get(names[p])
			pv := pt.Data().([]float64)
			k := rng.IntN(len(pv))
			check(names[p]+"["+itoa(k)+"]", symP[p][k], func(a float64) { pv[k] = a }, pv[k])
		}
		m.Close()
	}
}

func itoa(i int) string {
	const d = "0123456789"
	if i < 10 {
		return d[i : i+1]
	}
	return itoa(i/10) + d[i%10:i%10+1]
}

// TestUNetTimeAtInit: with FiLM conditioning the time embedding enters only through zero-initialised
// layers, so at initialisation the output does not depend on t (exactly); after perturbing the weights it
// does.
func TestUNetTimeAtInit(t *testing.T) {
	u := tinyUNet("film", "conv", "nearest")
	u.Attention = nil
	store := layers.NewStore(tensor.Float64, 1)
	rng := rand.New(rand.NewPCG(1, 1))
	x := randVals(rng, 2*32, -1, 1)
	out := func(tv []float64) []float64 {
		return evalNodes(t, tensor.Float64, [][]int{{2, 2, 4, 4}, {2}}, [][]float64{x, tv}, func(in []*G.Node) (*G.Node, error) {
			return u.Apply(layers.NewScope(in[0].Graph(), store), in[0], in[1])
		})
	}
	a, b := out([]float64{0.1, 0.2}), out([]float64{0.9, 0.5})
	compareVals(t, a, b, 0)
	// After perturbing the weights, t matters.
	store.Perturb(rand.New(rand.NewPCG(2, 2)), 0.3)
	a, b = out([]float64{0.1, 0.2}), out([]float64{0.9, 0.5})
	same := true
	for i := range a {
		if a[i] != b[i] {
			same = false
		}
	}
	if same {
		t.Error("trained U-Net output does not depend on t")
	}
}

// ddpmCount is the parameter count of DDPM's CIFAR-10 network written out layer by layer (Ho et al. 2020,
// their diffusion_utils model): conv_in, the time MLP, residual blocks (two GroupNorms, two 3×3 convs, the
// time projection, a 1×1 shortcut when the width changes), attention blocks (GroupNorm and four 1×1
// projections), the stride-2 down-sampling and the nearest + 3×3 up-sampling convs, and the output.
func ddpmCount(in, ch int, mults []int, nres int, attnRes []int, side int) int {
	conv := func(ci, co, k int) int { return co*ci*k*k + co }
	gn := func(c int) int { return 2 * c }
	temb := 4 * ch
	res := func(ci, co int) int {
		n := gn(ci) + conv(ci, co, 3) + (temb*co + co) + gn(co) + conv(co, co, 3)
		if ci != co {
			n += conv(ci, co, 1)
		}
		return n
	}
	attn := func(c int) int { return gn(c) + 4*conv(c, c, 1) }
	isAttn := func(s int) bool {
		for _, a := range attnRes {
			if a == s {
				return true
			}
		}
		return false
	}
	n := conv(in, ch, 3) + (ch*temb + temb) + (temb*temb + temb)
	skips := []int{ch}
	c, s := ch, side
	for l, m := range mults {
		for range nres {
			n += res(c, ch*m)
			c = ch * m
			if isAttn(s) {
				n += attn(c)
			}
			skips = append(skips, c)
		}
		if l < len(mults)-1 {
			n += conv(c, c, 3)
			skips = append(skips, c)
			s /= 2
		}
	}
	n += 2 * res(c, c)
	if len(attnRes) > 0 {
		n += attn(c)
	}
	for l := len(mults) - 1; l >= 0; l-- {
		for range nres + 1 {
			sk := skips[len(skips)-1]
			skips = skips[:len(skips)-1]
			n += res(c+sk, ch*mults[l])
			c = ch * mults[l]
			if isAttn(s) {
				n += attn(c)
			}
		}
		if l > 0 {
			n += conv(c, c, 3)
			s *= 2
		}
	}
	return n + gn(c) + conv(c, in, 3)
}

// TestUNetPresetCounts: the presets build, and the parameter count of what was built equals the
// layer-by-layer count of DDPM's network; for ddpm-cifar10 (the same architecture: attention at 16×16 and
// additive time conditioning) that count is the 35.7M of the DDPM paper (to its 3 significant digits).
func TestUNetPresetCounts(t *testing.T) {
	for _, name := range []string{"unet-tiny", "unet-small", "ddpm-cifar10"} {
		u, err := layers.UNetPreset(name, 3)
		if err != nil {
			t.Fatal(err)
		}
		store := layers.NewStore(tensor.Float32, 1)
		g := G.NewGraph()
		s := layers.NewScope(g, store)
		x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(1, 3, 32, 32), G.WithName("x"))
		tn := G.NewTensor(g, tensor.Float32, 1, G.WithShape(1), G.WithName("t"))
		y, err := u.Apply(s, x, tn)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := []int(y.Shape()); got[0] != 1 || got[1] != 3 || got[2] != 32 || got[3] != 32 {
			t.Fatalf("%s: output shape %v", name, got)
		}
		got := store.NumParams()
		want := ddpmCount(3, u.Ch, u.Mults, u.ResBlocks, u.Attention, 32)
		if u.Cond == "film" { // FiLM's projection is twice as wide as the additive one
			want += ddpmFiLMExtra(u)
		}
		t.Logf("%s: %d parameters", name, got)
		if got != want {
			t.Errorf("%s: %d parameters, layer-by-layer count %d", name, got, want)
		}
		if name == "ddpm-cifar10" && math.Abs(float64(got)-35.7e6) > 0.05e6 {
			t.Errorf("ddpm-cifar10: %d parameters, DDPM reports 35.7M", got)
		}
	}
}

// ddpmFiLMExtra is what FiLM adds over additive conditioning: a second (γ) projection of the time
// embedding, 4·Ch·C + C per residual block of output width C.
func ddpmFiLMExtra(u layers.UNet) int {
	n := 0
	temb := 4 * u.Ch
	add := func(c int) { n += temb*c + c }
	for _, m := range u.Mults {
		for range u.ResBlocks {
			add(u.Ch * m)
		}
	}
	top := u.Ch * u.Mults[len(u.Mults)-1]
	add(top)
	add(top)
	for l := len(u.Mults) - 1; l >= 0; l-- {
		for range u.ResBlocks + 1 {
			add(u.Ch * u.Mults[l])
		}
	}
	return n
}

func TestUNetErrors(t *testing.T) {
	u, _ := layers.UNetPreset("unet-tiny", 1)
	if err := u.Validate(28, 28); err == nil || !strings.Contains(err.Error(), "divisible by 4") {
		// 28 = 4·7: fine; 30 is not.
		if err != nil {
			t.Errorf("28×28: %v", err)
		}
	}
	if err := u.Validate(30, 30); err == nil || !strings.Contains(err.Error(), "divisible by 4") {
		t.Errorf("30×30: %v", err)
	}
	if _, err := layers.UNetPreset("unet-huge", 1); err == nil || !strings.Contains(err.Error(), "unet-tiny") {
		t.Errorf("unknown preset: %v", err)
	}
	u.Groups = 3
	if err := u.Validate(32, 32); err == nil || !strings.Contains(err.Error(), "groups") {
		t.Errorf("3 groups: %v", err)
	}
}
