package images

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// FolderOptions configures ReadFolder.
type FolderOptions struct {
	// Size is the side of the square output images (required, ≥ 1).
	Size int
	// Channels is 1 (grey, BT.601 luma) or 3 (RGB); 0 means 3.
	Channels int
	// Limit reads at most this many files (in name order); 0 reads all.
	Limit int
	// MaxPixels rejects any image with more pixels than this before decoding it; 0 means 2²⁶ (64 Mpx).
	MaxPixels int
}

// ReadFolder reads every *.png, *.jpg and *.jpeg file (any case) directly in dir, in lexical name order, in
// the CelebA manner: each image is centre-cropped to a square of side min(W, H) (the odd pixel, if any,
// goes to the right/bottom margin), then resampled to Size×Size by area averaging (each output pixel is the
// mean of the source area it covers, with fractional weights at the edges; box sampling when enlarging),
// and rounded to uint8. Transparent pixels are composited on black. Grey output uses the BT.601 luma of
// the resampled RGB values. Other files and subdirectories are ignored; an image that fails to decode is
// an error naming it. Labels are nil.
func ReadFolder(dir string, opt FolderOptions) (*Images, error) {
	if opt.Size < 1 {
		return nil, fmt.Errorf("images: folder %s: size %d, want ≥ 1", dir, opt.Size)
	}
	if opt.Channels == 0 {
		opt.Channels = 3
	}
	if opt.Channels != 1 && opt.Channels != 3 {
		return nil, fmt.Errorf("images: folder %s: %d channels, want 1 or 3", dir, opt.Channels)
	}
	if opt.MaxPixels == 0 {
		opt.MaxPixels = 1 << 26
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("images: folder: %w", err)
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".png", ".jpg", ".jpeg":
			files = append(files, e.Name())
		}
	}
	slices.Sort(files)
	if opt.Limit > 0 && len(files) > opt.Limit {
		files = files[:opt.Limit]
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("images: folder %s: no .png, .jpg or .jpeg files", dir)
	}
	s := opt.Size
	im := &Images{N: len(files), C: opt.Channels, H: s, W: s, Pix: make([]uint8, len(files)*opt.Channels*s*s)}
	var rs resampler
	for i, f := range files {
		path := filepath.Join(dir, f)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("images: %w", err)
		}
		if err := decodeInto(path, data, opt, im.Image(i), &rs); err != nil {
			return nil, err
		}
	}
	return im, nil
}

// DecodeImage decodes one PNG or JPEG file's bytes (recognised by their magic, not the name), centre-crops
// and resamples it as ReadFolder does, and returns its opt.Channels×Size×Size pixels (C, H, W).
func DecodeImage(name string, data []byte, opt FolderOptions) ([]uint8, error) {
	if opt.Channels == 0 {
		opt.Channels = 3
	}
	if opt.Size < 1 || opt.Size > 1<<14 || (opt.Channels != 1 && opt.Channels != 3) {
		return nil, fmt.Errorf("images: %s: output size %d with %d channels, want 1…16384 and 1 or 3", name, opt.Size, opt.Channels)
	}
	dst := make([]uint8, opt.Channels*opt.Size*opt.Size)
	if err := decodeInto(name, data, opt, dst, nil); err != nil {
		return nil, err
	}
	return dst, nil
}

