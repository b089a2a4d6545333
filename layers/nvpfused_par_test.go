package layers

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BenchmarkFusedNVPConcurrent runs the NeuralRG block bijector (fused, forward + backward, float32) on
// one goroutine and on two at once (each with its own graph, as two training workers do), at a small
// column count whose activations fit a core's L2 cache and at a large one whose activations stream
// through memory. cpu-ms/op is the process's CPU time per op and goroutine: if it grows from par=1 to
// par=2 at the large size but not at the small one, the cores contend for memory bandwidth.
func BenchmarkFusedNVPConcurrent(b *testing.B) {
	for _, n := range []int{256, 16384} {
		for _, par := range []int{1, 2} {
			b.Run(fmt.Sprintf("n=%d/par=%d", n, par), func(b *testing.B) {
				type job struct {
					m  G.VM
					xn *G.Node
					xv *tensor.Dense
				}
				jobs := make([]job, par)
				for w := range jobs {
					r := &RealNVP{Dim: 4, Couplings: 10,
						S: MLP{Hidden: []int{10, 10, 10}, Activation: "elu"},
						T: MLP{Hidden: []int{10, 10, 10}, Activation: "elu", ZeroLast: true}}
					mr := rand.New(rand.NewPCG(9, 9))
					for range 5 {
						r.Splits = append(r.Splits, RandomHalfSplit(mr, 4))
					}
					g := G.NewGraph()
					s := NewScope(g, NewStore(tensor.Float32, 1))
					xn := s.Input("x", 4, n)
					y, ld, _ := r.Inverse(s, xn)
					a, _ := G.Sum(y)
					c, _ := G.Sum(ld)
					loss, _ := G.Add(a, c)
					_, params := s.Params()
					if _, err := Grad(loss, params...); err != nil {
						b.Fatal(err)
					}
					jobs[w] = job{m: MustNewTapeMachine(g), xn: xn, xv: NewDense(tensor.Float32, []int{4, n}, nil)}
					defer jobs[w].m.Close()
				}
				iters := max(1, b.N*16384/n)
				b.ResetTimer()
				cpu0 := processCPU()
				var wg sync.WaitGroup
				for _, j := range jobs {
					wg.Go(func() {
						for range iters {
							G.Let(j.xn, j.xv)
							if err := j.m.RunAll(); err != nil {
								b.Error(err)
								return
							}
							j.m.Reset()
						}
					})
				}
				wg.Wait()
				cpu := processCPU() - cpu0
				b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(b.N*par), "cpu-ms/op")
			})
		}
	}
}
