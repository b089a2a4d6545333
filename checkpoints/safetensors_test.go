package checkpoints

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"runtime"
	"strings"
	"testing"
)

func TestSafetensorsRoundTrip(t *testing.T) {
	path := tempPath(t, "a.safetensors")
	arrays := sampleArrays()
	md := map[string]string{"format_version": "x", "config": `{"a": "<&>"}`, "unicode": "φ ∂ 🙂", "": "empty key"}
	if err := WriteSafetensors(path, arrays, md); err != nil {
		t.Fatal(err)
	}
	got, gotMD, err := ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := equalArrays(got, sortedByName(arrays)); d != "" {
		t.Error(d)
	}
	if !maps.Equal(gotMD, md) {
		t.Errorf("metadata %q, want %q", gotMD, md)
	}

	// No arrays and no metadata is a valid file too.
	if err := WriteSafetensors(path, nil, nil); err != nil {
		t.Fatal(err)
	}
	got, gotMD, err = ReadSafetensors(path)
	if err != nil || len(got) != 0 || len(gotMD) != 0 {
		t.Errorf("empty file: got %v, %v, %v", got, gotMD, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "\x08\x00\x00\x00\x00\x00\x00\x00{}      " {
		t.Errorf("empty file is %q", b)
	}
}

// TestSafetensorsGolden checks the exact bytes of a tiny file against the format spec: u64 LE header length, then
// compact JSON with __metadata__ first and tensors sorted by name with contiguous offsets, padded with spaces to a
// multiple of 8, then the little-endian data.
func TestSafetensorsGolden(t *testing.T) {
	arrays := []Array{
		{Name: "b", Shape: []int{}, Data: []uint8{7}},            // given out of order: the file sorts by name
		{Name: "a", Shape: []int{2}, Data: []float32{1.0, -2.0}}, // 0x3f800000, 0xc0000000
	}
	// {"__metadata__":{"k":"v"},                                   26 bytes
	// "a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},        53 bytes
	// "b":{"dtype":"U8","shape":[],"data_offsets":[8,9]}}          51 bytes
	// = 130 bytes, padded with 6 spaces to 136 = 0x88.
	want := "\x88\x00\x00\x00\x00\x00\x00\x00" +
		`{"__metadata__":{"k":"v"},` +
		`"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},` +
		`"b":{"dtype":"U8","shape":[],"data_offsets":[8,9]}}` +
		"      " +
		"\x00\x00\x80\x3f" + "\x00\x00\x00\xc0" + "\x07"
	if len(want) != 8+136+9 {
		t.Fatalf("golden string has %d bytes, want 153", len(want))
	}
	path := tempPath(t, "golden.safetensors")
	if err := WriteSafetensors(path, arrays, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("file is\n%q\nwant\n%q", got, want)
	}
	back, md, err := ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := equalArrays(back, sortedByName(arrays)); d != "" || md["k"] != "v" {
		t.Errorf("read back: %s, metadata %v", d, md)
	}
}

func TestWriteSafetensorsRejects(t *testing.T) {
	path := tempPath(t, "x.safetensors")
	for _, tc := range []struct {
		arrays []Array
		md     map[string]string
		want   string
	}{
		{[]Array{{Name: "a", Shape: []int{2}, Data: []float32{1}}}, nil, `array "a": 1 elements of F32, want 2 for shape (2)`},
		{[]Array{{Name: "a", Shape: []int{-1}, Data: []float32{}}}, nil, `array "a": negative dimension`},
		{[]Array{{Name: "a", Data: []int16{1}}}, nil, `unsupported data type []int16`},
		{[]Array{{Name: "a", Data: []uint8{1}}, {Name: "a", Data: []uint8{1}}}, nil, `array "a": duplicate name`},
		{[]Array{{Name: "", Data: []uint8{1}}}, nil, `array 0: empty name`},
		{[]Array{{Name: "__metadata__", Data: []uint8{1}}}, nil, `reserved`},
		{nil, map[string]string{"k": "\xff"}, `not valid UTF-8`},
	} {
		err := WriteSafetensors(path, tc.arrays, tc.md)
		wantErr(t, err, "checkpoints: "+path+": ", tc.want)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a rejected write left %s behind (%v)", path, err)
	}
}

// rawST builds a safetensors file from a literal header (unpadded) and buffer.
func rawST(header string, buf []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), buf...)
}

