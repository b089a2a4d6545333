package checkpoints

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sampleCheckpoint returns a checkpoint of step with a real PCG state, and the PCG it was taken from.
func sampleCheckpoint(t *testing.T, step int64) (*Checkpoint, *rand.PCG) {
	t.Helper()
	pcg := rand.NewPCG(1, uint64(step))
	rand.New(pcg).Float64() // advance, so the state is not just the seed
	state, err := pcg.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	w := []float32{1, 2, 3, 4, 5, 6, 7, float32(step)}
	return &Checkpoint{
		Step: step,
		Weights: []Array{
			{Name: "level0/disentangler/coupling3/s/w0", Shape: []int{2, 1, 2, 2}, Data: w},
			{Name: "prior/logscale", Shape: []int{}, Data: []float64{-0.25}},
		},
		Optim: []Array{
			{Name: "adam/m/prior/logscale", Shape: []int{}, Data: []float64{0.125}},
			{Name: "adam/step", Shape: []int{}, Data: []int64{step}},
		},
		Buffers: []Array{{Name: "actnorm/initialised", Shape: []int{}, Data: []uint8{1}}},
		EMA:     []Array{{Name: "level0/disentangler/coupling3/s/w0", Shape: []int{2, 1, 2, 2}, Data: append([]float32(nil), w...)}},
		RNG:     state,
		Config:  []byte(`{"lr": 0.001, "model": "rgflow"}`),
		Extra:   map[string]string{"data_position": fmt.Sprint(step * 64)},
	}, pcg
}

