package images

import (
	"fmt"
	"os"
)

// CIFAR-10 binary format: each record is 1 label byte (0…9) and 3×32×32 pixel bytes, planar R, G, B planes
// in row-major order, which is already (C, H, W).
const (
	cifarSide   = 32
	cifarPixels = 3 * cifarSide * cifarSide
	cifarRecord = 1 + cifarPixels
)

// DecodeCIFAR parses the bytes of a CIFAR-10 binary batch (data_batch_1.bin … test_batch.bin); name is used
// in errors. The size must be a positive multiple of 3073 bytes and every label must be 0…9.
func DecodeCIFAR(name string, data []byte) (*Images, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("images: %s: empty file, want CIFAR-10 records of %d bytes", name, cifarRecord)
	}
	if len(data)%cifarRecord != 0 {
		return nil, fmt.Errorf("images: %s: %d bytes is not a whole number of %d-byte CIFAR-10 records (1 label + 3×32×32 pixels); %d records and %d bytes left over",
			name, len(data), cifarRecord, len(data)/cifarRecord, len(data)%cifarRecord)
	}
	n := len(data) / cifarRecord
	im := &Images{N: n, C: 3, H: cifarSide, W: cifarSide, Pix: make([]uint8, n*cifarPixels), Labels: make([]uint8, n)}
	for i := 0; i < n; i++ {
		rec := data[i*cifarRecord : (i+1)*cifarRecord]
		if rec[0] > 9 {
			return nil, fmt.Errorf("images: %s: record %d has label %d, want 0…9 (CIFAR-100 files have two label bytes and are not supported)", name, i, rec[0])
		}
		im.Labels[i] = rec[0]
		copy(im.Pix[i*cifarPixels:], rec[1:])
	}
	return im, nil
}

// ReadCIFAR reads one CIFAR-10 binary batch (see DecodeCIFAR).
func ReadCIFAR(path string) (*Images, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	return DecodeCIFAR(path, data)
}
