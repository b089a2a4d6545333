//go:build unix

package layers_test

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
)

var benchDtypes = []tensor.Dtype{tensor.Float32, tensor.Float64}

// cpuClock measures the process CPU time (user + system, GC included) over a benchmark loop and reports
// it as cpu-ns/op. On the shared development machine wall-clock ns/op varied 3× between runs under other
// users' load; CPU time per op is stable to a few percent, so compare cpu-ns/op.
type cpuClock struct{ start int64 }

func cpuNow() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func startCPU() cpuClock { return cpuClock{start: cpuNow()} }

func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(cpuNow()-c.start)/float64(b.N), "cpu-ns/op")
}

// opOf builds f(inputs) once and returns the node's op and input values, so the benchmark times Do alone
// (what the TapeMachine calls each step).
func opOf(b *testing.B, dt tensor.Dtype, shapes [][]int, f func(in []*G.Node) (*G.Node, error)) (G.Op, []G.Value) {
	b.Helper()
	g := G.NewGraph()
	rng := rand.New(rand.NewPCG(1, 1))
	var in []*G.Node
	var vals []G.Value
	for i, s := range shapes {
		t := layers.NewDense(dt, s, randVals(rng, size(s), -1, 1))
		in = append(in, G.NewTensor(g, dt, len(s), G.WithShape(s...), G.WithName(fmt.Sprintf("x%d", i)), G.WithValue(t)))
		vals = append(vals, t)
	}
	y, err := f(in)
	if err != nil {
		b.Fatal(err)
	}
	return y.Op(), vals
}

func benchDo(b *testing.B, op G.Op, vals []G.Value, elems int) {
	b.Helper()
	b.ReportAllocs()
	b.SetBytes(int64(elems) * 4) // nominal: elements moved × 4 bytes (compare within one dtype)
	b.ResetTimer()
	clk := startCPU()
	for i := 0; i < b.N; i++ {
		if _, err := op.Do(vals...); err != nil {
			b.Fatal(err)
		}
	}
	clk.report(b)
}

// The hierarchical block layer's case: a (256,1,16,16) field, all 64 2×2 blocks gathered into a
// (256·64, 4) matrix.
const bB, bC, bL, bK = 256, 1, 16, 2

func BenchmarkGather(b *testing.B) {
	idx := blockIndex(bB, bC, bL, bK)
	rows := bB * (bL / bK) * (bL / bK)
	for _, dt := range benchDtypes {
		b.Run(dt.String(), func(b *testing.B) {
			op, vals := opOf(b, dt, [][]int{{bB, bC, bL, bL}}, func(in []*G.Node) (*G.Node, error) {
				return layers.Gather(in[0], idx, rows, bC*bK*bK)
			})
			benchDo(b, op, vals, len(idx))
		})
	}
	// The feature-major layout BlockLayer uses: (C·k·k, B·blocks), the transpose of the above. Its index
	// list is not batch-periodic in the leading output index, so the map keeps one table entry per element.
	fm := featureMajor(idx, rows, bC*bK*bK)
	for _, dt := range benchDtypes {
		b.Run("featureMajor/"+dt.String(), func(b *testing.B) {
			op, vals := opOf(b, dt, [][]int{{bB, bC, bL, bL}}, func(in []*G.Node) (*G.Node, error) {
				return layers.Gather(in[0], fm, bC*bK*bK, rows)
			})
			benchDo(b, op, vals, len(idx))
		})
	}
}

// featureMajor transposes a (rows, dim) index list to (dim, rows).
func featureMajor(idx []int, rows, dim int) []int {
	out := make([]int, len(idx))
	for r := 0; r < rows; r++ {
		for d := 0; d < dim; d++ {
			out[d*rows+r] = idx[r*dim+d]
		}
	}
	return out
}

// BenchmarkGatherBackward times the gradient of the block gather (a scatter of the (16384,4) gradient).
func BenchmarkGatherBackward(b *testing.B) {
	idx := blockIndex(bB, bC, bL, bK)
	rows := bB * (bL / bK) * (bL / bK)
	for _, dt := range benchDtypes {
		b.Run(dt.String(), func(b *testing.B) {
			g := G.NewGraph()
			x := G.NewTensor(g, dt, 4, G.WithShape(bB, bC, bL, bL), G.WithName("x"))
			y, err := layers.Gather(x, idx, rows, bC*bK*bK)
			if err != nil {
				b.Fatal(err)
			}
			gn := G.NewTensor(g, dt, 2, G.WithShape(rows, bC*bK*bK), G.WithName("g"))
			back, err := y.Op().(G.SDOp).SymDiff(G.Nodes{x}, y, gn)
			if err != nil {
				b.Fatal(err)
			}
			gv := layers.NewDense(dt, []int{rows, bC * bK * bK}, randVals(rand.New(rand.NewPCG(2, 2)), len(idx), -1, 1))
			benchDo(b, back[0].Op(), []G.Value{gv}, len(idx))
		})
	}
}

func BenchmarkScatterReplace(b *testing.B) {
	all := blockIndex(bB, bC, bL, bK)
	var half []int // every other block: the checkerboard pattern of a hierarchy level
	for row := 0; row < len(all)/4; row++ {
		if row%2 == 0 {
			half = append(half, all[row*4:row*4+4]...)
		}
	}
	for _, c := range []struct {
		name string
		idx  []int
	}{{"all", all}, {"half", half}} {
		for _, dt := range benchDtypes {
			b.Run(c.name+"/"+dt.String(), func(b *testing.B) {
				op, vals := opOf(b, dt, [][]int{{bB, bC, bL, bL}, {len(c.idx) / 4, 4}}, func(in []*G.Node) (*G.Node, error) {
					return layers.ScatterReplace(in[0], in[1], c.idx)
				})
				benchDo(b, op, vals, bB*bC*bL*bL)
			})
		}
	}
}

func BenchmarkRoll(b *testing.B) {
	for _, axis := range []int{2, 3} {
		for _, dt := range benchDtypes {
			b.Run(fmt.Sprintf("axis%d/%v", axis, dt), func(b *testing.B) {
				op, vals := opOf(b, dt, [][]int{{bB, bC, bL, bL}}, func(in []*G.Node) (*G.Node, error) {
					return layers.Roll(in[0], axis, 1)
				})
				benchDo(b, op, vals, bB*bC*bL*bL)
			})
		}
	}
}

func BenchmarkReshape(b *testing.B) {
	for _, dt := range benchDtypes {
		b.Run(dt.String(), func(b *testing.B) {
			op, vals := opOf(b, dt, [][]int{{bB, bC, bL, bL}}, func(in []*G.Node) (*G.Node, error) {
				return layers.Reshape(in[0], bB, bC*bL*bL)
			})
			benchDo(b, op, vals, bB*bC*bL*bL)
		})
	}
}

func BenchmarkSwish(b *testing.B) {
	for _, dt := range benchDtypes {
		b.Run(dt.String(), func(b *testing.B) {
			op, vals := opOf(b, dt, [][]int{{256, 256}}, func(in []*G.Node) (*G.Node, error) { return layers.Swish(in[0]) })
			benchDo(b, op, vals, 256*256)
		})
	}
}
