package lattice

import (
	"math"
	"math/cmplx"
	"testing"
)

// naiveDFT2 is the unitary forward transform written out from its definition, O(V²).
func naiveDFT2(L int, x []complex128) []complex128 {
	out := make([]complex128, L*L)
	for kx := range L {
		for ky := range L {
			var s complex128
			for i := range L {
				for j := range L {
					s += x[i*L+j] * cmplx.Exp(complex(0, -2*math.Pi*float64(kx*i+ky*j)/float64(L)))
				}
			}
			out[kx*L+ky] = s / complex(float64(L), 0)
		}
	}
	return out
}

// TestFFT2 checks the unitary transform against the naive DFT, Parseval and the round trip, for powers of
// two (radix-2) and other sizes (mixed radix over 2, 3, 5, 7 and prime leaves). Tolerance 1e-12 absolute
// on O(1) entries: rounding of sums of ≤ 900 terms.
func TestFFT2(t *testing.T) {
	rng := ChainRand(5, 0)
	for _, L := range []int{1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 30} {
		f, err := NewFFT2(L)
		if err != nil {
			t.Fatal(err)
		}
		x := make([]complex128, L*L)
		var n2 float64
		for i := range x {
			x[i] = complex(rng.NormFloat64(), rng.NormFloat64())
			n2 += real(x[i])*real(x[i]) + imag(x[i])*imag(x[i])
		}
		want := naiveDFT2(L, x)
		a := append([]complex128(nil), x...)
		f.Forward(a)
		var m2 float64
		for i := range a {
			if d := cmplx.Abs(a[i] - want[i]); d > 1e-12 {
				t.Fatalf("L=%d: Forward[%d] = %v, naive %v", L, i, a[i], want[i])
			}
			m2 += real(a[i])*real(a[i]) + imag(a[i])*imag(a[i])
		}
		if math.Abs(m2-n2) > 1e-12*n2 {
			t.Errorf("L=%d: Parseval: Σ|φ̃|² = %v, Σ|φ|² = %v", L, m2, n2)
		}
		f.Inverse(a)
		for i := range a {
			if d := cmplx.Abs(a[i] - x[i]); d > 1e-12 {
				t.Fatalf("L=%d: Inverse(Forward(x))[%d] = %v, want %v", L, i, a[i], x[i])
			}
		}
	}
	if _, err := NewFFT2(0); err == nil {
		t.Error("NewFFT2(0): no error")
	}
}

func BenchmarkFFT2(b *testing.B) {
	for _, L := range []int{16, 20, 32, 64} {
		b.Run("L="+itoa(L), func(b *testing.B) {
			f, _ := NewFFT2(L)
			a := make([]complex128, L*L)
			for i := range a {
				a[i] = complex(float64(i%7), 1)
			}
			b.ReportAllocs()
			for b.Loop() {
				f.Forward(a)
			}
		})
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
