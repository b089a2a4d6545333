package images

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// CelebA's layout and preparation (the aligned-and-cropped release, and what Faces writes).
const (
	// CelebAImageDir is the folder of JPEGs inside a CelebA directory.
	CelebAImageDir = "img_align_celeba"
	// CelebAPartitionFile lists every image with its split: "000001.jpg 0" (0 train, 1 valid, 2 test).
	CelebAPartitionFile = "list_eval_partition.txt"
	// CelebACrop is the side of the centred square cut from every image before resizing (the images are
	// 178×218; the crop keeps the face and drops most of the background and the neck).
	CelebACrop = 148
	// CelebAWidth and CelebAHeight are the size of the aligned CelebA images.
	CelebAWidth, CelebAHeight = 178, 218
)

// CelebA split numbers in list_eval_partition.txt.
const (
	CelebATrain = 0
	CelebAValid = 1
	CelebATest  = 2
)

// CelebAEntry is one line of list_eval_partition.txt.
type CelebAEntry struct {
	File  string // file name inside img_align_celeba
	Split int    // CelebATrain, CelebAValid or CelebATest
}

// ParseCelebAPartition reads list_eval_partition.txt's bytes (name is used in errors): one "FILE SPLIT" pair
// per line, separated by spaces or tabs, SPLIT 0, 1 or 2; blank lines are skipped. A file name must be a
// plain name (no directory part) and may appear once.
func ParseCelebAPartition(name string, data []byte) ([]CelebAEntry, error) {
	var out []CelebAEntry
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 1<<16)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("images: %s:%d: %d fields, want \"FILE SPLIT\"", name, line, len(fields))
		}
		file := fields[0]
		if file != filepath.Base(file) || file == "." || file == ".." || strings.ContainsAny(file, `/\`) {
			return nil, fmt.Errorf("images: %s:%d: %q is not a plain file name", name, line, file)
		}
		split, err := strconv.Atoi(fields[1])
		if err != nil || split < CelebATrain || split > CelebATest {
			return nil, fmt.Errorf("images: %s:%d: split %q, want 0 (train), 1 (valid) or 2 (test)", name, line, fields[1])
		}
		if prev, dup := seen[file]; dup {
			return nil, fmt.Errorf("images: %s:%d: %s listed again (first on line %d)", name, line, file, prev)
		}
		seen[file] = line
		out = append(out, CelebAEntry{File: file, Split: split})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("images: %s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("images: %s: no images listed", name)
	}
	return out, nil
}

// CelebAOptions configures ReadCelebA.
type CelebAOptions struct {
	// Size is the side of the output images, a power of two from 4 to 128 (32 and 64 are the usual); 0
	// means 64.
	Size int
	// Channels is 3 (RGB, the default) or 1 (BT.601 luma of the resized RGB).
	Channels int
	// Limit reads at most this many images of each split (the first ones in the partition file); 0 reads all.
	Limit int
	// Workers decode in parallel (the result does not depend on it); 0 means GOMAXPROCS.
	Workers int
}

// ReadCelebA reads a CelebA directory: DIR/list_eval_partition.txt and the JPEGs it lists in
// DIR/img_align_celeba. Every image is cut to the centred CelebACrop×CelebACrop square (offsets
// ⌊(W−148)/2⌋ and ⌊(H−148)/2⌋: 15 and 35 for 178×218) and resized to Size×Size by area averaging (each
// output pixel is the exact mean of the source area it covers, a box filter with fractional edge weights),
// then rounded to uint8 RGB, planar (C, H, W). The three splits come back in the partition file's order;
// a split with no images is nil. A listed file that is missing, is not a JPEG, fails to decode or is smaller
// than the crop is an error naming it. Images in the folder but not in the list are ignored.
func ReadCelebA(dir string, opt CelebAOptions) (train, valid, test *Images, err error) {
	if opt.Size == 0 {
		opt.Size = 64
	}
	if opt.Channels == 0 {
		opt.Channels = 3
	}
	if !IsPow2(opt.Size) || opt.Size < 4 || opt.Size > 128 || (opt.Channels != 1 && opt.Channels != 3) || opt.Limit < 0 {
		return nil, nil, nil, fmt.Errorf("images: celeba %s: size %d, %d channels, limit %d; want a power of two 4…128, 1 or 3 channels, limit ≥ 0",
			dir, opt.Size, opt.Channels, opt.Limit)
	}
	ppath := filepath.Join(dir, CelebAPartitionFile)
	data, err := os.ReadFile(ppath)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("images: celeba: %w", err)
	}
	entries, err := ParseCelebAPartition(ppath, data)
	if err != nil {
		return nil, nil, nil, err
	}
	var files [3][]string
	for _, e := range entries {
		if opt.Limit == 0 || len(files[e.Split]) < opt.Limit {
			files[e.Split] = append(files[e.Split], e.File)
		}
	}
	var out [3]*Images
	for s, names := range files {
		if len(names) == 0 {
			continue
		}
		if out[s], err = readCelebAImages(filepath.Join(dir, CelebAImageDir), names, opt); err != nil {
			return nil, nil, nil, err
		}
	}
	return out[0], out[1], out[2], nil
}

// readCelebAImages decodes the named files of dir on opt.Workers goroutines, each image into its own place.
func readCelebAImages(dir string, names []string, opt CelebAOptions) (*Images, error) {
	s, c := opt.Size, opt.Channels
	im := &Images{N: len(names), C: c, H: s, W: s, Pix: make([]uint8, len(names)*c*s*s)}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			var rs resampler
			for i := w; i < len(names); i += workers {
				path := filepath.Join(dir, names[i])
				data, err := os.ReadFile(path)
				if err != nil {
					errs[i] = fmt.Errorf("images: celeba: %w", err)
					continue
				}
				errs[i] = decodeCelebA(path, data, s, c, im.Image(i), &rs)
			}
		})
	}
	wg.Wait()
	for _, err := range errs { // the first failure in list order, whatever the scheduling
		if err != nil {
			return nil, err
		}
	}
	return im, nil
}

// DecodeCelebA decodes one CelebA JPEG's bytes (name is used in errors), crops and resizes it as ReadCelebA
// does, and returns its channels×size×size pixels.
func DecodeCelebA(name string, data []byte, size, channels int) ([]uint8, error) {
	if size < 1 || size > CelebACrop || (channels != 1 && channels != 3) {
		return nil, fmt.Errorf("images: %s: output size %d with %d channels, want 1…%d and 1 or 3", name, size, channels, CelebACrop)
	}
	dst := make([]uint8, channels*size*size)
	if err := decodeCelebA(name, data, size, channels, dst, &resampler{}); err != nil {
		return nil, err
	}
	return dst, nil
}

// celebAMaxPixels bounds the pixel count a JPEG header may claim before it is decoded (CelebA's are 38 804).
const celebAMaxPixels = 1 << 24

func decodeCelebA(name string, data []byte, size, channels int, dst []uint8, rs *resampler) error {
	if !bytes.HasPrefix(data, []byte{0xff, 0xd8}) {
		return fmt.Errorf("images: %s: not a JPEG (by its first bytes)", name)
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("images: %s: %w", name, err)
	}
	if cfg.Width < CelebACrop || cfg.Height < CelebACrop || cfg.Width > celebAMaxPixels/cfg.Height {
		return fmt.Errorf("images: %s: %d×%d pixels, want at least %d×%d and at most %d pixels",
			name, cfg.Width, cfg.Height, CelebACrop, CelebACrop, celebAMaxPixels)
	}
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("images: %s: %w", name, err)
	}
	b := img.Bounds()
	crop := image.Rect(0, 0, CelebACrop, CelebACrop)
	rgba := image.NewRGBA(crop)
	off := image.Pt(b.Min.X+(b.Dx()-CelebACrop)/2, b.Min.Y+(b.Dy()-CelebACrop)/2)
	draw.Draw(rgba, crop, img, off, draw.Src)
	rs.resize(rgba, size, channels, dst)
	return nil
}