func validST(t testing.TB) []byte {
	var b bytes.Buffer
	if err := encodeSafetensors(&b, sampleArrays(), map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type corruptCase struct {
	name string
	data []byte
	want string
}

// safetensorsCorruptions is every kind of damage the reader must reject, with the message fragment it must give.
func safetensorsCorruptions(t testing.TB) []corruptCase {
	valid := validST(t)
	buf16 := make([]byte, 16)
	f32 := func(shape string, b, e int) string {
		return fmt.Sprintf(`{"a":{"dtype":"F32","shape":%s,"data_offsets":[%d,%d]}}`, shape, b, e)
	}
	hugeLen := binary.LittleEndian.AppendUint64(nil, 1<<63)
	return []corruptCase{
		{"empty file", nil, "truncated: 0 bytes, want at least 8"},
		{"short file", []byte{1, 2, 3, 4, 5}, "truncated: 5 bytes"},
		{"header length beyond file", rawST(`{}`, nil)[:9], "header length 2 runs past the end of the 9-byte file"},
		{"header length 2^63", append(hugeLen, "{}"...), "header length 9223372036854775808 runs past the end"},
		{"header length 0", rawST("", nil), "header length 0, want at least 2"},
		{"truncated file", valid[:len(valid)-3], "run past the end of the"},
		{"truncated header", valid[:100], "runs past the end of the 100-byte file"},
		{"trailing garbage", append(bytes.Clone(valid), "junk"...), "4 trailing bytes"},
		{"not an object", rawST(`[1,2]`, nil), "does not start with '{'"},
		{"malformed JSON", rawST(`{"a":{"dtype":"F32",`, nil), "malformed JSON"},
		{"malformed JSON syntax", rawST(`{"a" 1}`, nil), "malformed JSON"},
		{"text after JSON", rawST(`{}x`, nil), `unexpected 'x' after the JSON object`},
		{"invalid UTF-8", rawST("{\"\xff\":1}", nil), "not valid UTF-8"},
		{"unknown dtype", rawST(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a": unsupported dtype "F16"`},
		{"dtype not a string", rawST(`{"a":{"dtype":4,"shape":[2],"data_offsets":[0,4]}}`, nil), `dtype: got number 4, want a string`},
		{"negative dim", rawST(f32("[-2,2]", 0, 16), buf16), `tensor "a": negative dimension -2`},
		{"fractional dim", rawST(f32("[2.5]", 0, 16), buf16), `shape: 2.5 is not a 64-bit integer`},
		{"dim overflow", rawST(f32("[4294967296,4294967296]", 0, 16), buf16), `shape (4294967296,4294967296) of F32 is too large`},
		{"duplicate names", rawST(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2}), `duplicate tensor name "a" in the header`},
		{"duplicate metadata key", rawST(`{"__metadata__":{"k":"1","k":"2"}}`, nil), `__metadata__: duplicate key "k"`},
		{"metadata not strings", rawST(`{"__metadata__":{"k":1}}`, nil), `__metadata__["k"]: got number 1, want a string`},
		{"empty name", rawST(`{"":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}`, []byte{1}), "empty name"},
		{"unknown tensor key", rawST(`{"a":{"dtype":"U8","shape":[],"data_offsets":[0,1],"x":1}}`, []byte{1}), `unknown key "x"`},
		{"missing data_offsets", rawST(`{"a":{"dtype":"U8","shape":[]}}`, nil), `tensor "a": missing data_offsets`},
		{"three offsets", rawST(`{"a":{"dtype":"U8","shape":[],"data_offsets":[0,1,2]}}`, []byte{1, 2}), "more than 2 entries"},
		{"negative offset", rawST(`{"a":{"dtype":"U8","shape":[],"data_offsets":[-1,0]}}`, []byte{1}), "negative data_offsets [-1, 0]"},
		{"offsets reversed", rawST(`{"a":{"dtype":"U8","shape":[],"data_offsets":[1,0]}}`, []byte{1}), "data_offsets [1, 0] end before they begin"},
		{"offsets out of range", rawST(f32("[2,2]", 0, 16), make([]byte, 12)), `data_offsets [0, 16] run past the end of the 12-byte data buffer`},
		{"size mismatch", rawST(f32("[2,2]", 0, 12), make([]byte, 12)), `tensor "a": data_offsets [0, 12] hold 12 bytes, want 16 for F32 (2,2)`},
		{"overlapping", rawST(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)), `tensor "b": data_offsets [4, 12] overlap tensor "a" [0, 8]`},
		{"gap", rawST(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, make([]byte, 12)), `tensor "b": data_offsets [8, 12] leave a gap of 4 unused bytes at buffer offset 4`},
		{"buffer not covered", rawST(f32("[1]", 0, 4), make([]byte, 12)), "8 trailing bytes: tensors cover 4 bytes of the 12-byte data buffer"},
	}
}

// TestReadSafetensorsCorrupt checks that every corruption fails with a clear message naming the file.
func TestReadSafetensorsCorrupt(t *testing.T) {
	dir := t.TempDir()
	for i, tc := range safetensorsCorruptions(t) {
		t.Run(tc.name, func(t *testing.T) {
			path := fmt.Sprintf("%s/case%02d.safetensors", dir, i)
			writeFile(t, path, tc.data)
			arrays, md, err := ReadSafetensors(path)
			wantErr(t, err, "checkpoints: "+path+": ", tc.want)
			if arrays != nil || md != nil {
				t.Errorf("got arrays %v and metadata %v along with the error", arrays, md)
			}
		})
	}
}

// TestReadSafetensorsHostileAllocation checks that a header claiming an enormous tensor in a tiny file is rejected
// without allocating anything like the claimed size.
func TestReadSafetensorsHostileAllocation(t *testing.T) {
	for _, header := range []string{
		`{"a":{"dtype":"F64","shape":[1099511627776],"data_offsets":[0,8796093022208]}}`,
		`{"a":{"dtype":"F64","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"U8","shape":[1000000000],"data_offsets":[0,1000000000]}}`,
	} {
		data := rawST(header, make([]byte, 64))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, err := readSafetensors(bytes.NewReader(data), int64(len(data)))
		runtime.ReadMemStats(&after)
		wantErr(t, err, "run past the end")
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Errorf("rejecting a %d-byte file allocated %d bytes", len(data), n)
		}
	}
}

// FuzzReadSafetensors: the reader never panics, allocates in proportion to the input, and whatever it accepts
// round-trips through the writer unchanged. The seed corpus (valid files and every corruption) runs with go test.
func FuzzReadSafetensors(f *testing.F) {
	f.Add(validST(f))
	for _, arrays := range [][]Array{nil, sampleArrays()[:1], sampleArrays()[4:]} {
		var b bytes.Buffer
		if err := encodeSafetensors(&b, arrays, nil); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	for _, tc := range safetensorsCorruptions(f) {
		f.Add(tc.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		arrays, md, err := readSafetensors(bytes.NewReader(data), int64(len(data)))
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20+64*uint64(len(data)) {
			t.Fatalf("reading %d bytes allocated %d bytes", len(data), n)
		}
		if err != nil {
			if !strings.Contains(err.Error(), " ") || arrays != nil || md != nil {
				t.Fatalf("bad failure: %v %v %v", arrays, md, err)
			}
			return
		}
		var b bytes.Buffer
		if err := encodeSafetensors(&b, arrays, md); err != nil {
			t.Fatalf("accepted file does not re-encode: %v", err)
		}
		arrays2, md2, err := readSafetensors(bytes.NewReader(b.Bytes()), int64(b.Len()))
		if err != nil {
			t.Fatalf("re-encoded file does not read: %v", err)
		}
		if d := equalArrays(arrays2, arrays); d != "" || !maps.Equal(md, md2) {
			t.Fatalf("round trip changed the file: %s; metadata %q -> %q", d, md, md2)
		}
	})
}
