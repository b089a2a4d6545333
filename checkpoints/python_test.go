package checkpoints

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// findNumpy returns a python3 that can import numpy: $RGFLOW_PYTHON, python3 on $PATH, or /usr/bin/python3 (a
// pyenv shim on $PATH may hide Debian's python3-numpy). The test that needs it skips when there is none.
func findNumpy(t *testing.T) string {
	t.Helper()
	var candidates []string
	if p := os.Getenv("RGFLOW_PYTHON"); p != "" {
		candidates = append(candidates, p)
	}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/bin/python3")
	for _, p := range candidates {
		if exec.Command(p, "-c", "import numpy").Run() == nil {
			return p
		}
	}
	t.Skip("no python3 with numpy (set RGFLOW_PYTHON to use one)")
	return ""
}

// pythonReader loads the .npz with np.load, the .safetensors with json + np.frombuffer (as the spec describes;
// the safetensors package itself is optional), and checks each .npy member against np.save's own bytes.
const pythonReader = `
import io, json, struct, sys, zipfile
import numpy as np

npz_path, st_path = sys.argv[1], sys.argv[2]

def describe(a):
    if a.dtype.kind == "f":  # exact bits, so that NaN payloads and -0 are checked too
        a2 = np.ascontiguousarray(a).ravel().view("<u%d" % a.itemsize)
    else:
        a2 = a.ravel()
    vals = [int(x) for x in a2.tolist()]
    return {"dtype": a.dtype.str, "shape": list(a.shape), "values": vals, "c": bool(a.flags.c_contiguous)}

out = {"npz": {}, "npy_bytes_equal": {}, "st": {}, "metadata": None}
with np.load(npz_path) as z:
    for k in z.files:
        a = z[k]
        out["npz"][k] = describe(a)
        b = io.BytesIO()
        np.save(b, a)
        with zipfile.ZipFile(npz_path) as zf:
            out["npy_bytes_equal"][k] = zf.read(k + ".npy") == b.getvalue()

dtypes = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4", "U8": "|u1"}
raw = open(st_path, "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + n])
buf = raw[8 + n:]
out["metadata"] = header.pop("__metadata__", None)
for k, info in header.items():
    b, e = info["data_offsets"]
    a = np.frombuffer(buf[b:e], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    out["st"][k] = describe(a)
try:
    from safetensors.numpy import load_file
    loaded = load_file(st_path)
    out["safetensors_package"] = {k: describe(v) for k, v in loaded.items()}
except ImportError:
    pass

# Files written by numpy, for the Go side to read: np.savez, np.savez_compressed, and a safetensors file laid out
# as the reference writer does (tensors ordered by alignment then name, compact JSON, header padded to 8 bytes).
out_dir = sys.argv[3]
gen = {
    "f4": (np.arange(24, dtype="<f4").reshape(2, 3, 1, 4) - np.float32(3.5)),
    "f8": np.array([np.pi, -np.inf, 1e-300], dtype="<f8"),
    "i8": np.array(-2**63, dtype="<i8"),
    "i4": np.array([[2**31 - 1, -1], [0, -2**31]], dtype="<i4"),
    "u1": np.array([0, 1, 255], dtype="u1"),
    "empty": np.zeros((0, 3), dtype="<f4"),
}
np.savez(out_dir + "/np.npz", **gen)
np.savez_compressed(out_dir + "/npc.npz", **gen)
names = {"<f4": "F32", "<f8": "F64", "<i8": "I64", "<i4": "I32", "|u1": "U8"}
hdr, bufs, off = {"__metadata__": {"source": "numpy"}}, [], 0
for k, a in sorted(gen.items(), key=lambda kv: (-kv[1].dtype.alignment, kv[0])):
    b = a.tobytes()
    hdr[k] = {"dtype": names[a.dtype.str], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
    bufs.append(b)
    off += len(b)
h = json.dumps(hdr, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
with open(out_dir + "/np.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(bufs))

json.dump(out, sys.stdout)
`

type pyArray struct {
	Dtype  string        `json:"dtype"`
	Shape  []int         `json:"shape"`
	Values []json.Number `json:"values"` // integers; the bits of floats
	C      bool          `json:"c"`
}

