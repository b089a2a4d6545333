package latticetest

import (
	"math"
	"testing"
)

// Checks with closed forms that need no matrix: ⟨M²⟩/V = 1/m² (the zero mode's variance times V, over V) and,
// at L = 2 where every site has its two neighbours twice, the eigenvalues of K are m² + {0, 4, 4, 8}.
func TestDenseFreeClosedForms(t *testing.T) {
	for _, m2 := range []float64{0.25, 0.5, 2} {
		f, err := DenseFree(4, m2)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(f.Chi-1/m2) > 1e-12/m2 { // rounding of a 16×16 inverse
			t.Errorf("m²=%v: χ = %v, want 1/m² = %v", m2, f.Chi, 1/m2)
		}
	}
	const m2 = 0.5
	f, err := DenseFree(2, m2)
	if err != nil {
		t.Fatal(err)
	}
	// At L = 2 the periodic Laplacian counts each neighbour twice: K has eigenvalues m² + 2·{0, 2, 2, 4}.
	want := 2*math.Log(2*math.Pi) - 0.5*(math.Log(m2)+2*math.Log(m2+4)+math.Log(m2+8))
	if math.Abs(f.LogZ-want) > 1e-12 {
		t.Errorf("L=2: ln Z = %.15g, want %.15g", f.LogZ, want)
	}
	if _, err := DenseFree(4, -1); err == nil {
		t.Error("m² = −1 accepted")
	}
}
