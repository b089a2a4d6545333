package layers

import (
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestStoreFreeze(t *testing.T) {
	s := NewStore(tensor.Float64, 0)
	s.Param("flow/a", []int{2}, Zeros)
	s.Param("flow/sub/b", []int{2}, Zeros)
	s.Param("latent/z", []int{2}, Zeros)
	s.Param("flowx", []int{2}, Zeros)
	if err := s.Freeze("flow/"); err != nil {
		t.Fatal(err)
	}
	s.Param("flow/late", []int{1}, Zeros) // created after the freeze, under the prefix
	for name, want := range map[string]bool{"flow/a": true, "flow/sub/b": true, "flow/late": true, "latent/z": false, "flowx": false} {
		if s.Frozen(name) != want {
			t.Errorf("Frozen(%q) = %v, want %v", name, !want, want)
		}
	}
	if got := s.FrozenNames(); !slices.Equal(got, []string{"flow/a", "flow/late", "flow/sub/b"}) {
		t.Errorf("FrozenNames = %q", got)
	}
	if err := s.Freeze("latent/z"); err != nil || !s.Frozen("latent/z") {
		t.Errorf("Freeze of an exact name: %v", err)
	}
	for _, bad := range []string{"", "/", "nope"} {
		if err := s.Freeze(bad); err == nil {
			t.Errorf("Freeze(%q) accepted", bad)
		}
	}
}

func TestStoreBuffers(t *testing.T) {
	s := NewStore(tensor.Float32, 0)
	g := G.NewGraph()
	sc := NewScope(g, s).Sub("stats")
	n := sc.Buffer("mean", []int{2}, []float64{1, 2})
	if n2 := sc.Buffer("mean", []int{2}, nil); n2 != n {
		t.Error("a second Scope.Buffer made a new node")
	}
	b, ok := s.GetBuffer("stats/mean")
	if !ok || n.Value() != G.Value(b) || !slices.Equal(Float64s(b), []float64{1, 2}) {
		t.Fatalf("buffer %v %v, node value %v", ok, b, n.Value())
	}
	if names, _ := sc.Params(); len(names) != 0 || s.Len() != 0 {
		t.Errorf("a buffer is listed as a parameter: %q, store has %d parameters", names, s.Len())
	}
	if err := s.SetBuffer("stats/mean", []int{2}, []float64{3, 4}); err != nil || !slices.Equal(Float64s(b), []float64{3, 4}) {
		t.Errorf("SetBuffer: %v, %v", err, Float64s(b))
	}
	for _, bad := range []func() error{
		func() error { return s.SetBuffer("stats/mean", []int{3}, []float64{1, 2, 3}) },
		func() error { return s.SetBuffer("nope", []int{1}, []float64{1}) },
	} {
		if err := bad(); err == nil {
			t.Error("SetBuffer accepted a bad call")
		}
	}
	if got := s.BufferNames(); !slices.Equal(got, []string{"stats/mean"}) {
		t.Errorf("BufferNames = %q", got)
	}
	// One name space: a parameter name cannot become a buffer and the reverse.
	s.Param("w", []int{1}, Zeros)
	for what, f := range map[string]func(){
		"buffer over a parameter": func() { s.Buffer("w", []int{1}, nil) },
		"parameter over a buffer": func() { NewScope(G.NewGraph(), s).Param("stats/mean", []int{2}, Zeros) },
		"buffer shape mismatch":   func() { s.Buffer("stats/mean", []int{3}, nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", what)
				}
			}()
			f()
		}()
	}
}
