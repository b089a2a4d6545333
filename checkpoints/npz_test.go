package checkpoints

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
)

func TestNPZRoundTrip(t *testing.T) {
	path := tempPath(t, "a.npz")
	arrays := sampleArrays()
	if err := WriteNPZ(path, arrays); err != nil {
		t.Fatal(err)
	}
	got, err := ReadNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := equalArrays(got, arrays); d != "" { // archive order is kept
		t.Error(d)
	}
	// The same arrays give the same bytes.
	first, _ := os.ReadFile(path)
	if err := WriteNPZ(path, arrays); err != nil {
		t.Fatal(err)
	}
	if second, _ := os.ReadFile(path); !bytes.Equal(first, second) {
		t.Error("writing the same arrays twice gave different files")
	}
	// Members are stored (uncompressed), without data descriptors.
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.Method != zip.Store || f.Flags&0x8 != 0 {
			t.Errorf("member %s: method %d, flags %#x; want stored, no data descriptor", f.Name, f.Method, f.Flags)
		}
	}
}

// TestNPYHeaderGolden checks .npy preambles byte for byte against numpy's format (the strings are what numpy
// 1.24.2 np.save writes): magic \x93NUMPY, version 1.0, LE uint16 header length, the dict with keys sorted, then
// 21−len(str(shape[0])) spaces of growth room (none for 0-d), then spaces and '\n' up to a multiple of 64. E.g. for
// (2, 3): the dict is 59 bytes, + 20 growth spaces + '\n' = 80 = 0x50 bytes, 10+80 = 90, padded by 38 spaces to
// 128, so the length field is 118 = 'v' and there are 58 spaces in all.
func TestNPYHeaderGolden(t *testing.T) {
	for _, tc := range []struct {
		shape []int
		dt    dtype
		want  string
	}{
		{[]int{2, 3}, dtF32, "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + strings.Repeat(" ", 58) + "\n"},
		{[]int{}, dtU8, "\x93NUMPY\x01\x00v\x00{'descr': '|u1', 'fortran_order': False, 'shape': (), }" + strings.Repeat(" ", 62) + "\n"},
		{[]int{5}, dtI64, "\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }" + strings.Repeat(" ", 60) + "\n"},
		{[]int{1234567, 2, 3, 4}, dtF64, "\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (1234567, 2, 3, 4), }" + strings.Repeat(" ", 46) + "\n"},
		{[]int{7}, dtI32, "\x93NUMPY\x01\x00v\x00{'descr': '<i4', 'fortran_order': False, 'shape': (7,), }" + strings.Repeat(" ", 60) + "\n"},
	} {
		got, err := npyHeader(tc.shape, tc.dt)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("shape %v %s:\n got %q\nwant %q", tc.shape, tc.dt.npy, got, tc.want)
		}
		if len(got)%64 != 0 || got[len(got)-1] != '\n' {
			t.Errorf("shape %v: header is %d bytes, want a multiple of 64 ending in \\n", tc.shape, len(got))
		}
	}
}

func TestWriteNPZRejects(t *testing.T) {
	path := tempPath(t, "x.npz")
	err := WriteNPZ(path, []Array{{Name: "z", Shape: []int{2, 2}, Data: []float64{1, 2, 3}}})
	wantErr(t, err, "checkpoints: "+path+": ", `array "z": 3 elements of F64, want 4 for shape (2,2)`)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a rejected write left %s behind (%v)", path, err)
	}
}

// member is one raw zip member of a hand-built .npz.
type member struct {
	name    string
	data    []byte
	deflate bool
}

