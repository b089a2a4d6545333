package checkpoints

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	npyMagic      = "\x93NUMPY"
	npyAlign      = 64 // numpy's ARRAY_ALIGN
	npyGrowthPad  = 21 // numpy's GROWTH_AXIS_MAX_DIGITS
	maxDeflateRat = 1032
)

// zipTime is the modification time of every member, so that equal arrays give byte-identical files.
var zipTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// WriteNPZ writes arrays to path as an uncompressed .npz, atomically (see WriteFileAtomic). Array NAME becomes
// member NAME.npy; Python reads it with np.load(path)["NAME"].
func WriteNPZ(path string, arrays []Array) error {
	if _, err := checkArrays(arrays); err != nil {
		return fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	return WriteFileAtomic(path, func(w io.Writer) error {
		if err := encodeNPZ(w, arrays); err != nil {
			return fmt.Errorf("checkpoints: %s: %w", path, err)
		}
		return nil
	})
}

// encodeNPZ writes a complete .npz to w.
func encodeNPZ(w io.Writer, arrays []Array) error {
	dts, err := checkArrays(arrays)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(w)
	var buf []byte
	for i, a := range arrays {
		buf, err = appendNPY(buf[:0], a.Shape, dts[i], a.Data)
		if err != nil {
			return fmt.Errorf("array %q: %w", a.Name, err)
		}
		fh := &zip.FileHeader{
			Name:               a.Name + ".npy",
			Method:             zip.Store,
			Modified:           zipTime,
			CRC32:              crc32.ChecksumIEEE(buf),
			CompressedSize64:   uint64(len(buf)),
			UncompressedSize64: uint64(len(buf)),
		}
		if !isASCII(fh.Name) {
			fh.Flags |= 0x800 // name is UTF-8
		}
		fw, err := zw.CreateRaw(fh)
		if err != nil {
			return fmt.Errorf("array %q: %w", a.Name, err)
		}
		if _, err := fw.Write(buf); err != nil {
			return err
		}
	}
	return zw.Close()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// npyHeader returns the .npy preamble (magic, version, header length, header dict, padding, '\n') exactly as
// numpy ≥ 1.24 np.save writes it: version 1.0 unless the header needs more than 65535 bytes, then 2.0.
func npyHeader(shape []int, dt dtype) ([]byte, error) {
	var d strings.Builder
	d.WriteString("{'descr': '")
	d.WriteString(dt.npy)
	d.WriteString("', 'fortran_order': False, 'shape': (")
	for i, n := range shape {
		if i > 0 {
			d.WriteString(", ")
		}
		d.WriteString(strconv.Itoa(n))
	}
	if len(shape) == 1 {
		d.WriteByte(',')
	}
	d.WriteString("), }")
	if len(shape) > 0 { // room to grow the first axis in place
		d.WriteString(strings.Repeat(" ", max(0, npyGrowthPad-len(strconv.Itoa(shape[0])))))
	}
	dict := d.String()
	hlen := len(dict) + 1 // + '\n'
	for _, v := range []struct {
		major byte
		size  int // bytes of the header-length field
		limit int
	}{{1, 2, 1<<16 - 1}, {2, 4, 1<<32 - 1}} {
		pad := npyAlign - (len(npyMagic)+2+v.size+hlen)%npyAlign
		if hlen+pad > v.limit {
			continue
		}
		b := make([]byte, 0, len(npyMagic)+2+v.size+hlen+pad)
		b = append(b, npyMagic...)
		b = append(b, v.major, 0)
		if v.size == 2 {
			b = binary.LittleEndian.AppendUint16(b, uint16(hlen+pad))
		} else {
			b = binary.LittleEndian.AppendUint32(b, uint32(hlen+pad))
		}
		b = append(b, dict...)
		b = append(b, bytes.Repeat([]byte{' '}, pad)...)
		return append(b, '\n'), nil
	}
	return nil, fmt.Errorf("shape %s: .npy header too long", shapeString(shape))
}

// appendNPY appends a complete .npy file for data to dst.
func appendNPY(dst []byte, shape []int, dt dtype, data any) ([]byte, error) {
	h, err := npyHeader(shape, dt)
	if err != nil {
		return dst, err
	}
	return appendLE(append(dst, h...), data), nil
}

// ReadNPZ reads an .npz written by WriteNPZ or numpy (np.savez, np.savez_compressed) restricted to the dtypes
// <f4, <f8, <i8, <i4 and |u1 in C order, validating every member. Arrays are returned in archive order.
func ReadNPZ(path string) ([]Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	defer f.Close() // read-only: a Close error cannot lose data
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("checkpoints: %s: not a regular file", path)
	}
	arrays, err := readNPZ(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	return arrays, nil
}

// readNPZ parses and validates an .npz of the given size. Every allocation is bounded by a small multiple of size
// (at most maxDeflateRat times for deflated members).
func readNPZ(r io.ReaderAt, size int64) ([]Array, error) {
	if err := checkZipEnd(r, size); err != nil {
		return nil, err
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("not a valid zip archive: %w", err)
	}
	arrays := make([]Array, 0, len(zr.File))
	seen := make(map[string]bool, len(zr.File))
	for _, f := range zr.File {
		name, ok := strings.CutSuffix(f.Name, ".npy")
		if !ok || name == "" {
			return nil, fmt.Errorf("member %q is not NAME.npy", f.Name)
		}
		if !utf8.ValidString(name) {
			return nil, fmt.Errorf("member %q: name is not valid UTF-8", f.Name)
		}
		if seen[name] {
			return nil, fmt.Errorf("duplicate member %q", f.Name)
		}
		seen[name] = true
		a, err := readNPZMember(f, name, size)
		if err != nil {
			return nil, fmt.Errorf("member %q: %w", f.Name, err)
		}
		arrays = append(arrays, a)
	}
	return arrays, nil
}

// checkZipEnd checks that the file ends exactly with a zip end-of-central-directory record (and its comment), so
// that trailing garbage is rejected.
func checkZipEnd(r io.ReaderAt, size int64) error {
	const eocdLen = 22
	if size < eocdLen {
		return fmt.Errorf("truncated: %d bytes is too short for a zip archive", size)
	}
	n := min(size, eocdLen+1<<16-1)
	tail := make([]byte, n)
	if k, err := r.ReadAt(tail, size-n); k != len(tail) {
		return fmt.Errorf("reading the zip end record: %w", err)
	}
	for i := len(tail) - eocdLen; i >= 0; i-- {
		if string(tail[i:i+4]) == "PK\x05\x06" {
			comment := int(binary.LittleEndian.Uint16(tail[i+20:]))
			if i+eocdLen+comment == len(tail) {
				return nil
			}
		}
	}
	return errors.New("no zip end record at the end of the file (truncated, trailing bytes, or not an .npz)")
}

func readNPZMember(f *zip.File, name string, fileSize int64) (Array, error) {
	switch f.Method {
	case zip.Store:
		if f.CompressedSize64 != f.UncompressedSize64 {
			return Array{}, fmt.Errorf("stored member with compressed size %d != size %d", f.CompressedSize64, f.UncompressedSize64)
		}
	case zip.Deflate:
		if f.UncompressedSize64 > maxDeflateRat*f.CompressedSize64+64 {
			return Array{}, fmt.Errorf("deflated size %d is impossible for %d compressed bytes", f.UncompressedSize64, f.CompressedSize64)
		}
	default:
		return Array{}, fmt.Errorf("unsupported compression method %d, want 0 (stored) or 8 (deflate)", f.Method)
	}
	off, err := f.DataOffset()
	if err != nil {
		return Array{}, err
	}
	if off < 0 || f.CompressedSize64 > uint64(fileSize) || uint64(off)+f.CompressedSize64 > uint64(fileSize) {
		return Array{}, fmt.Errorf("%d bytes at offset %d run past the end of the %d-byte file (truncated?)", f.CompressedSize64, off, fileSize)
	}
	rc, err := f.Open()
	if err != nil {
		return Array{}, err
	}
	defer rc.Close() // read-only
	shape, dt, dataLen, err := readNPYHeader(rc, f.UncompressedSize64)
	if err != nil {
		return Array{}, err
	}
	b := make([]byte, dataLen)
	if _, err := io.ReadFull(rc, b); err != nil {
		return Array{}, fmt.Errorf("reading %d data bytes: %w", dataLen, err)
	}
	var one [1]byte // reach EOF so that the zip reader checks size and CRC-32
	if k, err := rc.Read(one[:]); k != 0 || !errors.Is(err, io.EOF) {
		if k != 0 {
			return Array{}, errors.New("trailing bytes after the array data")
		}
		return Array{}, fmt.Errorf("after the array data: %w", err)
	}
	return Array{Name: name, Shape: shape, Data: decodeLE(dt, b)}, nil
}

// readNPYHeader reads an .npy preamble from r, a member of total size bytes, and returns the array's shape, dtype
// and data length, which must be exactly what remains of the member.
func readNPYHeader(r io.Reader, size uint64) ([]int, dtype, int64, error) {
	var pre [12]byte
	if size < 10 {
		return nil, dtype{}, 0, fmt.Errorf("truncated: %d bytes, too short for an .npy header", size)
	}
	if _, err := io.ReadFull(r, pre[:10]); err != nil {
		return nil, dtype{}, 0, fmt.Errorf("reading .npy magic: %w", err)
	}
	if string(pre[:6]) != npyMagic {
		return nil, dtype{}, 0, fmt.Errorf("bad magic %q, want %q", pre[:6], npyMagic)
	}
	major, minor := pre[6], pre[7]
	var hlen, used uint64
	switch {
	case major == 1 && minor == 0:
		hlen, used = uint64(binary.LittleEndian.Uint16(pre[8:])), 10
	case (major == 2 || major == 3) && minor == 0:
		if size < 12 {
			return nil, dtype{}, 0, fmt.Errorf("truncated: %d bytes, too short for an .npy v%d.0 header", size, major)
		}
		if _, err := io.ReadFull(r, pre[10:12]); err != nil {
			return nil, dtype{}, 0, fmt.Errorf("reading .npy header length: %w", err)
		}
		hlen, used = uint64(binary.LittleEndian.Uint32(pre[8:])), 12
	default:
		return nil, dtype{}, 0, fmt.Errorf("unsupported .npy version %d.%d, want 1.0, 2.0 or 3.0", major, minor)
	}
	if hlen > size-used {
		return nil, dtype{}, 0, fmt.Errorf("header length %d runs past the end of the %d-byte member (truncated?)", hlen, size)
	}
	h := make([]byte, hlen)
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, dtype{}, 0, fmt.Errorf("reading %d-byte .npy header: %w", hlen, err)
	}
	descr, fortran, shape, err := parseNPYDict(string(h))
	if err != nil {
		return nil, dtype{}, 0, fmt.Errorf("bad header dict %q: %w", truncate(string(h), 200), err)
	}
	dt, ok := dtypeByNPY(descr)
	if !ok {
		return nil, dtype{}, 0, fmt.Errorf("unsupported descr %q, want '<f4', '<f8', '<i8', '<i4' or '|u1'", descr)
	}
	if fortran {
		return nil, dtype{}, 0, errors.New("fortran_order True is not supported, want C order")
	}
	left := size - used - hlen
	n, ok := numElements(shape, math.MaxInt64/int64(dt.size))
	if !ok {
		return nil, dtype{}, 0, fmt.Errorf("shape %s of %s is too large (more than 2^63 bytes)", shapeString(shape), descr)
	}
	if want := uint64(n) * uint64(dt.size); want != left {
		if want > left {
			return nil, dtype{}, 0, fmt.Errorf("truncated data: %d bytes, want %d for %s %s", left, want, descr, shapeString(shape))
		}
		return nil, dtype{}, 0, fmt.Errorf("%d trailing bytes: %d bytes of data, want %d for %s %s", left-want, left, want, descr, shapeString(shape))
	}
	return shape, dt, int64(left), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// parseNPYDict parses numpy's header dict, a Python literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }, followed by spaces and a newline.
func parseNPYDict(h string) (descr string, fortran bool, shape []int, err error) {
	p := &pyParser{s: h}
	if err := p.expect('{'); err != nil {
		return "", false, nil, err
	}
	var haveDescr, haveFortran, haveShape bool
	for {
		p.space()
		if p.peek() == '}' {
			p.i++
			break
		}
		key, err := p.str()
		if err != nil {
			return "", false, nil, err
		}
		if err := p.expect(':'); err != nil {
			return "", false, nil, err
		}
		p.space()
		switch key {
		case "descr":
			if haveDescr {
				return "", false, nil, errors.New("duplicate key 'descr'")
			}
			haveDescr = true
			descr, err = p.str()
		case "fortran_order":
			if haveFortran {
				return "", false, nil, errors.New("duplicate key 'fortran_order'")
			}
			haveFortran = true
			fortran, err = p.boolean()
		case "shape":
			if haveShape {
				return "", false, nil, errors.New("duplicate key 'shape'")
			}
			haveShape = true
			shape, err = p.tuple()
		default:
			err = fmt.Errorf("unknown key %q, want descr, fortran_order, shape", key)
		}
		if err != nil {
			return "", false, nil, err
		}
		p.space()
		switch p.peek() {
		case ',':
			p.i++
		case '}':
		default:
			return "", false, nil, p.errorf("want ',' or '}'")
		}
	}
	if strings.TrimRight(h[p.i:], " \n") != "" {
		return "", false, nil, p.errorf("unexpected text after the dict")
	}
	if !haveDescr || !haveFortran || !haveShape {
		return "", false, nil, errors.New("want keys descr, fortran_order and shape")
	}
	return descr, fortran, shape, nil
}

// pyParser reads the small subset of Python literals that .npy headers use.
type pyParser struct {
	s string
	i int
}

func (p *pyParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *pyParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n') {
		p.i++
	}
}

func (p *pyParser) errorf(format string, args ...any) error {
	return fmt.Errorf("at byte %d: "+format, append([]any{p.i}, args...)...)
}

func (p *pyParser) expect(c byte) error {
	p.space()
	if p.peek() != c {
		return p.errorf("want %q", c)
	}
	p.i++
	return nil
}

func (p *pyParser) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", p.errorf("want a quoted string")
	}
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", p.errorf("unterminated string")
	}
	s := p.s[p.i+1 : p.i+1+end]
	if strings.ContainsAny(s, "\\\n") {
		return "", p.errorf("unsupported escape or newline in string")
	}
	p.i += end + 2
	return s, nil
}

