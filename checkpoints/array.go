package checkpoints

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Array is a named n-d array in C order. Data is []float32, []float64, []int64, []int32 or []uint8, of length
// Π Shape (1 for a 0-d array).
type Array struct {
	Name  string
	Shape []int
	Data  any
}

// dtype describes one supported element type.
type dtype struct {
	st   string // safetensors name
	npy  string // numpy descr
	size int    // bytes per element
}

var (
	dtF32 = dtype{"F32", "<f4", 4}
	dtF64 = dtype{"F64", "<f8", 8}
	dtI64 = dtype{"I64", "<i8", 8}
	dtI32 = dtype{"I32", "<i4", 4}
	dtU8  = dtype{"U8", "|u1", 1}
)

var dtypes = []dtype{dtF32, dtF64, dtI64, dtI32, dtU8}

func dtypeBySafetensors(s string) (dtype, bool) {
	for _, d := range dtypes {
		if d.st == s {
			return d, true
		}
	}
	return dtype{}, false
}

func dtypeByNPY(s string) (dtype, bool) {
	for _, d := range dtypes {
		if d.npy == s {
			return d, true
		}
	}
	return dtype{}, false
}

// dataInfo returns the dtype and element count of a supported Data slice.
func dataInfo(data any) (dtype, int, bool) {
	switch v := data.(type) {
	case []float32:
		return dtF32, len(v), true
	case []float64:
		return dtF64, len(v), true
	case []int64:
		return dtI64, len(v), true
	case []int32:
		return dtI32, len(v), true
	case []uint8:
		return dtU8, len(v), true
	}
	return dtype{}, 0, false
}

// shapeString formats a shape as (2,2), () for 0-d.
func shapeString(shape []int) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, d := range shape {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(d))
	}
	b.WriteByte(')')
	return b.String()
}

// numElements returns Π shape, or ok=false if a dim is negative or the product exceeds limit.
func numElements(shape []int, limit int64) (n int64, ok bool) {
	n = 1
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
	}
	for _, d := range shape {
		if d == 0 {
			return 0, true
		}
	}
	for _, d := range shape {
		if int64(d) > limit/n {
			return 0, false
		}
		n *= int64(d)
	}
	return n, true
}

// checkArrays validates arrays for writing: supported dtypes, non-negative shapes, matching lengths, and non-empty,
// valid UTF-8, unique names. It returns the dtype of each array.
func checkArrays(arrays []Array) ([]dtype, error) {
	dts := make([]dtype, len(arrays))
	seen := make(map[string]bool, len(arrays))
	for i, a := range arrays {
		if a.Name == "" {
			return nil, fmt.Errorf("array %d: empty name", i)
		}
		if !utf8.ValidString(a.Name) {
			return nil, fmt.Errorf("array %d: name %q is not valid UTF-8", i, a.Name)
		}
		if seen[a.Name] {
			return nil, fmt.Errorf("array %q: duplicate name", a.Name)
		}
		seen[a.Name] = true
		dt, n, ok := dataInfo(a.Data)
		if !ok {
			return nil, fmt.Errorf("array %q: unsupported data type %T, want []float32, []float64, []int64, []int32 or []uint8", a.Name, a.Data)
		}
		for _, d := range a.Shape {
			if d < 0 {
				return nil, fmt.Errorf("array %q: negative dimension in shape %s", a.Name, shapeString(a.Shape))
			}
		}
		want, ok := numElements(a.Shape, math.MaxInt64/int64(dt.size))
		if !ok {
			return nil, fmt.Errorf("array %q: shape %s is too large", a.Name, shapeString(a.Shape))
		}
		if int64(n) != want {
			return nil, fmt.Errorf("array %q: %d elements of %s, want %d for shape %s", a.Name, n, dt.st, want, shapeString(a.Shape))
		}
		dts[i] = dt
	}
	return dts, nil
}

// appendLE appends the little-endian bytes of a supported Data slice to dst.
func appendLE(dst []byte, data any) []byte {
	switch v := data.(type) {
	case []float32:
		for _, x := range v {
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(x))
		}
	case []float64:
		for _, x := range v {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(x))
		}
	case []int64:
		for _, x := range v {
			dst = binary.LittleEndian.AppendUint64(dst, uint64(x))
		}
	case []int32:
		for _, x := range v {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(x))
		}
	case []uint8:
		dst = append(dst, v...)
	default:
		panic(fmt.Sprintf("checkpoints: appendLE: unsupported %T", data))
	}
	return dst
}

// decodeLE decodes little-endian bytes (len(b) a multiple of dt.size) into a new slice of dt's Go type.
func decodeLE(dt dtype, b []byte) any {
	n := len(b) / dt.size
	switch dt {
	case dtF32:
		v := make([]float32, n)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return v
	case dtF64:
		v := make([]float64, n)
		for i := range v {
			v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
		return v
	case dtI64:
		v := make([]int64, n)
		for i := range v {
			v[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
		return v
	case dtI32:
		v := make([]int32, n)
		for i := range v {
			v[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return v
	case dtU8:
		return append(make([]uint8, 0, n), b...)
	}
	panic("checkpoints: decodeLE: unsupported dtype " + dt.st)
}
