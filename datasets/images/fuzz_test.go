package images

import (
	"os"
	"path/filepath"
	"testing"
)

// The fuzzers check that the decoders never panic, that whatever they accept is a valid image set whose size
// the input justifies, and that they fail with the file's name otherwise. Their seed corpora run as
// ordinary tests.

func FuzzReadIDX(f *testing.F) {
	img, _ := os.ReadFile(filepath.Join(testFashion, "train-images-idx3-ubyte.gz"))
	lab, _ := os.ReadFile(filepath.Join(testFashion, "train-labels-idx1-ubyte"))
	f.Add(img)
	f.Add(lab)
	f.Add(idxBytes(MagicIDXImages, []int{2, 3, 4}, make([]byte, 24)))
	f.Add(gz(idxBytes(MagicIDXImages, []int{1, 2, 2}, []byte{1, 2, 3, 4})))
	f.Add(gz(idxBytes(MagicIDXLabels, []int{3}, []byte{1, 2, 3})))
	f.Add(idxBytes(MagicIDXImages, []int{1 << 30, 1 << 30, 1}, nil))
	f.Add([]byte{0x1f, 0x8b})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := DecodeIDXImages("f", data)
		if err == nil {
			if verr := im.Validate(); verr != nil {
				t.Fatalf("accepted an invalid image set: %v", verr)
			}
			if !isGzip(data) && len(im.Pix) != len(data)-16 {
				t.Fatalf("%d pixels from a %d-byte file", len(im.Pix), len(data))
			}
		} else if len(err.Error()) < len("images: f: ") || err.Error()[:11] != "images: f: " {
			t.Fatalf("error without the file name: %v", err)
		}
		l, err := DecodeIDXLabels("f", data)
		if err == nil && !isGzip(data) && len(l) != len(data)-8 {
			t.Fatalf("%d labels from a %d-byte file", len(l), len(data))
		}
	})
}

func FuzzReadCIFAR(f *testing.F) {
	rec := make([]byte, cifarRecord)
	rec[0] = 7
	f.Add(rec)
	f.Add(append(append([]byte(nil), rec...), rec...))
	f.Add(rec[:100])
	bad := append([]byte(nil), rec...)
	bad[0] = 10
	f.Add(bad)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := DecodeCIFAR("c", data)
		if err != nil {
			return
		}
		if verr := im.Validate(); verr != nil || im.N*cifarRecord != len(data) {
			t.Fatalf("accepted: %v, %d images from %d bytes", verr, im.N, len(data))
		}
		for i, l := range im.Labels {
			if l > 9 || l != data[i*cifarRecord] {
				t.Fatalf("label %d of record %d", l, i)
			}
		}
	})
}

func FuzzReadMNISTJSON(f *testing.F) {
	for _, d := range []string{"0", "7"} {
		b, _ := os.ReadFile(filepath.Join("testdata", "mnist-json", d+".json"))
		f.Add(b)
	}
	f.Add([]byte(`{"data":[0.5]}`))
	f.Add([]byte(`{"data":null}`))
	f.Add([]byte(`{"data":[1e400]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := DecodeMNISTJSON("j", data)
		if err != nil {
			return
		}
		if verr := im.Validate(); verr != nil || im.N == 0 || im.H != 28 || im.W != 28 {
			t.Fatalf("accepted: %v, %d images", verr, im.N)
		}
		// Every value takes at least 2 bytes ("0,"), so N·784 ≤ len/2.
		if im.N*784 > len(data)/2+1 {
			t.Fatalf("%d images from %d bytes", im.N, len(data))
		}
	})
}
