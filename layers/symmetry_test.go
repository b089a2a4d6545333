package layers_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/layers/layerstest"
)

func iota(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(i)
	}
	return v
}

func hostT(t *testing.T, g layers.LatticeTransform, x []float64, shape []int) []float64 {
	t.Helper()
	y, err := g.Host(x, shape)
	if err != nil {
		t.Fatalf("%v: %v", g, err)
	}
	return y
}

func TestLatticeTransformsExplicit(t *testing.T) {
	// The 3×3 field 0…8, row-major; the expected arrays are numpy's rot90 / fliplr / transpose / roll.
	x := iota(9)
	sh := []int{1, 1, 3, 3}
	for _, tc := range []struct {
		g    layers.LatticeTransform
		want []float64
	}{
		{layers.D4{Rot: 1}, []float64{2, 5, 8, 1, 4, 7, 0, 3, 6}},             // np.rot90
		{layers.D4{Rot: 2}, []float64{8, 7, 6, 5, 4, 3, 2, 1, 0}},             // np.rot90(·, 2)
		{layers.D4{Rot: 3}, []float64{6, 3, 0, 7, 4, 1, 8, 5, 2}},             // np.rot90(·, -1)
		{layers.D4{Flip: true}, []float64{2, 1, 0, 5, 4, 3, 8, 7, 6}},         // np.fliplr
		{layers.D4{Rot: 1, Flip: true}, []float64{0, 3, 6, 1, 4, 7, 2, 5, 8}}, // rot90(fliplr) = transpose
		{layers.D4{Rot: -1}, []float64{6, 3, 0, 7, 4, 1, 8, 5, 2}},            // Rot is taken mod 4
		{layers.Translation{DX: 1}, []float64{6, 7, 8, 0, 1, 2, 3, 4, 5}},     // np.roll(·, 1, axis=0)
		{layers.Translation{DY: -1}, []float64{1, 2, 0, 4, 5, 3, 7, 8, 6}},    // np.roll(·, -1, axis=1)
		{layers.Translation{DX: 4, DY: 2}, []float64{7, 8, 6, 1, 2, 0, 4, 5, 3}},
		{layers.SignFlip{}, []float64{0, -1, -2, -3, -4, -5, -6, -7, -8}},
	} {
		if got := hostT(t, tc.g, x, sh); !slices.Equal(got, tc.want) {
			t.Errorf("%v: got %v, want %v", tc.g, got, tc.want)
		}
	}
	// Rectangles: a half turn and a mirror, 2×3.
	if got := hostT(t, layers.D4{Rot: 2}, iota(6), []int{1, 1, 2, 3}); !slices.Equal(got, []float64{5, 4, 3, 2, 1, 0}) {
		t.Errorf("half turn of a 2×3 field: %v", got)
	}
	if got := hostT(t, layers.D4{Flip: true}, iota(6), []int{1, 1, 2, 3}); !slices.Equal(got, []float64{2, 1, 0, 5, 4, 3}) {
		t.Errorf("mirror of a 2×3 field: %v", got)
	}
}

func TestD4GroupLaws(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 1))
	sh := []int{2, 2, 4, 4}
	x := randVals(rng, size(sh), -1, 1) // generic: no two values equal, so distinct permutations act differently
	group := layers.D4Group()
	act := func(g layers.D4) []float64 { return hostT(t, g, x, sh) }
	id := layers.D4{}
	// Eight distinct actions.
	for i, a := range group {
		for _, b := range group[:i] {
			if slices.Equal(act(a), act(b)) {
				t.Fatalf("%v and %v act identically", a, b)
			}
		}
	}
	// The composition table matches the composition of the actions, and is a Latin square.
	for _, a := range group {
		row := map[layers.D4]bool{}
		for _, b := range group {
			ab := a.Mul(b)
			row[ab] = true
			want := hostT(t, a, hostT(t, b, x, sh), sh)
			if !slices.Equal(act(ab), want) {
				t.Errorf("%v·%v = %v does not act as %v after %v", a, b, ab, a, b)
			}
		}
		if len(row) != 8 {
			t.Errorf("row %v of the table has %d distinct entries, want 8", a, len(row))
		}
		if a.Mul(a.Inv()) != id || a.Inv().Mul(a) != id {
			t.Errorf("%v·%v ≠ e", a, a.Inv())
		}
		if !slices.Equal(hostT(t, a.Inverse(), act(a), sh), x) {
			t.Errorf("%v⁻¹ does not undo %v", a, a)
		}
	}
	// Associativity.
	for _, a := range group {
		for _, b := range group {
			for _, c := range group {
				if a.Mul(b).Mul(c) != a.Mul(b.Mul(c)) {
					t.Fatalf("(%v·%v)·%v ≠ %v·(%v·%v)", a, b, c, a, b, c)
				}
			}
		}
	}
	// The presentation ⟨r, m | r⁴ = m² = e, m r m = r⁻¹⟩, and five elements of order 2.
	r, m := layers.D4{Rot: 1}, layers.D4{Flip: true}
	if r.Mul(r).Mul(r).Mul(r) != id || m.Mul(m) != id || m.Mul(r).Mul(m) != r.Inv() {
		t.Errorf("D4 relations fail: r⁴ = %v, m² = %v, mrm = %v", r.Mul(r).Mul(r).Mul(r), m.Mul(m), m.Mul(r).Mul(m))
	}
	involutions := 0
	for _, a := range group {
		if a != id && a.Mul(a) == id {
			involutions++
		}
	}
	if involutions != 5 {
		t.Errorf("%d elements of order 2, want 5 (r² and four reflections)", involutions)
	}
}