func (p *pyParser) boolean() (bool, error) {
	switch {
	case strings.HasPrefix(p.s[p.i:], "True"):
		p.i += 4
		return true, nil
	case strings.HasPrefix(p.s[p.i:], "False"):
		p.i += 5
		return false, nil
	}
	return false, p.errorf("want True or False")
}

// tuple reads a tuple of non-negative ints: (), (5,), (2, 3) or (2, 3,).
func (p *pyParser) tuple() ([]int, error) {
	if err := p.expect('('); err != nil {
		return nil, err
	}
	shape := []int{}
	comma := false // whether the last element was followed by a comma
	for {
		p.space()
		if p.peek() == ')' {
			if len(shape) == 1 && !comma {
				return nil, p.errorf("(n) is not a tuple, want (n,)")
			}
			p.i++
			return shape, nil
		}
		j := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		if j == p.i {
			return nil, p.errorf("want a non-negative integer dimension")
		}
		d, err := strconv.Atoi(p.s[j:p.i])
		if err != nil {
			return nil, p.errorf("dimension %s out of range", p.s[j:p.i])
		}
		shape = append(shape, d)
		p.space()
		comma = p.peek() == ','
		switch p.peek() {
		case ',':
			p.i++
		case ')':
		default:
			return nil, p.errorf("want ',' or ')' in shape")
		}
	}
}
