package checkpoints

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	// metadataKey is the reserved safetensors header key of the string→string metadata map.
	metadataKey = "__metadata__"
	// maxHeaderLen is the reference implementation's limit on the JSON header (MAX_HEADER_SIZE).
	maxHeaderLen = 100_000_000
)

// WriteSafetensors writes arrays and metadata to path as a safetensors file, atomically (see WriteFileAtomic).
// Tensors are sorted by name and laid out contiguously in that order; the header is compact JSON padded with spaces
// to a multiple of 8 bytes. Names must be unique, non-empty and not "__metadata__"; metadata must be valid UTF-8.
func WriteSafetensors(path string, arrays []Array, metadata map[string]string) error {
	header, order, err := safetensorsHeader(arrays, metadata)
	if err != nil {
		return fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	return WriteFileAtomic(path, func(w io.Writer) error {
		if err := writeSafetensorsBody(w, header, arrays, order); err != nil {
			return fmt.Errorf("checkpoints: %s: %w", path, err)
		}
		return nil
	})
}

// encodeSafetensors writes a complete safetensors file to w.
func encodeSafetensors(w io.Writer, arrays []Array, metadata map[string]string) error {
	header, order, err := safetensorsHeader(arrays, metadata)
	if err != nil {
		return err
	}
	return writeSafetensorsBody(w, header, arrays, order)
}

// safetensorsHeader validates the input and returns the padded JSON header and the order (indices into arrays,
// sorted by name) in which the tensors are laid out.
func safetensorsHeader(arrays []Array, metadata map[string]string) ([]byte, []int, error) {
	dts, err := checkArrays(arrays)
	if err != nil {
		return nil, nil, err
	}
	order := make([]int, len(arrays))
	for i := range order {
		order[i] = i
		if arrays[i].Name == metadataKey {
			return nil, nil, fmt.Errorf("array name %q is reserved", metadataKey)
		}
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(arrays[a].Name, arrays[b].Name) })

	var h bytes.Buffer
	h.WriteByte('{')
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k, v := range metadata {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return nil, nil, fmt.Errorf("metadata %q: key or value is not valid UTF-8", k)
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		writeJSONString(&h, metadataKey)
		h.WriteString(":{")
		for i, k := range keys {
			if i > 0 {
				h.WriteByte(',')
			}
			writeJSONString(&h, k)
			h.WriteByte(':')
			writeJSONString(&h, metadata[k])
		}
		h.WriteByte('}')
	}
	var off int64
	for j, i := range order {
		a := arrays[i]
		if j > 0 || len(metadata) > 0 {
			h.WriteByte(',')
		}
		n, _ := numElements(a.Shape, 1<<62) // checked by checkArrays
		end := off + n*int64(dts[i].size)
		writeJSONString(&h, a.Name)
		h.WriteString(`:{"dtype":"`)
		h.WriteString(dts[i].st)
		h.WriteString(`","shape":[`)
		for k, d := range a.Shape {
			if k > 0 {
				h.WriteByte(',')
			}
			h.WriteString(strconv.Itoa(d))
		}
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	if h.Len() > maxHeaderLen {
		return nil, nil, fmt.Errorf("header of %d bytes exceeds the %d-byte limit of safetensors readers", h.Len(), maxHeaderLen)
	}
	return h.Bytes(), order, nil
}

// writeJSONString writes s as a JSON string without HTML escaping.
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic("checkpoints: encoding a string as JSON: " + err.Error()) // cannot happen for a string
	}
	b.Truncate(b.Len() - 1) // Encode appends '\n'
}

func writeSafetensorsBody(w io.Writer, header []byte, arrays []Array, order []int) error {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(header)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	if _, err := w.Write(header); err != nil {
		return err
	}
	var buf []byte
	for _, i := range order {
		buf = appendLE(buf[:0], arrays[i].Data)
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// ReadSafetensors reads a safetensors file written by WriteSafetensors or any conforming writer, restricted to the
// dtypes F32, F64, I64, I32 and U8. It validates the whole file (see the package doc) and returns the arrays sorted
// by name and the metadata (empty, not nil, when absent).
func ReadSafetensors(path string) (arrays []Array, metadata map[string]string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoints: %w", err)
	}
	defer f.Close() // read-only: a Close error cannot lose data
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoints: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("checkpoints: %s: not a regular file", path)
	}
	arrays, metadata, err = readSafetensors(f, st.Size())
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	return arrays, metadata, nil
}