func TestTranslationLaws(t *testing.T) {
	rng := rand.New(rand.NewPCG(22, 1))
	sh := []int{2, 1, 3, 5}
	x := randVals(rng, size(sh), -1, 1)
	ab := hostT(t, layers.Translation{DX: 2, DY: -1}, hostT(t, layers.Translation{DX: 2, DY: 4}, x, sh), sh)
	if !slices.Equal(ab, hostT(t, layers.Translation{DX: 4, DY: 3}, x, sh)) {
		t.Error("T(2,-1)·T(2,4) ≠ T(4,3)")
	}
	if !slices.Equal(hostT(t, layers.Translation{DX: 3, DY: 10}, x, sh), x) {
		t.Error("T(H, 2W) is not the identity")
	}
	g := layers.Translation{DX: 1, DY: 2}
	if !slices.Equal(hostT(t, g.Inverse(), hostT(t, g, x, sh), sh), x) {
		t.Error("T⁻¹T ≠ id")
	}
	// Conjugation: r T(dx, dy) r⁻¹ = T(−dy, dx) on a square lattice (r: out[i,j] = x[j, L−1−i]).
	sq := []int{1, 2, 4, 4}
	y := randVals(rng, size(sq), -1, 1)
	r := layers.D4{Rot: 1}
	lhs := hostT(t, layers.Sequence{r.Inverse(), layers.Translation{DX: 1, DY: 3}, r}, y, sq)
	if !slices.Equal(lhs, hostT(t, layers.Translation{DX: -3, DY: 1}, y, sq)) {
		t.Error("r T(1,3) r⁻¹ ≠ T(−3,1)")
	}
}

func TestLatticeTransformsHostEqualsGraph(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 1))
	var all []layers.LatticeTransform
	for _, d := range layers.D4Group() {
		all = append(all, d)
	}
	all = append(all, layers.Translation{DX: 1, DY: 3}, layers.Translation{DX: -5, DY: 0}, layers.SignFlip{},
		layers.Sequence{layers.D4{Rot: 1, Flip: true}, layers.Translation{DX: 2, DY: 1}, layers.SignFlip{}})
	for _, sh := range [][]int{{2, 3, 4, 4}, {3, 1, 5, 5}} {
		x := randVals(rng, size(sh), -1, 1)
		for _, g := range all {
			want := hostT(t, g, x, sh)
			for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
				got := evalNodes(t, dt, [][]int{sh}, [][]float64{x}, func(in []*G.Node) (*G.Node, error) { return g.Graph(in[0]) })
				tol := 0.0 // a permutation (and a negation) is exact in float64
				if dt == tensor.Float32 {
					tol = 1e-7 // one rounding of each input to float32, 2⁻²⁴ ≈ 6e-8
				}
				compareVals(t, got, want, tol)
			}
		}
		// The graph translation against the kit's Roll, an independent op.
		got := evalNodes(t, tensor.Float64, [][]int{sh}, [][]float64{x}, func(in []*G.Node) (*G.Node, error) {
			return layers.Translation{DX: 2, DY: -1}.Graph(in[0])
		})
		want := evalNodes(t, tensor.Float64, [][]int{sh}, [][]float64{x}, func(in []*G.Node) (*G.Node, error) {
			y, err := layers.Roll(in[0], 2, 2)
			if err != nil {
				return nil, err
			}
			return layers.Roll(y, 3, -1)
		})
		compareVals(t, got, want, 0)
	}
}

func TestLatticeTransformGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(24, 1))
	sh := []int{2, 1, 3, 3}
	x := randVals(rng, size(sh), -1, 1)
	g := layers.Sequence{layers.D4{Rot: 3, Flip: true}, layers.Translation{DX: 1, DY: 2}}
	build := func(gr *G.ExprGraph, in []*G.Node) (*G.Node, error) {
		y, err := g.Graph(in[0])
		if err != nil {
			return nil, err
		}
		return aliasLoss(gr, in[0], y, 51)
	}
	layerstest.GradCheck(t, [][]int{sh}, [][]float64{x}, build, gradTol)
	layerstest.SecondOrderCheck(t, [][]int{sh}, [][]float64{x}, [][]float64{randVals(rng, len(x), -1, 1)}, build, gradTol)
}

func TestLatticeTransformErrors(t *testing.T) {
	g := G.NewGraph()
	rect := G.NewTensor(g, tensor.Float64, 4, G.WithShape(1, 1, 2, 3), G.WithName("rect"))
	mat := G.NewTensor(g, tensor.Float64, 2, G.WithShape(2, 3), G.WithName("mat"))
	if _, err := (layers.D4{Rot: 1}).Graph(rect); err == nil || !strings.Contains(err.Error(), "square lattice, have 2×3") {
		t.Errorf("quarter turn of a rectangle: %v", err)
	}
	if _, err := (layers.Translation{DX: 1}).Graph(mat); err == nil || !strings.Contains(err.Error(), "want at least 4 dimensions") {
		t.Errorf("translation of a matrix: %v", err)
	}
	if _, err := (layers.D4{Rot: 3}).Host(iota(6), []int{1, 1, 2, 3}); err == nil {
		t.Error("quarter turn of a 2×3 host field: no error")
	}
	if _, err := (layers.Translation{}).Host(iota(5), []int{1, 1, 2, 3}); err == nil || !strings.Contains(err.Error(), "5 values") {
		t.Errorf("wrong size: %v", err)
	}
}

// graphFunc turns a graph builder into a layerstest.FieldFunc: each call builds and runs a float64 graph.
func graphFunc(f func(x *G.Node) (*G.Node, error)) layerstest.FieldFunc {
	return func(x []float64, shape []int) ([]float64, []int, error) {
		g := G.NewGraph()
		xn := G.NewTensor(g, tensor.Float64, len(shape), G.WithShape(shape...), G.WithName("x"), G.WithValue(layers.NewDense(tensor.Float64, shape, x)))
		y, err := f(xn)
		if err != nil {
			return nil, nil, err
		}
		m := layers.MustNewTapeMachine(g)
		defer m.Close()
		if err := m.RunAll(); err != nil {
			return nil, nil, err
		}
		return layers.Float64s(y.Value().(tensor.Tensor)), []int(y.Shape()), nil
	}
}

// lopsided is a deliberately non-symmetric local map: y = tanh(x + ½·(x shifted one column) + w ⊙ x)
// with a fixed position-dependent weight w. It is not translation-, rotation- or sign-equivariant.
func lopsided(x *G.Node) (*G.Node, error) {
	sh := x.Shape()
	per := size(sh[1:]) // the same weights for every sample: the map acts sample by sample
	wv := make([]float64, size(sh))
	for i := range wv {
		wv[i] = float64(i % per)
	}
	w := layers.NewDense(tensor.Float64, sh, wv)
	wn := G.NewConstant(w, G.In(x.Graph()), G.WithName(fmt.Sprintf("w%v", sh)))
	r, err := layers.Roll(x, 3, 1)
	if err != nil {
		return nil, err
	}
	if r, err = G.Mul(r, G.NewConstant(0.5)); err != nil {
		return nil, err
	}
	wx, err := G.HadamardProd(wn, x)
	if err != nil {
		return nil, err
	}
	if wx, err = G.Mul(wx, G.NewConstant(0.01)); err != nil {
		return nil, err
	}
	s, err := G.Add(x, r)
	if err != nil {
		return nil, err
	}
	if s, err = G.Add(s, wx); err != nil {
		return nil, err
	}
	if s, err = G.Add(s, G.NewConstant(0.3)); err != nil { // a shift breaks oddness
		return nil, err
	}
	return G.Tanh(s)
}

// Tolerance of the symmetrised checks: the |G| terms are summed in a different order for f(gx) and
// g f(x), a few float64 roundings of O(1) values: 1e-12.
const symTol = 1e-12

