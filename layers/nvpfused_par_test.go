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

// Every parameter gradient of a fused RealNVP is its slice of the backward op's packed vector
// (PackedGradient): after a run, packed[off : off+size] holds the same numbers as the slicing node, for
// every parameter, and the offsets tile the parameter part of the packed vector without gaps or overlaps.
// Nodes that are not such slices (the loss, an input, the packed node itself) are not reported as one.
func TestPackedGradient(t *testing.T) {
	r, _ := fusedPair(4)
	g := G.NewGraph()
	s := NewScope(g, NewStore(tensor.Float64, 3))
	n := 6
	xn := s.Input("x", 4, n)
	y, ld, err := r.Forward(s, xn)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := G.Sum(y)
	c, _ := G.Sum(ld)
	loss, _ := G.Add(a, c)
	names, params := s.Params()
	grads, err := Grad(loss, params...)
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]G.Value, len(grads))
	var packed *G.Node
	var packedVal G.Value
	offs := map[int]int{}
	for i, gn := range grads {
		G.Read(gn, &vals[i])
		pk, off, size, ok := PackedGradient(gn)
		if !ok {
			t.Fatalf("gradient of %s (%v) is not reported as a slice of a packed gradient", names[i], gn.Op())
		}
		if packed == nil {
			packed = pk
			G.Read(pk, &packedVal)
		} else if pk != packed {
			t.Fatalf("gradient of %s comes from another packed node", names[i])
		}
		if size != gn.Shape().TotalSize() {
			t.Errorf("%s: size %d, the node has %d values", names[i], size, gn.Shape().TotalSize())
		}
		offs[off] = size
	}
	for _, nd := range []*G.Node{loss, xn, packed} {
		if _, _, _, ok := PackedGradient(nd); ok {
			t.Errorf("%v is reported as a slice of a packed gradient", nd)
		}
	}
	// The parameters follow dx (4·n values) end to end.
	at := 4 * n
	for range offs {
		size, ok := offs[at]
		if !ok {
			t.Fatalf("no parameter slice starts at %d (offsets %v)", at, offs)
		}
		at += size
	}
	rng := rand.New(rand.NewPCG(4, 4))
	if err := G.Let(xn, NewDense(tensor.Float64, []int{4, n}, randVec(rng, 4*n))); err != nil {
		t.Fatal(err)
	}
	m := MustNewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	pv := packedVal.(*tensor.Dense).Float64s()
	if len(pv) != at {
		t.Fatalf("packed gradient has %d values, the slices cover %d", len(pv), at)
	}
	for i, gn := range grads {
		_, off, size, _ := PackedGradient(gn)
		got := vals[i].(*tensor.Dense).Float64s()
		for k := range size {
			if got[k] != pv[off+k] {
				t.Fatalf("%s[%d] = %v, packed[%d] = %v", names[i], k, got[k], off+k, pv[off+k])
			}
		}
	}
}