func rawNPZ(t testing.TB, members ...member) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) { return flate.NewWriter(w, 9) })
	for _, m := range members {
		method := zip.Store
		if m.deflate {
			method = zip.Deflate
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: m.name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(m.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// npy builds a v1.0 .npy file with a literal header dict (padded like numpy) and data.
func npy(dict string, data []byte) []byte {
	hlen := len(dict) + 1
	pad := 64 - (10+hlen)%64
	h := []byte("\x93NUMPY\x01\x00")
	h = append(h, byte(hlen+pad), byte((hlen+pad)>>8))
	h = append(h, dict...)
	h = append(h, bytes.Repeat([]byte{' '}, pad)...)
	h = append(h, '\n')
	return append(h, data...)
}

func validNPZ(t testing.TB) []byte {
	var b bytes.Buffer
	if err := encodeNPZ(&b, sampleArrays()); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// npzCorruptions is every kind of damage ReadNPZ must reject, with the message fragment it must give.
func npzCorruptions(t testing.TB) []corruptCase {
	valid := validNPZ(t)
	ok := npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", make([]byte, 8))
	dict := func(d string, data []byte) []byte { return rawNPZ(t, member{"a.npy", npy(d, data), false}) }
	badCRC := rawNPZ(t, member{"a.npy", ok, false})
	badCRC[bytes.Index(badCRC, ok)+len(ok)-1] ^= 1
	v4 := bytes.Clone(ok)
	v4[6] = 4
	return []corruptCase{
		{"empty file", nil, "too short for a zip archive"},
		{"not a zip", []byte(strings.Repeat("not a zip archive at all", 3)), "no zip end record"},
		{"truncated zip", valid[:len(valid)/2], "no zip end record at the end of the file (truncated"},
		{"trailing garbage", append(bytes.Clone(valid), "junk"...), "no zip end record"},
		{"bad CRC", badCRC, "checksum"},
		{"bad magic", rawNPZ(t, member{"a.npy", append([]byte("\x93NUMPX"), ok[6:]...), false}), `member "a.npy": bad magic "\x93NUMPX"`},
		{"bad version", rawNPZ(t, member{"a.npy", v4, false}), "unsupported .npy version 4.0"},
		{"short member", rawNPZ(t, member{"a.npy", ok[:7], false}), "too short for an .npy header"},
		{"header past member", rawNPZ(t, member{"a.npy", ok[:40], false}), "header length 118 runs past the end of the 40-byte member"},
		{"bad header dict", dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2,) ", make([]byte, 8)), "bad header dict"},
		{"not a dict", dict("[1, 2]", nil), `bad header dict "[1, 2]`},
		{"unknown key", dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", make([]byte, 8)), `unknown key "x"`},
		{"missing key", dict("{'descr': '<f4', 'shape': (2,), }", make([]byte, 8)), "want keys descr, fortran_order and shape"},
		{"duplicate key", dict("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", make([]byte, 8)), "duplicate key 'descr'"},
		{"text after dict", dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", make([]byte, 8)), "unexpected text after the dict"},
		{"not a tuple", dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", make([]byte, 8)), "(n) is not a tuple"},
		{"negative dim", dict("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", make([]byte, 8)), "want a non-negative integer dimension"},
		{"dim out of range", dict("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", nil), "dimension 99999999999999999999 out of range"},
		{"big-endian descr", dict("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", make([]byte, 8)), `unsupported descr ">f4"`},
		{"float16 descr", dict("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", make([]byte, 4)), `unsupported descr "<f2"`},
		{"fortran order", dict("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", make([]byte, 8)), "fortran_order True is not supported"},
		{"fortran not bool", dict("{'descr': '<f4', 'fortran_order': 1, 'shape': (2,), }", make([]byte, 8)), "want True or False"},
		{"truncated data", dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", make([]byte, 20)), "truncated data: 20 bytes, want 24 for <f4 (2,3)"},
		{"huge shape", dict("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000000000), }", make([]byte, 8)), "truncated data: 8 bytes, want 8000000000000000000 for <f8 (1000000000,1000000000)"},
		{"trailing data", dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", make([]byte, 9)), "1 trailing bytes"},
		{"not .npy", rawNPZ(t, member{"a.txt", ok, false}), `member "a.txt" is not NAME.npy`},
		{"non-UTF-8 name", rawNPZ(t, member{"\xff.npy", ok, false}), `member "\xff.npy": name is not valid UTF-8`},
		{"shape overflow", dict("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", nil), "shape (4294967296,4294967296) of <f4 is too large"},
		{"directory", rawNPZ(t, member{"dir/", nil, false}), `member "dir/" is not NAME.npy`},
		{"duplicate member", rawNPZ(t, member{"a.npy", ok, false}, member{"a.npy", ok, false}), `duplicate member "a.npy"`},
	}
}

// TestReadNPZCorrupt checks that every corruption fails with a clear message naming the file.
func TestReadNPZCorrupt(t *testing.T) {
	dir := t.TempDir()
	for i, tc := range npzCorruptions(t) {
		t.Run(tc.name, func(t *testing.T) {
			path := fmt.Sprintf("%s/case%02d.npz", dir, i)
			writeFile(t, path, tc.data)
			arrays, err := ReadNPZ(path)
			wantErr(t, err, "checkpoints: "+path+": ", tc.want)
			if arrays != nil {
				t.Errorf("got arrays %v along with the error", arrays)
			}
		})
	}
}

// TestReadNPZCompatible reads what numpy may write besides our own files: deflated members
// (np.savez_compressed) and .npy v2.0 headers.
func TestReadNPZCompatible(t *testing.T) {
	data := []byte{1, 0, 0, 0, 2, 0, 0, 0}
	v2 := npy("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", data)
	// Turn the v1.0 preamble (magic, 1, 0, u16 length) into v2.0 (magic, 2, 0, u32 length) keeping 64-alignment by
	// dropping two padding spaces.
	hlen := int(v2[8]) | int(v2[9])<<8
	v2 = append(append([]byte("\x93NUMPY\x02\x00"), byte(hlen-2), byte((hlen-2)>>8), 0, 0), v2[10:10+hlen-3]...)
	v2 = append(append(v2, '\n'), data...)
	path := tempPath(t, "c.npz")
	writeFile(t, path, rawNPZ(t,
		member{"d.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 1), }", make([]byte, 24)), true},
		member{"v2.npy", v2, false}))
	got, err := ReadNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Array{
		{Name: "d", Shape: []int{3, 1}, Data: []float64{0, 0, 0}},
		{Name: "v2", Shape: []int{2}, Data: []int32{1, 2}},
	}
	if d := equalArrays(got, want); d != "" {
		t.Error(d)
	}
}

// FuzzReadNPZ: the reader never panics, allocates in proportion to the input, and whatever it accepts round-trips
// through the writer unchanged. Each input is read both as an .npz and as the .npy member of a valid zip (so that
// mutations reach the .npy parser past the zip CRC). The seed corpus (valid files and every corruption, plus bare
// .npy files) runs with go test.
func FuzzReadNPZ(f *testing.F) {
	f.Add(validNPZ(f))
	f.Add(rawNPZ(f, member{"d.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 1), }", make([]byte, 24)), true}))
	for _, tc := range npzCorruptions(f) {
		f.Add(tc.data)
	}
	for _, a := range sampleArrays() {
		dt, _, _ := dataInfo(a.Data)
		b, err := appendNPY(nil, a.Shape, dt, a.Data)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkNPZ(t, data)
		checkNPZ(t, rawNPZ(t, member{"a.npy", data, false}))
	})
}

func checkNPZ(t *testing.T, data []byte) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	arrays, err := readNPZ(bytes.NewReader(data), int64(len(data)))
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20+2*maxDeflateRat*uint64(len(data)) {
		t.Fatalf("reading %d bytes allocated %d bytes", len(data), n)
	}
	if err != nil {
		if arrays != nil {
			t.Fatalf("arrays %v with error %v", arrays, err)
		}
		return
	}
	var b bytes.Buffer
	if err := encodeNPZ(&b, arrays); err != nil {
		t.Fatalf("accepted file does not re-encode: %v", err)
	}
	arrays2, err := readNPZ(bytes.NewReader(b.Bytes()), int64(b.Len()))
	if err != nil {
		t.Fatalf("re-encoded file does not read: %v", err)
	}
	if d := equalArrays(arrays2, arrays); d != "" {
		t.Fatalf("round trip changed the arrays: %s", d)
	}
}
