package checkpoints

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sampleArrays covers every dtype and 0-d, 1-d, 4-d and empty shapes, with awkward values (NaN payloads, ±Inf,
// −0, extreme integers).
func sampleArrays() []Array {
	f32 := make([]float32, 2*3*1*4)
	for i := range f32 {
		f32[i] = float32(i)*0.25 - 3
	}
	f32[1] = float32(math.Inf(-1))
	f32[2] = math.Float32frombits(0x7fc00123) // NaN with a payload: must survive bit for bit
	f32[3] = float32(math.Copysign(0, -1))
	return []Array{
		{Name: "z", Shape: []int{2, 3, 1, 4}, Data: f32},
		{Name: "f64/vec", Shape: []int{3}, Data: []float64{math.Pi, math.Inf(1), -1e-300}},
		{Name: "i64_scalar", Shape: []int{}, Data: []int64{math.MinInt64}},
		{Name: "i32", Shape: []int{2, 2}, Data: []int32{math.MaxInt32, -1, 0, math.MinInt32}},
		{Name: "u8", Shape: []int{5}, Data: []uint8{0, 1, 127, 128, 255}},
		{Name: "empty", Shape: []int{0, 3}, Data: []float32{}},
		{Name: "level0/disentangler/coupling3/s/w0", Shape: []int{1, 1, 1, 1}, Data: []float64{-0.5}},
	}
}

// equalArrays reports the first difference between two array lists, comparing data bit for bit; "" if equal.
func equalArrays(got, want []Array) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d arrays, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name {
			return fmt.Sprintf("array %d: name %q, want %q", i, g.Name, w.Name)
		}
		if !slices.Equal(g.Shape, w.Shape) {
			return fmt.Sprintf("array %q: shape %v, want %v", w.Name, g.Shape, w.Shape)
		}
		if fmt.Sprintf("%T", g.Data) != fmt.Sprintf("%T", w.Data) {
			return fmt.Sprintf("array %q: data %T, want %T", w.Name, g.Data, w.Data)
		}
		if g.Data == nil || !bytes.Equal(appendLE(nil, g.Data), appendLE(nil, w.Data)) {
			return fmt.Sprintf("array %q: data %v, want %v", w.Name, g.Data, w.Data)
		}
	}
	return ""
}

func sortedByName(arrays []Array) []Array {
	s := slices.Clone(arrays)
	slices.SortFunc(s, func(a, b Array) int { return strings.Compare(a.Name, b.Name) })
	return s
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// wantErr checks that err is non-nil and contains every fragment.
func wantErr(t *testing.T, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", fragments)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error %q does not contain %q", err, f)
		}
	}
}

func tempPath(t *testing.T, name string) string { return filepath.Join(t.TempDir(), name) }