// TestNumpyInterop runs numpy on an .npz and a safetensors file written here, and reads files numpy writes. It
// skips without numpy.
func TestNumpyInterop(t *testing.T) {
	py := findNumpy(t)
	dir := t.TempDir()
	npzPath, stPath := filepath.Join(dir, "a.npz"), filepath.Join(dir, "a.safetensors")
	arrays := sampleArrays()
	md := map[string]string{"format_version": FormatVersion, "note": `quotes " and \ and φ`}
	if err := WriteNPZ(npzPath, arrays); err != nil {
		t.Fatal(err)
	}
	if err := WriteSafetensors(stPath, arrays, md); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", pythonReader, npzPath, stPath, dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", py, err)
	}
	var out struct {
		NPZ           map[string]pyArray `json:"npz"`
		NPYBytesEqual map[string]bool    `json:"npy_bytes_equal"`
		ST            map[string]pyArray `json:"st"`
		Metadata      map[string]string  `json:"metadata"`
		Package       map[string]pyArray `json:"safetensors_package"`
	}
	if err := json.Unmarshal(stdout, &out); err != nil {
		t.Fatalf("python output %q: %v", stdout, err)
	}
	check := func(what string, got map[string]pyArray) {
		if len(got) != len(arrays) {
			t.Errorf("%s: %d arrays, want %d", what, len(got), len(arrays))
		}
		for _, a := range arrays {
			g, ok := got[a.Name]
			if !ok {
				t.Errorf("%s: no array %q", what, a.Name)
				continue
			}
			dt, n, _ := dataInfo(a.Data)
			if g.Dtype != dt.npy || !slices.Equal(g.Shape, a.Shape) || len(g.Values) != n || !g.C {
				t.Errorf("%s %q: numpy sees %s %v (%d values, C order %v), want %s %v (%d)", what, a.Name, g.Dtype, g.Shape, len(g.Values), g.C, dt.npy, a.Shape, n)
				continue
			}
			for i := range n {
				if got, want := g.Values[i], valueAt(a.Data, i); got != want {
					t.Errorf("%s %q[%d]: numpy sees %q, want %q", what, a.Name, i, got, want)
				}
			}
		}
	}
	check("np.load(npz)", out.NPZ)
	for k, eq := range out.NPYBytesEqual {
		if !eq {
			t.Errorf("member %s.npy differs from np.save's bytes", k)
		}
	}
	check("safetensors via json+frombuffer", out.ST)
	if out.Package != nil {
		check("safetensors.numpy.load_file", out.Package)
	}
	if len(out.Metadata) != len(md) || out.Metadata["note"] != md["note"] {
		t.Errorf("metadata %q, want %q", out.Metadata, md)
	}

	// And we read what numpy wrote.
	f4 := make([]float32, 24)
	for i := range f4 {
		f4[i] = float32(i) - 3.5
	}
	gen := []Array{ // the arrays of the python script, in its (sorted keyword) order
		{Name: "empty", Shape: []int{0, 3}, Data: []float32{}},
		{Name: "f4", Shape: []int{2, 3, 1, 4}, Data: f4},
		{Name: "f8", Shape: []int{3}, Data: []float64{math.Pi, math.Inf(-1), 1e-300}},
		{Name: "i4", Shape: []int{2, 2}, Data: []int32{math.MaxInt32, -1, 0, math.MinInt32}},
		{Name: "i8", Shape: []int{}, Data: []int64{math.MinInt64}},
		{Name: "u1", Shape: []int{3}, Data: []uint8{0, 1, 255}},
	}
	for _, name := range []string{"np.npz", "npc.npz"} {
		got, err := ReadNPZ(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("reading numpy's file: %v", err)
			continue
		}
		if d := equalArrays(sortedByName(got), gen); d != "" {
			t.Errorf("numpy's %s: %s", name, d)
		}
	}
	got, gotMD, err := ReadSafetensors(filepath.Join(dir, "np.safetensors"))
	if err != nil {
		t.Fatalf("reading python's safetensors file: %v", err)
	}
	if d := equalArrays(got, gen); d != "" || gotMD["source"] != "numpy" {
		t.Errorf("python's safetensors file: %s; metadata %q", d, gotMD)
	}
}

// valueAt formats element i as the python script does: integers in decimal, floats as their IEEE bits in decimal.
func valueAt(data any, i int) json.Number {
	switch v := data.(type) {
	case []float32:
		return json.Number(strconv.FormatUint(uint64(math.Float32bits(v[i])), 10))
	case []float64:
		return json.Number(strconv.FormatUint(math.Float64bits(v[i]), 10))
	case []int64:
		return json.Number(strconv.FormatInt(v[i], 10))
	case []int32:
		return json.Number(strconv.FormatInt(int64(v[i]), 10))
	case []uint8:
		return json.Number(strconv.Itoa(int(v[i])))
	}
	panic("unsupported")
}