// stEntry is one tensor of a parsed safetensors header.
type stEntry struct {
	name       string
	dt         dtype
	shape      []int
	begin, end int64
}

// readSafetensors parses and validates a safetensors file of the given size. Every allocation is bounded by size.
func readSafetensors(r io.ReaderAt, size int64) ([]Array, map[string]string, error) {
	entries, metadata, base, err := readSafetensorsHeader(r, size)
	if err != nil {
		return nil, nil, err
	}
	var maxBytes int64
	for _, e := range entries {
		maxBytes = max(maxBytes, e.end-e.begin)
	}
	scratch := make([]byte, maxBytes)
	arrays := make([]Array, len(entries))
	for i, e := range entries {
		b := scratch[:e.end-e.begin]
		if k, err := r.ReadAt(b, base+e.begin); k != len(b) {
			return nil, nil, fmt.Errorf("tensor %q: reading data: %w", e.name, err)
		}
		arrays[i] = Array{Name: e.name, Shape: e.shape, Data: decodeLE(e.dt, b)}
	}
	return arrays, metadata, nil
}

// readSafetensorsHeader reads and validates the header of a safetensors file of the given size, including that
// the tensors tile the data buffer exactly. It returns the tensors sorted by name, the metadata and the file offset
// of the data buffer.
func readSafetensorsHeader(r io.ReaderAt, size int64) ([]stEntry, map[string]string, int64, error) {
	if size < 8 {
		return nil, nil, 0, fmt.Errorf("truncated: %d bytes, want at least 8 for the header length", size)
	}
	var nb [8]byte
	if k, err := r.ReadAt(nb[:], 0); k != len(nb) {
		return nil, nil, 0, fmt.Errorf("reading header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(nb[:])
	if n > uint64(size-8) {
		return nil, nil, 0, fmt.Errorf("header length %d runs past the end of the %d-byte file (truncated, or not safetensors)", n, size)
	}
	if n > maxHeaderLen {
		return nil, nil, 0, fmt.Errorf("header length %d exceeds the %d-byte limit", n, maxHeaderLen)
	}
	if n < 2 {
		return nil, nil, 0, fmt.Errorf("header length %d, want at least 2 for a JSON object", n)
	}
	header := make([]byte, n)
	if k, err := r.ReadAt(header, 8); k != len(header) {
		return nil, nil, 0, fmt.Errorf("reading %d-byte header: %w", n, err)
	}
	bufLen := size - 8 - int64(n)
	entries, metadata, err := parseSafetensorsHeader(header, bufLen)
	if err != nil {
		return nil, nil, 0, err
	}

	// The offsets must tile [0, bufLen) exactly.
	byOffset := slices.Clone(entries)
	slices.SortStableFunc(byOffset, func(a, b stEntry) int {
		if a.begin != b.begin {
			return cmp.Compare(a.begin, b.begin)
		}
		return cmp.Compare(a.end, b.end)
	})
	var pos int64
	for i, e := range byOffset {
		switch {
		case e.begin < pos:
			p := byOffset[i-1]
			return nil, nil, 0, fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap tensor %q [%d, %d]", e.name, e.begin, e.end, p.name, p.begin, p.end)
		case e.begin > pos:
			return nil, nil, 0, fmt.Errorf("tensor %q: data_offsets [%d, %d] leave a gap of %d unused bytes at buffer offset %d", e.name, e.begin, e.end, e.begin-pos, pos)
		}
		pos = e.end
	}
	if pos != bufLen {
		return nil, nil, 0, fmt.Errorf("%d trailing bytes: tensors cover %d bytes of the %d-byte data buffer", bufLen-pos, pos, bufLen)
	}

	slices.SortFunc(entries, func(a, b stEntry) int { return strings.Compare(a.name, b.name) })
	return entries, metadata, 8 + int64(n), nil
}

// parseSafetensorsHeader parses the JSON header strictly (no duplicate or unknown keys, integer sizes) and checks
// each tensor's dtype, shape and offsets against the bufLen-byte data buffer.
func parseSafetensorsHeader(header []byte, bufLen int64) ([]stEntry, map[string]string, error) {
	if header[0] != '{' {
		return nil, nil, fmt.Errorf("header does not start with '{' (byte 8 is %q)", header[0])
	}
	if !utf8.Valid(header) {
		return nil, nil, errors.New("header is not valid UTF-8")
	}
	p := &jsonParser{dec: json.NewDecoder(bytes.NewReader(header))}
	p.dec.UseNumber()
	metadata := map[string]string{}
	var entries []stEntry
	seen := map[string]bool{}
	err := p.object(func(key string) error {
		if seen[key] {
			return fmt.Errorf("duplicate tensor name %q in the header", key)
		}
		seen[key] = true
		if key == metadataKey {
			return p.metadata(metadata)
		}
		if key == "" {
			return errors.New("tensor with an empty name")
		}
		e, err := p.tensorInfo(key, bufLen)
		if err != nil {
			return err
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	rest := header[p.dec.InputOffset():]
	if i := bytes.IndexFunc(rest, func(r rune) bool { return !strings.ContainsRune(" \t\r\n", r) }); i >= 0 {
		return nil, nil, fmt.Errorf("header: unexpected %q after the JSON object at header byte %d", rest[i], p.dec.InputOffset()+int64(i))
	}
	return entries, metadata, nil
}

// jsonParser reads JSON strictly through json.Decoder tokens, so that duplicate keys can be detected.
type jsonParser struct{ dec *json.Decoder }

func (p *jsonParser) token() (json.Token, error) {
	t, err := p.dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("malformed JSON header: unexpected end")
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("malformed JSON header at byte %d: %v", se.Offset, err)
		}
		return nil, fmt.Errorf("malformed JSON header: %v", err)
	}
	return t, nil
}

func describe(t json.Token) string {
	switch v := t.(type) {
	case json.Delim:
		return fmt.Sprintf("%q", string(v))
	case string:
		return fmt.Sprintf("string %q", v)
	case json.Number:
		return "number " + string(v)
	case nil:
		return "null"
	}
	return fmt.Sprint(t)
}

func (p *jsonParser) delim(want json.Delim) error {
	t, err := p.token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != want {
		return fmt.Errorf("got %s, want %q", describe(t), string(want))
	}
	return nil
}

// object reads a JSON object, calling field for each key with the decoder positioned at the value.
func (p *jsonParser) object(field func(key string) error) error {
	if err := p.delim('{'); err != nil {
		return err
	}
	for p.dec.More() {
		t, err := p.token()
		if err != nil {
			return err
		}
		key, ok := t.(string)
		if !ok {
			return fmt.Errorf("got %s, want an object key", describe(t))
		}
		if err := field(key); err != nil {
			return err
		}
	}
	return p.delim('}')
}

func (p *jsonParser) str(what string) (string, error) {
	t, err := p.token()
	if err != nil {
		return "", err
	}
	s, ok := t.(string)
	if !ok {
		return "", fmt.Errorf("%s: got %s, want a string", what, describe(t))
	}
	return s, nil
}

// ints reads an array of integers (at most maxLen of them).
func (p *jsonParser) ints(what string, maxLen int) ([]int64, error) {
	if err := p.delim('['); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	vs := []int64{}
	for p.dec.More() {
		t, err := p.token()
		if err != nil {
			return nil, err
		}
		num, ok := t.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s: got %s, want an integer", what, describe(t))
		}
		v, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %s is not a 64-bit integer", what, num)
		}
		if len(vs) == maxLen {
			return nil, fmt.Errorf("%s: more than %d entries", what, maxLen)
		}
		vs = append(vs, v)
	}
	if err := p.delim(']'); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return vs, nil
}

func (p *jsonParser) metadata(dst map[string]string) error {
	t, err := p.token()
	if err != nil {
		return err
	}
	if t == nil { // "__metadata__": null
		return nil
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("%s: got %s, want an object of strings", metadataKey, describe(t))
	}
	for p.dec.More() {
		k, err := p.str(metadataKey + " key")
		if err != nil {
			return err
		}
		if _, dup := dst[k]; dup {
			return fmt.Errorf("%s: duplicate key %q", metadataKey, k)
		}
		v, err := p.str(fmt.Sprintf("%s[%q]", metadataKey, k))
		if err != nil {
			return err
		}
		dst[k] = v
	}
	return p.delim('}')
}

func (p *jsonParser) tensorInfo(name string, bufLen int64) (stEntry, error) {
	e := stEntry{name: name}
	var dtName string
	var shape, offs []int64
	var haveDtype, haveShape, haveOffs bool
	err := p.object(func(key string) error {
		var err error
		switch key {
		case "dtype":
			if haveDtype {
				return errors.New(`duplicate key "dtype"`)
			}
			haveDtype = true
			dtName, err = p.str("dtype")
		case "shape":
			if haveShape {
				return errors.New(`duplicate key "shape"`)
			}
			haveShape = true
			shape, err = p.ints("shape", 1<<20)
		case "data_offsets":
			if haveOffs {
				return errors.New(`duplicate key "data_offsets"`)
			}
			haveOffs = true
			offs, err = p.ints("data_offsets", 2)
		default:
			err = fmt.Errorf("unknown key %q, want dtype, shape, data_offsets", key)
		}
		return err
	})
	if err != nil {
		return e, fmt.Errorf("tensor %q: %w", name, err)
	}
	switch {
	case !haveDtype:
		return e, fmt.Errorf("tensor %q: missing dtype", name)
	case !haveShape:
		return e, fmt.Errorf("tensor %q: missing shape", name)
	case !haveOffs:
		return e, fmt.Errorf("tensor %q: missing data_offsets", name)
	case len(offs) != 2:
		return e, fmt.Errorf("tensor %q: data_offsets has %d entries, want 2", name, len(offs))
	}
	var ok bool
	if e.dt, ok = dtypeBySafetensors(dtName); !ok {
		return e, fmt.Errorf("tensor %q: unsupported dtype %q, want F32, F64, I64, I32 or U8", name, dtName)
	}
	e.shape = make([]int, len(shape))
	for i, d := range shape {
		if d < 0 {
			return e, fmt.Errorf("tensor %q: negative dimension %d in shape %v", name, d, shape)
		}
		if int64(int(d)) != d {
			return e, fmt.Errorf("tensor %q: dimension %d does not fit in an int", name, d)
		}
		e.shape[i] = int(d)
	}
	e.begin, e.end = offs[0], offs[1]
	switch {
	case e.begin < 0 || e.end < 0:
		return e, fmt.Errorf("tensor %q: negative data_offsets [%d, %d]", name, e.begin, e.end)
	case e.begin > e.end:
		return e, fmt.Errorf("tensor %q: data_offsets [%d, %d] end before they begin", name, e.begin, e.end)
	case e.end > bufLen:
		return e, fmt.Errorf("tensor %q: data_offsets [%d, %d] run past the end of the %d-byte data buffer (truncated file?)", name, e.begin, e.end, bufLen)
	}
	elems, ok := numElements(e.shape, math.MaxInt64/int64(e.dt.size))
	if !ok {
		return e, fmt.Errorf("tensor %q: shape %s of %s is too large (more than 2^63 bytes)", name, shapeString(e.shape), e.dt.st)
	}
	if got, want := e.end-e.begin, elems*int64(e.dt.size); got != want {
		return e, fmt.Errorf("tensor %q: data_offsets [%d, %d] hold %d bytes, want %d for %s %s", name, e.begin, e.end, got, want, e.dt.st, shapeString(e.shape))
	}
	return e, nil
}
