package bulk

import (
	"math"
	"math/rand/v2"
	"testing"

	"rgflow/layers"
	"rgflow/models"
)

// Jacobian against central finite differences of the generation map, and MixLevels at both ends.
func TestJacobianFiniteDifferences(t *testing.T) {
	flow, store := testFlow(t, "neuralrg-small", 4, 0.3, 31)
	n := 16
	z := gauss(rand.New(rand.NewPCG(1, 1)), n, 1)
	J, err := Jacobian(flow, store, z, 5) // a chunk that does not divide n
	if err != nil {
		t.Fatal(err)
	}
	sm, err := models.NewSampler(flow, store, 2*n)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	const h = 1e-6
	zz := make([]float64, 0, 2*n*n)
	for i := range n {
		for _, sgn := range []float64{1, -1} {
			v := append([]float64(nil), z...)
			v[i] += sgn * h
			zz = append(zz, v...)
		}
	}
	x, _, err := sm.Decode(zz)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		for p := range n {
			fd := (x[(2*i)*n+p] - x[(2*i+1)*n+p]) / (2 * h)
			// Truncation O(h²) and rounding ~1e-16/h ~ 1e-10.
			if math.Abs(fd-J[p][i]) > 1e-6*(1+math.Abs(fd)) {
				t.Fatalf("∂x_%d/∂z_%d = %.10g, finite differences %.10g", p, i, J[p][i], fd)
			}
		}
	}
}

func TestMixLevelsEnds(t *testing.T) {
	h, _ := layers.NewHierarchy(8, 2)
	rng := rand.New(rand.NewPCG(2, 2))
	a, b := gauss(rng, 128, 1), gauss(rng, 128, 1)
	for cut, want := range map[int][]float64{0: a, h.Levels(): b} {
		m, err := MixLevels(h, 2, a, b, cut)
		if err != nil {
			t.Fatal(err)
		}
		for i := range m {
			if m[i] != want[i] {
				t.Fatalf("cut %d: value %d differs", cut, i)
			}
		}
	}
	// Cut 1: level-0 sites (an odd coordinate) from b, the rest from a; (1,0) is level 0, (2,2) level 1.
	m, _ := MixLevels(h, 2, a, b, 1)
	if m[1*8+0] != b[8] || m[2*8+2] != a[18] || m[64+1*8+0] != b[72] {
		t.Error("cut 1 mixes the wrong sites")
	}
	if _, err := MixLevels(h, 2, a, b[:64], 1); err == nil {
		t.Error("unequal lengths accepted")
	}
}
