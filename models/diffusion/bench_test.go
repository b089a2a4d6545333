package diffusion

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkEulerMaruyama: 10 reverse-SDE steps on a batch of 100 free fields (L = 16 and 20, Carosso, exact
// score), through the position-space Score and through the mode-space fast path.
func BenchmarkEulerMaruyama(b *testing.B) {
	for _, L := range []int{16, 20} {
		l := mustLat(b, L)
		v0 := must[[]float64](b)(l.FreeVariance(0.5))
		sde := must[*Carosso](b)(NewCarosso(l, 2, 0, 1))
		free := must[*FreeScore](b)(NewFreeScore(sde, v0))
		prior := must[*Gaussian](b)(Prior(sde, v0))
		x0 := make([]float64, 100*l.V)
		prior.Sample(rand.New(rand.NewPCG(1, 1)), x0)
		for _, c := range []struct {
			name string
			sc   Score
		}{{"position", positionOnly{free}}, {"modes", free}} {
			b.Run(c.name+"/L="+string(rune('0'+L/10))+string(rune('0'+L%10)), func(b *testing.B) {
				x := make([]float64, len(x0))
				rng := rand.New(rand.NewPCG(2, 2))
				for b.Loop() {
					copy(x, x0)
					if _, err := EulerMaruyama(sde, c.sc, x, 10, 0.9, rng); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
