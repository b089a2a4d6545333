package layerstest

import (
	"math"
	"slices"
	"testing"
)

// FieldTransform acts on host fields: a flat, row-major slice of the given shape in, a new slice of the
// same shape out. The lattice transforms of package layers (Translation, D4, SignFlip, Sequence) are
// FieldTransforms.
type FieldTransform interface {
	Host(x []float64, shape []int) ([]float64, error)
}

// FieldFunc evaluates a network on a host field x of the given shape and returns its output and the
// output's shape (typically by running a graph built for that shape).
type FieldFunc func(x []float64, shape []int) (y []float64, yShape []int, err error)

// CheckEquivariance checks f(g x) = g f(x) elementwise, |f(gx) − g f(x)| ≤ tol·max(1, |g f(x)|), for one
// input x. It refuses inputs that cannot show a violation: it fails if g leaves x unchanged, and if g
// leaves f(x) unchanged (then f(gx) = f(x) would pass for an invariant, non-equivariant f). Pick a generic
// x (random values, no symmetry of its own).
func CheckEquivariance(t testing.TB, f FieldFunc, x []float64, shape []int, g FieldTransform, tol float64) {
	t.Helper()
	gx, fx, fxShape := prepare(t, f, x, shape, g)
	if fx == nil {
		return
	}
	gfx, err := g.Host(fx, fxShape)
	if err != nil {
		t.Fatalf("layerstest: CheckEquivariance: transform of f(x): %v", err)
	}
	if maxDiff(gfx, fx) == 0 {
		t.Errorf("layerstest: CheckEquivariance: %v leaves f(x) unchanged, the check cannot fail (constant or symmetric output; is the network still at its initialisation?)", g)
		return
	}
	fgx, fgxShape, err := f(gx, shape)
	if err != nil {
		t.Fatalf("layerstest: CheckEquivariance: f(gx): %v", err)
	}
	if !slices.Equal(fgxShape, fxShape) {
		t.Fatalf("layerstest: CheckEquivariance: f(gx) has shape %v, f(x) %v", fgxShape, fxShape)
	}
	compareField(t, "f(gx) = g f(x)", g, fgx, gfx, tol)
}

// CheckInvariance checks f(g x) = f(x), with the same tolerance rule as CheckEquivariance; it fails if g
// leaves x unchanged.
func CheckInvariance(t testing.TB, f FieldFunc, x []float64, shape []int, g FieldTransform, tol float64) {
	t.Helper()
	gx, fx, fxShape := prepare(t, f, x, shape, g)
	if fx == nil {
		return
	}
	fgx, fgxShape, err := f(gx, shape)
	if err != nil {
		t.Fatalf("layerstest: CheckInvariance: f(gx): %v", err)
	}
	if !slices.Equal(fgxShape, fxShape) {
		t.Fatalf("layerstest: CheckInvariance: f(gx) has shape %v, f(x) %v", fgxShape, fxShape)
	}
	compareField(t, "f(gx) = f(x)", g, fgx, fx, tol)
}

func prepare(t testing.TB, f FieldFunc, x []float64, shape []int, g FieldTransform) (gx, fx []float64, fxShape []int) {
	t.Helper()
	gx, err := g.Host(x, shape)
	if err != nil {
		t.Fatalf("layerstest: transform of x: %v", err)
	}
	if maxDiff(gx, x) == 0 {
		t.Errorf("layerstest: %v leaves the input unchanged, the check cannot fail: use a generic input", g)
		return nil, nil, nil
	}
	fx, fxShape, err = f(x, shape)
	if err != nil {
		t.Fatalf("layerstest: f(x): %v", err)
	}
	return gx, fx, fxShape
}

func maxDiff(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

func compareField(t testing.TB, what string, g FieldTransform, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("layerstest: %s under %v: %d values, want %d", what, g, len(got), len(want))
	}
	worst, bad := 0.0, 0
	for i := range got {
		e := math.Abs(got[i]-want[i]) / math.Max(1, math.Abs(want[i]))
		if math.IsNaN(got[i]) || math.IsNaN(want[i]) {
			e = math.Inf(1)
		}
		worst = math.Max(worst, e)
		if e > tol {
			if bad < 5 {
				t.Errorf("layerstest: %s under %v: element %d: %.12g, want %.12g (rel err %.2g > %.2g)", what, g, i, got[i], want[i], e, tol)
			}
			bad++
		}
	}
	if bad > 5 {
		t.Errorf("layerstest: %s under %v: %d of %d elements off (worst rel err %.2g)", what, g, bad, len(got), worst)
	}
	t.Logf("layerstest: %s under %v: %d elements, worst rel err %.2g", what, g, len(got), worst)
}