// decodeInto is DecodeImage into dst, reusing rs's weights and scratch (rs may be nil).
func decodeInto(name string, data []byte, opt FolderOptions, dst []uint8, rs *resampler) error {
	if opt.Channels == 0 {
		opt.Channels = 3
	}
	if opt.MaxPixels == 0 {
		opt.MaxPixels = 1 << 26
	}
	if opt.Size < 1 || (opt.Channels != 1 && opt.Channels != 3) || len(dst) != opt.Channels*opt.Size*opt.Size {
		return fmt.Errorf("images: %s: bad output (size %d, %d channels, %d values)", name, opt.Size, opt.Channels, len(dst))
	}
	var decode func([]byte) (image.Image, error)
	var config func([]byte) (image.Config, error)
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		decode = func(b []byte) (image.Image, error) { return png.Decode(bytes.NewReader(b)) }
		config = func(b []byte) (image.Config, error) { return png.DecodeConfig(bytes.NewReader(b)) }
	case bytes.HasPrefix(data, []byte{0xff, 0xd8}):
		decode = func(b []byte) (image.Image, error) { return jpeg.Decode(bytes.NewReader(b)) }
		config = func(b []byte) (image.Config, error) { return jpeg.DecodeConfig(bytes.NewReader(b)) }
	default:
		return fmt.Errorf("images: %s: neither PNG nor JPEG (by its first bytes)", name)
	}
	cfg, err := config(data)
	if err != nil {
		return fmt.Errorf("images: %s: %w", name, err)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > opt.MaxPixels/cfg.Height {
		return fmt.Errorf("images: %s: %d×%d pixels, want between 1 and %d", name, cfg.Width, cfg.Height, opt.MaxPixels)
	}
	img, err := decode(data)
	if err != nil {
		return fmt.Errorf("images: %s: %w", name, err)
	}
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	crop := image.Rect(0, 0, side, side)
	rgba := image.NewRGBA(crop)
	off := image.Pt(b.Min.X+(b.Dx()-side)/2, b.Min.Y+(b.Dy()-side)/2)
	draw.Draw(rgba, crop, img, off, draw.Src) // stdlib fast paths for YCbCr, Gray, RGBA, NRGBA
	if rs == nil {
		rs = &resampler{}
	}
	rs.resize(rgba, opt.Size, opt.Channels, dst)
	return nil
}

// resampler holds area-averaging weights and scratch space, reused across images of the same size.
type resampler struct {
	in, out int
	w       []areaWeights
	tmp     []float64
}

type areaWeights struct {
	first int
	w     []float64
}

// areaTable returns, for each of out output pixels, the weights of the in source pixels it covers
// (summing to 1).
func areaTable(in, out int) []areaWeights {
	t := make([]areaWeights, out)
	scale := float64(in) / float64(out)
	for o := range t {
		lo, hi := float64(o)*scale, float64(o+1)*scale
		first := int(math.Floor(lo))
		last := min(int(math.Ceil(hi))-1, in-1)
		w := make([]float64, 0, last-first+1)
		for k := first; k <= last; k++ {
			ov := math.Min(float64(k+1), hi) - math.Max(float64(k), lo)
			w = append(w, math.Max(ov, 0)/scale)
		}
		t[o] = areaWeights{first: first, w: w}
	}
	return t
}

// resize area-averages the square RGBA image to size×size and writes channels planes to dst.
func (r *resampler) resize(src *image.RGBA, size, channels int, dst []uint8) {
	in := src.Bounds().Dx()
	if r.in != in || r.out != size {
		r.in, r.out, r.w = in, size, areaTable(in, size)
		r.tmp = make([]float64, 3*in*size+3*size*size)
	}
	rows := r.tmp[:3*in*size]               // (3, in rows, size cols): horizontal pass
	full := r.tmp[3*in*size:][:3*size*size] // (3, size, size)
	for y := 0; y < in; y++ {
		line := src.Pix[y*src.Stride:]
		for o, aw := range r.w {
			var acc [3]float64
			for j, w := range aw.w {
				p := line[4*(aw.first+j):]
				acc[0] += w * float64(p[0])
				acc[1] += w * float64(p[1])
				acc[2] += w * float64(p[2])
			}
			for c := 0; c < 3; c++ {
				rows[(c*in+y)*size+o] = acc[c]
			}
		}
	}
	for c := 0; c < 3; c++ {
		for o, aw := range r.w {
			for x := 0; x < size; x++ {
				var acc float64
				for j, w := range aw.w {
					acc += w * rows[(c*in+aw.first+j)*size+x]
				}
				full[(c*size+o)*size+x] = acc
			}
		}
	}
	n := size * size
	if channels == 3 {
		for i, v := range full {
			dst[i] = toByte(v)
		}
		return
	}
	for i := 0; i < n; i++ {
		dst[i] = toByte(0.299*full[i] + 0.587*full[n+i] + 0.114*full[2*n+i])
	}
}

func toByte(v float64) uint8 {
	v = math.Round(v)
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return uint8(v)
}