func equalCheckpoints(got, want *Checkpoint) string {
	switch {
	case got.Step != want.Step:
		return fmt.Sprintf("step %d, want %d", got.Step, want.Step)
	case !bytes.Equal(got.RNG, want.RNG):
		return "RNG state differs"
	case !bytes.Equal(got.Config, want.Config):
		return fmt.Sprintf("config %s, want %s", got.Config, want.Config)
	case !maps.Equal(got.Extra, want.Extra):
		return fmt.Sprintf("extra %v, want %v", got.Extra, want.Extra)
	}
	if d := equalArrays(got.Weights, sortedByName(want.Weights)); d != "" {
		return "weights: " + d
	}
	if d := equalArrays(got.Optim, sortedByName(want.Optim)); d != "" {
		return "optim: " + d
	}
	if d := equalArrays(got.Buffers, sortedByName(want.Buffers)); d != "" {
		return "buffers: " + d
	}
	if d := equalArrays(got.EMA, sortedByName(want.EMA)); d != "" {
		return "ema: " + d
	}
	return ""
}

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "checkpoints") // Save creates it
	c, pcg := sampleCheckpoint(t, 100)
	path, err := Save(dir, c)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "step-0000100.safetensors"); path != want {
		t.Errorf("path %s, want %s", path, want)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := equalCheckpoints(got, c); d != "" {
		t.Fatal(d)
	}
	// The restored RNG continues the same stream.
	restored := &rand.PCG{}
	if err := restored.UnmarshalBinary(got.RNG); err != nil {
		t.Fatal(err)
	}
	if a, b := rand.New(pcg).Uint64(), rand.New(restored).Uint64(); a != b {
		t.Errorf("restored RNG gives %d, want %d", b, a)
	}
	// The file is plain safetensors with the documented names and metadata.
	arrays, md, err := ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range arrays {
		names = append(names, a.Name)
	}
	wantNames := []string{"buffers/actnorm/initialised", "ema/level0/disentangler/coupling3/s/w0", "optim/adam/m/prior/logscale",
		"optim/adam/step", "weights/level0/disentangler/coupling3/s/w0", "weights/prior/logscale"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("tensors %q, want %q", names, wantNames)
	}
	if md["format_version"] != FormatVersion || md["step"] != "100" || md["config"] != string(c.Config) || md["extra/data_position"] != "6400" || md["rng"] == "" {
		t.Errorf("metadata %q", md)
	}

	// A minimal checkpoint (no optimiser state, RNG, config or extras) round-trips to nils.
	path, err = Save(dir, &Checkpoint{Step: 12345678, Weights: c.Weights[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "step-12345678.safetensors" {
		t.Errorf("path %s", path)
	}
	got, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Step != 12345678 || got.Optim != nil || got.RNG != nil || got.Config != nil || got.Extra != nil || len(got.Weights) != 1 {
		t.Errorf("minimal checkpoint read back as %+v", got)
	}
}

func TestSaveRejects(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		c    *Checkpoint
		want string
	}{
		{&Checkpoint{Step: -1}, "negative step -1"},
		{&Checkpoint{Config: []byte("{")}, "Config is not valid JSON"},
		{&Checkpoint{Weights: []Array{{Name: "", Data: []uint8{1}}}}, "weights/array with an empty name"},
		{&Checkpoint{Weights: []Array{{Name: "a", Shape: []int{2}, Data: []uint8{1}}}}, `array "weights/a": 1 elements of U8, want 2`},
		{&Checkpoint{Extra: map[string]string{"": "x"}}, "Extra has an empty key"},
	} {
		_, err := Save(dir, tc.c)
		wantErr(t, err, "checkpoints: "+dir, tc.want)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("rejected saves left %q", names)
	}
}

func TestLoadRejects(t *testing.T) {
	dir := t.TempDir()
	weights := []Array{{Name: "weights/a", Shape: []int{1}, Data: []float32{1}}}
	for i, tc := range []struct {
		name   string
		arrays []Array
		md     map[string]string
		want   string
	}{
		{"step-0000001.safetensors", weights, map[string]string{"format_version": "rgflow-ckpt-0", "step": "1"}, `checkpoint format "rgflow-ckpt-0", want "rgflow-ckpt-1"`},
		{"step-0000001.safetensors", weights, map[string]string{"step": "1"}, `metadata has no format_version, want "rgflow-ckpt-1"`},
		{"step-0000001.safetensors", weights, map[string]string{"format_version": FormatVersion}, "metadata has no step"},
		{"step-0000001.safetensors", weights, map[string]string{"format_version": FormatVersion, "step": "-1"}, `metadata step "-1" is not a non-negative integer`},
		{"step-0000002.safetensors", weights, map[string]string{"format_version": FormatVersion, "step": "1"}, "metadata step 1 does not match the file name"},
		{"step-0000001.safetensors", weights, map[string]string{"format_version": FormatVersion, "step": "1", "rng": "!!"}, "metadata rng is not valid base64"},
		{"step-0000001.safetensors", weights, map[string]string{"format_version": FormatVersion, "step": "1", "config": "{"}, "metadata config is not valid JSON"},
		{"step-0000001.safetensors", weights, map[string]string{"format_version": FormatVersion, "step": "1", "colour": "blue"}, `unknown metadata key "colour"`},
		{"step-0000001.safetensors", []Array{{Name: "a", Shape: []int{1}, Data: []float32{1}}}, map[string]string{"format_version": FormatVersion, "step": "1"}, `tensor "a": name must start with "weights/", "optim/", "buffers/" or "ema/"`},
	} {
		path := filepath.Join(dir, fmt.Sprint(i), tc.name)
		if err := os.Mkdir(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := WriteSafetensors(path, tc.arrays, tc.md); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		wantErr(t, err, "checkpoints: "+path+": ", tc.want)
	}
}

func TestFileName(t *testing.T) {
	for _, step := range []int64{0, 7, 100, 9999999, 10000000, 1 << 40} {
		name := FileName(step)
		if got, ok := parseFileName(name); !ok || got != step {
			t.Errorf("parseFileName(%q) = %d, %v", name, got, ok)
		}
	}
	if FileName(100) != "step-0000100.safetensors" {
		t.Errorf("FileName(100) = %q", FileName(100))
	}
	for _, name := range []string{"step-100.safetensors", "step-00000100.safetensors", "step-000010x.safetensors", "step-0000100.safetensors.tmp-1", ".step-0000100.safetensors.tmp-1", "step--000100.safetensors", "step-+000100.safetensors"} {
		if _, ok := parseFileName(name); ok {
			t.Errorf("parseFileName(%q) accepted", name)
		}
	}
}

// failAfter is a writer that fails after n bytes, like a full disk or a killed process.
type failAfter struct {
	w io.Writer
	n int
}

var errDiskFull = errors.New("injected: no space left on device")

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		k, _ := f.w.Write(p[:f.n])
		f.n = 0
		return k, errDiskFull
	}
	f.n -= len(p)
	return f.w.Write(p)
}

// TestInterruptedSave makes the writer fail at many points of a save, of a new step and over an existing step, and
// checks that the previous checkpoint stays Latest and intact and that no temporary file is left behind.
func TestInterruptedSave(t *testing.T) {
	dir := t.TempDir()
	c100, _ := sampleCheckpoint(t, 100)
	if _, err := Save(dir, c100); err != nil {
		t.Fatal(err)
	}
	before := dirNames(t, dir)
	c200, _ := sampleCheckpoint(t, 200)
	for _, c := range []*Checkpoint{c200, c100} {
		size, err := os.Stat(filepath.Join(dir, "step-0000100.safetensors")) // c200's file has the same size
		if err != nil {
			t.Fatal(err)
		}
		full := int(size.Size())
		for _, n := range []int{0, 7, 8, 100, full / 2, full - 1} {
			_, err := save(dir, c, func(w io.Writer) io.Writer { return &failAfter{w, n} })
			if !errors.Is(err, errDiskFull) {
				t.Fatalf("step %d, failing after %d bytes: error %v, want the injected one", c.Step, n, err)
			}
			wantErr(t, err, "step-"+fmt.Sprintf("%07d", c.Step)+".safetensors")
			if names := dirNames(t, dir); !slices.Equal(names, before) {
				t.Fatalf("after a failed save the directory holds %q, want %q", names, before)
			}
			path, got, skipped, err := Latest(dir)
			if err != nil || len(skipped) != 0 {
				t.Fatalf("Latest: %v (skipped %v)", err, skipped)
			}
			if filepath.Base(path) != "step-0000100.safetensors" {
				t.Fatalf("Latest is %s", path)
			}
			if d := equalCheckpoints(got, c100); d != "" {
				t.Fatalf("step 100 changed: %s", d)
			}
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.txt")
	if err := WriteFileAtomic(path, func(w io.Writer) error { _, err := io.WriteString(w, "hello"); return err }); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "hello" {
		t.Fatalf("read %q, %v", b, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode())
	}
	boom := errors.New("boom")
	err := WriteFileAtomic(path, func(w io.Writer) error {
		io.WriteString(w, strings.Repeat("x", 3<<20)) // more than the buffer, so the temp file has data
		return boom
	})
	if err != boom {
		t.Errorf("error %v, want the write func's own", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "hello" {
		t.Errorf("failed write changed the file to %d bytes", len(b))
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"out.txt"}) {
		t.Errorf("directory holds %q", names)
	}
	err = WriteFileAtomic(filepath.Join(dir, "missing", "x"), func(io.Writer) error { return nil })
	wantErr(t, err, "checkpoints: "+filepath.Join(dir, "missing", "x"))
}

// TestLatestSkipsCorrupt simulates files left by a crash: a truncated newest checkpoint (as if a partial file had
// been renamed into place), a garbage one, and a stale temporary file. Latest skips them, says why, and returns the
// newest good checkpoint.
func TestLatestSkipsCorrupt(t *testing.T) {
	dir := t.TempDir()
	var cs []*Checkpoint
	for _, step := range []int64{100, 200, 300} {
		c, _ := sampleCheckpoint(t, step)
		cs = append(cs, c)
		if _, err := Save(dir, c); err != nil {
			t.Fatal(err)
		}
	}
	p300 := filepath.Join(dir, "step-0000300.safetensors")
	full, _ := os.ReadFile(p300)
	writeFile(t, p300, full[:len(full)-5]) // cut inside the last tensor
	writeFile(t, filepath.Join(dir, "step-0000400.safetensors"), []byte("garbage"))
	writeFile(t, filepath.Join(dir, ".step-0000500.safetensors.tmp-123"), full[:50])
	writeFile(t, filepath.Join(dir, "notes.txt"), []byte("not a checkpoint"))

	path, c, skipped, err := Latest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "step-0000200.safetensors" {
		t.Errorf("Latest is %s, want step-0000200.safetensors", path)
	}
	if d := equalCheckpoints(c, cs[1]); d != "" {
		t.Error(d)
	}
	if len(skipped) != 2 {
		t.Fatalf("skipped %v, want 2 errors", skipped)
	}
	wantErr(t, skipped[0], "step-0000400.safetensors: truncated: 7 bytes")
	wantErr(t, skipped[1], "step-0000300.safetensors: ", "run past the end of the")
}

func TestLatestNone(t *testing.T) {
	dir := t.TempDir()
	_, _, _, err := Latest(dir)
	if !errors.Is(err, ErrNoCheckpoint) {
		t.Errorf("empty dir: %v, want ErrNoCheckpoint", err)
	}
	wantErr(t, err, dir, "no step-NNNNNNN.safetensors files")

	_, _, _, err = Latest(filepath.Join(dir, "missing"))
	if !errors.Is(err, ErrNoCheckpoint) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing dir: %v, want ErrNoCheckpoint and fs.ErrNotExist", err)
	}

	writeFile(t, filepath.Join(dir, "step-0000001.safetensors"), nil)
	writeFile(t, filepath.Join(dir, "step-0000002.safetensors"), []byte("\x02\x00\x00\x00\x00\x00\x00\x00{}"))
	_, c, skipped, err := Latest(dir)
	if !errors.Is(err, ErrNoCheckpoint) || c != nil || len(skipped) != 2 {
		t.Fatalf("all corrupt: %v, %v, skipped %v", err, c, skipped)
	}
	wantErr(t, err, "all 2 checkpoint files are invalid", "step-0000002.safetensors: metadata has no format_version", "step-0000001.safetensors: truncated: 0 bytes")
}

func TestPrune(t *testing.T) {
	dir := t.TempDir()
	for _, step := range []int64{5, 1, 7, 3, 2, 6, 4} {
		c, _ := sampleCheckpoint(t, step)
		if _, err := Save(dir, c); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, ".step-0000008.safetensors.tmp-999"), []byte("partial"))
	writeFile(t, filepath.Join(dir, "notes.txt"), nil)
	if err := Prune(dir, 3); err != nil {
		t.Fatal(err)
	}
	want := []string{"notes.txt", "step-0000005.safetensors", "step-0000006.safetensors", "step-0000007.safetensors"}
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("after Prune(3): %q, want %q", got, want)
	}
	if err := Prune(dir, 3); err != nil { // idempotent
		t.Fatal(err)
	}
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("after a second Prune(3): %q, want %q", got, want)
	}
	if err := Prune(dir, 1); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"notes.txt", "step-0000007.safetensors"}) {
		t.Errorf("after Prune(1): %q", got)
	}
	wantErr(t, Prune(dir, 0), "keep = 0, want ≥ 1")

	// A corrupt newest file does not count: the two newest good ones stay.
	c8, _ := sampleCheckpoint(t, 8)
	p8, _ := Save(dir, c8)
	writeFile(t, filepath.Join(dir, "step-0000009.safetensors"), []byte("garbage"))
	if err := Prune(dir, 2); err != nil {
		t.Fatal(err)
	}
	want = []string{"notes.txt", "step-0000007.safetensors", "step-0000008.safetensors", "step-0000009.safetensors"}
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("with a corrupt newest file, Prune(2) left %q, want %q", got, want)
	}
	if path, _, skipped, err := Latest(dir); err != nil || path != p8 || len(skipped) != 1 {
		t.Errorf("Latest after Prune: %s, %v, %v", path, skipped, err)
	}
}
