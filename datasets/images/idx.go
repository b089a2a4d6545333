package images

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// IDX magic numbers: two zero bytes, the element type (0x08 = unsigned byte) and the number of dimensions.
const (
	MagicIDXLabels = 0x00000801 // uint8, 1 dimension (N)
	MagicIDXImages = 0x00000803 // uint8, 3 dimensions (N, H, W)
)

// maxIDXBytes bounds the payload an IDX header may announce (16 GiB); larger claims are rejected before any
// reading, whatever the file holds.
const maxIDXBytes = 1 << 34

// isGzip reports whether data starts with the gzip magic 1f 8b.
func isGzip(data []byte) bool { return len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b }

// decodeIDX parses an IDX file (gzipped or not) whose magic must be want, returning its dimensions and its
// payload. The payload is allocated only as the bytes actually arrive, so a lying header cannot cause a large
// allocation.
func decodeIDX(name string, data []byte, want uint32) (dims []int, payload []byte, err error) {
	var r io.Reader = bytes.NewReader(data)
	gz := isGzip(data)
	if gz {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("images: %s: gzip: %w", name, err)
		}
		defer zr.Close()
		r = zr
	}
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, nil, fmt.Errorf("images: %s: too short for an IDX header (%s)", name, describeReadErr(err, gz))
	}
	m := binary.BigEndian.Uint32(magic[:])
	if m != want {
		hint := ""
		if m == MagicIDXLabels || m == MagicIDXImages {
			hint = " (images and labels files swapped?)"
		}
		return nil, nil, fmt.Errorf("images: %s: bad magic 0x%04x, want 0x%04x%s", name, m, want, hint)
	}
	nd := int(want & 0xff)
	hdr := make([]byte, 4*nd)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, nil, fmt.Errorf("images: %s: truncated IDX header: want %d dimension sizes (%s)", name, nd, describeReadErr(err, gz))
	}
	dims = make([]int, nd)
	total := uint64(1)
	for i := range dims {
		d := binary.BigEndian.Uint32(hdr[4*i:])
		dims[i] = int(d)
		total *= uint64(d)
		if total > maxIDXBytes {
			return nil, nil, fmt.Errorf("images: %s: header says %s, more than %d bytes: not an IDX file of this kind",
				name, dimString(dims[:i+1]), uint64(maxIDXBytes))
		}
	}
	for i := 1; i < nd; i++ {
		if dims[i] == 0 {
			return nil, nil, fmt.Errorf("images: %s: header says %s: an image dimension is zero", name, dimString(dims))
		}
	}
	if !gz {
		have := len(data) - 4 - 4*nd
		if uint64(have) != total {
			return nil, nil, fmt.Errorf("images: %s: header says %s = %d bytes, file has %d", name, dimString(dims), total, have)
		}
		return dims, data[4+4*nd:], nil
	}
	// Read at most total+1 bytes: one more than wanted tells that the file is too long.
	payload, err = io.ReadAll(io.LimitReader(r, int64(total)+1))
	if err != nil {
		return nil, nil, fmt.Errorf("images: %s: header says %s = %d bytes; reading them: %s", name, dimString(dims), total, describeReadErr(err, gz))
	}
	switch {
	case uint64(len(payload)) < total:
		return nil, nil, fmt.Errorf("images: %s: header says %s = %d bytes, file has %d (after gunzip)", name, dimString(dims), total, len(payload))
	case uint64(len(payload)) > total:
		return nil, nil, fmt.Errorf("images: %s: header says %s = %d bytes, file has more (after gunzip)", name, dimString(dims), total)
	}
	return dims, payload, nil
}

func describeReadErr(err error, gz bool) string {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		if gz {
			return "the gzip stream ends early"
		}
		return "the file ends early"
	}
	if gz {
		return "gzip: " + err.Error()
	}
	return err.Error()
}

func dimString(dims []int) string {
	s := make([]string, len(dims))
	for i, d := range dims {
		s[i] = strconv.Itoa(d)
	}
	return strings.Join(s, "×")
}

// DecodeIDXImages parses the bytes of an IDX image file (magic 0x00000803, uint8, N×H×W), gzipped or not;
// name is used in errors. The result has C = 1 and no labels.
func DecodeIDXImages(name string, data []byte) (*Images, error) {
	dims, payload, err := decodeIDX(name, data, MagicIDXImages)
	if err != nil {
		return nil, err
	}
	pix := payload
	if !isGzip(data) {
		pix = append([]byte(nil), payload...) // do not alias the caller's buffer
	}
	return &Images{N: dims[0], C: 1, H: dims[1], W: dims[2], Pix: pix}, nil
}

// DecodeIDXLabels parses the bytes of an IDX label file (magic 0x00000801, uint8, N), gzipped or not.
func DecodeIDXLabels(name string, data []byte) ([]uint8, error) {
	_, payload, err := decodeIDX(name, data, MagicIDXLabels)
	if err != nil {
		return nil, err
	}
	if !isGzip(data) {
		payload = append([]byte(nil), payload...)
	}
	return payload, nil
}

// ReadIDXImages reads an IDX image file (see DecodeIDXImages).
func ReadIDXImages(path string) (*Images, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	return DecodeIDXImages(path, data)
}

// ReadIDXLabels reads an IDX label file (see DecodeIDXLabels).
func ReadIDXLabels(path string) ([]uint8, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	return DecodeIDXLabels(path, data)
}

// ReadIDX reads an IDX image file and, if labelsPath is not empty, its label file, which must have one label
// per image.
func ReadIDX(imagesPath, labelsPath string) (*Images, error) {
	im, err := ReadIDXImages(imagesPath)
	if err != nil {
		return nil, err
	}
	if labelsPath == "" {
		return im, nil
	}
	lab, err := ReadIDXLabels(labelsPath)
	if err != nil {
		return nil, err
	}
	if len(lab) != im.N {
		return nil, fmt.Errorf("images: %s has %d labels for the %d images of %s", labelsPath, len(lab), im.N, imagesPath)
	}
	im.Labels = lab
	return im, nil
}