func TestSymmetrize(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 1))
	sh := []int{2, 2, 4, 4}
	x := randVals(rng, size(sh), -1, 1)
	plain := graphFunc(lopsided)
	d4 := graphFunc(func(x *G.Node) (*G.Node, error) { return layers.Symmetrize(x, layers.D4Transforms(), lopsided) })
	odd := graphFunc(func(x *G.Node) (*G.Node, error) { return layers.Symmetrize(x, layers.Z2Transforms(), lopsided) })
	for _, g := range []layers.LatticeTransform{layers.D4{Rot: 1}, layers.D4{Flip: true}, layers.D4{Rot: 3, Flip: true}, layers.SignFlip{}, layers.Translation{DX: 1}} {
		// The checker sees that the plain map is not equivariant…
		if len(layerstest.Failures(t, func(tb testing.TB) { layerstest.CheckEquivariance(tb, plain, x, sh, g, symTol) })) == 0 {
			t.Errorf("CheckEquivariance passes the lopsided map under %v", g)
		}
	}
	for _, g := range layers.D4Group()[1:] {
		layerstest.CheckEquivariance(t, d4, x, sh, g, symTol)
	}
	layerstest.CheckEquivariance(t, odd, x, sh, layers.SignFlip{}, symTol)
	// Symmetrising over D4 does not make a map odd or translation-equivariant.
	for _, g := range []layers.LatticeTransform{layers.SignFlip{}, layers.Translation{DY: 1}} {
		if len(layerstest.Failures(t, func(tb testing.TB) { layerstest.CheckEquivariance(tb, d4, x, sh, g, symTol) })) == 0 {
			t.Errorf("the D4-symmetrised map passes under %v", g)
		}
	}

	// The value against the host formula (1/8) Σ g⁻¹ f(g x).
	got, _, err := d4(x, sh)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float64, len(x))
	for _, g := range layers.D4Group() {
		y, _, err := plain(hostT(t, g, x, sh), sh)
		if err != nil {
			t.Fatal(err)
		}
		y = hostT(t, g.Inverse(), y, sh)
		for i := range want {
			want[i] += y[i] / 8
		}
	}
	compareVals(t, got, want, symTol)

	// Invariant outputs: a per-sample sum of the lopsided map becomes D4-invariant.
	energy := func(x *G.Node) (*G.Node, error) {
		y, err := lopsided(x)
		if err != nil {
			return nil, err
		}
		b := x.Shape()[0]
		r, err := layers.Reshape(y, b, size(x.Shape())/b)
		if err != nil {
			return nil, err
		}
		return layers.SumAxis(r, 1)
	}
	inv := graphFunc(func(x *G.Node) (*G.Node, error) { return layers.SymmetrizeInvariant(x, layers.D4Transforms(), energy) })
	for _, g := range layers.D4Group()[1:] {
		layerstest.CheckInvariance(t, inv, x, sh, g, symTol)
		if len(layerstest.Failures(t, func(tb testing.TB) { layerstest.CheckInvariance(tb, graphFunc(energy), x, sh, g, symTol) })) == 0 {
			t.Errorf("CheckInvariance passes the plain energy under %v", g)
		}
	}
}

func TestCheckEquivarianceRefusesTrivialInputs(t *testing.T) {
	sh := []int{1, 1, 3, 3}
	constant := make([]float64, 9)
	id := graphFunc(func(x *G.Node) (*G.Node, error) { return G.Tanh(x) })
	if len(layerstest.Failures(t, func(tb testing.TB) {
		layerstest.CheckEquivariance(tb, id, constant, sh, layers.Translation{DX: 1}, symTol)
	})) == 0 {
		t.Error("a translation-invariant input was accepted")
	}
	zero := graphFunc(func(x *G.Node) (*G.Node, error) { return G.Mul(x, G.NewConstant(0.0)) })
	if len(layerstest.Failures(t, func(tb testing.TB) {
		layerstest.CheckEquivariance(tb, zero, iota(9), sh, layers.Translation{DX: 1}, symTol)
	})) == 0 {
		t.Error("a network with a constant output was accepted")
	}
}

func TestSymmetrizeGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(26, 1))
	sh := []int{2, 1, 3, 3}
	x := randVals(rng, size(sh), -1, 1)
	build := func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
		y, err := layers.Symmetrize(in[0], layers.D4Transforms(), lopsided)
		if err != nil {
			return nil, err
		}
		return aliasLoss(g, in[0], y, 52)
	}
	layerstest.GradCheck(t, [][]int{sh}, [][]float64{x}, build, gradTol)
	layerstest.SecondOrderCheck(t, [][]int{sh}, [][]float64{x}, [][]float64{randVals(rng, len(x), -1, 1)}, build, gradTol)
}

func TestTransformDense(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		x := layers.NewDense(dt, []int{1, 1, 3, 3}, iota(9))
		y, err := layers.TransformDense(layers.D4{Rot: 1}, x)
		if err != nil {
			t.Fatal(err)
		}
		if y.Dtype() != dt || !slices.Equal(layers.Float64s(y), []float64{2, 5, 8, 1, 4, 7, 0, 3, 6}) {
			t.Errorf("%v: got %v %v", dt, y.Dtype(), layers.Float64s(y))
		}
		if !slices.Equal(layers.Float64s(x), iota(9)) {
			t.Errorf("%v: the input changed", dt)
		}
	}
}
