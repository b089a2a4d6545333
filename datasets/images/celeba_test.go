package images

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCelebASpec(t *testing.T) {
	for _, c := range []struct {
		in, err string
		want    Spec
	}{
		{in: "celeba:/d", want: Spec{Kind: "celeba", Dir: "/d"}},
		{in: "celeba:/d:32", want: Spec{Kind: "celeba", Dir: "/d", Size: 32}},
		{in: "celeba:a:b:64", want: Spec{Kind: "celeba", Dir: "a:b", Size: 64}},
		{in: "celeba:a:b", want: Spec{Kind: "celeba", Dir: "a:b"}},
		{in: "celeba:/d:48", err: "celeba size 48"},
		{in: "celeba", err: "celeba needs a directory"},
		{in: "celeba::32", err: "celeba needs a directory"},
	} {
		got, err := ParseSpec(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.in, got, err, c.want)
			continue
		}
		if back, err := ParseSpec(got.String()); err != nil || back != got {
			t.Errorf("%q: String %q parses to %+v, %v", c.in, got.String(), back, err)
		}
	}
}

// writeFacesDir makes a small synthetic CelebA directory once per test.
func writeFacesDir(t *testing.T, n int, seed uint64) string {
	t.Helper()
	dir := t.TempDir()
	if err := WriteFaces(dir, n, seed, 0); err != nil {
		t.Fatal(err)
	}
	return dir
}

// areaResize148 cuts the 148×148 square at (x0, y0) from img and box-filters it to s×s by direct
// integration: each output pixel is the mean of the source square [o·r, (o+1)·r)² with r = 148/s, each
// source pixel weighted by the area of its overlap.
func areaResize148(img image.Image, x0, y0, s int) []float64 {
	r := float64(CelebACrop) / float64(s)
	out := make([]float64, 3*s*s)
	overlap := func(k int, lo, hi float64) float64 {
		return math.Max(0, math.Min(float64(k+1), hi)-math.Max(float64(k), lo))
	}
	for oy := 0; oy < s; oy++ {
		for ox := 0; ox < s; ox++ {
			var acc [3]float64
			for y := 0; y < CelebACrop; y++ {
				wy := overlap(y, float64(oy)*r, float64(oy+1)*r)
				if wy == 0 {
					continue
				}
				for x := 0; x < CelebACrop; x++ {
					wx := overlap(x, float64(ox)*r, float64(ox+1)*r)
					if wx == 0 {
						continue
					}
					c := color.RGBAModel.Convert(img.At(x0+x, y0+y)).(color.RGBA)
					acc[0] += wx * wy * float64(c.R)
					acc[1] += wx * wy * float64(c.G)
					acc[2] += wx * wy * float64(c.B)
				}
			}
			for ch := 0; ch < 3; ch++ {
				out[(ch*s+oy)*s+ox] = acc[ch] / (r * r)
			}
		}
	}
	return out
}

// Synthetic faces written in the CelebA layout read back through celeba:DIR with the 80/10/10 counts, and
// every image is the centred 148×148 crop of its JPEG, area-resized.
func TestFacesReadBackThroughCelebA(t *testing.T) {
	const n = 20
	dir := writeFacesDir(t, n, 3)
	tr, va, te, err := ReadCelebA(dir, CelebAOptions{Size: 32})
	if err != nil {
		t.Fatal(err)
	}
	if tr.N != 16 || va.N != 2 || te.N != 2 || tr.C != 3 || tr.H != 32 || tr.W != 32 {
		t.Fatalf("splits %d/%d/%d of %d×%d×%d, want 16/2/2 of 3×32×32", tr.N, va.N, te.N, tr.C, tr.H, tr.W)
	}
	// Test image 1 is face 19 (the last): compare with the direct crop and integration of its JPEG.
	data, err := os.ReadFile(filepath.Join(dir, CelebAImageDir, FaceFileName(19)))
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 178 || b.Dy() != 218 {
		t.Fatalf("face JPEG is %v, want 178×218", b)
	}
	want := areaResize148(img, 15, 35, 32)
	for i, v := range te.Image(1) {
		// The reader rounds the same mean, summed in another order: within half a level, plus float
		// rounding (1e-9 is far above the ~1e-13 of 148² sums of values ≤ 255).
		if math.Abs(float64(v)-want[i]) > 0.5+1e-9 {
			t.Fatalf("test image 1, value %d: %d, direct area resize %.3f", i, v, want[i])
		}
	}

	sp, err := ParseSpec("celeba:" + dir + ":32")
	if err != nil {
		t.Fatal(err)
	}
	train, test, err := sp.Load(LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 16 || test.Len() != 2 || train.Side() != 32 || train.Channels() != 3 || train.RealDim() != 3*32*32 {
		t.Fatalf("Load: train %d, test %d, side %d, C %d, RealDim %d", train.Len(), test.Len(), train.Side(), train.Channels(), train.RealDim())
	}
	if !bytes.Equal(test.Images().Image(1), te.Image(1)) {
		t.Error("Load and ReadCelebA differ on test image 1")
	}
	// Without a size in the spec the model size decides; Limit caps each split; grey works.
	sp, _ = ParseSpec("celeba:" + dir)
	train, test, err = sp.Load(LoadOptions{Size: 16, Limit: 5, Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 5 || test.Len() != 2 || train.Side() != 16 || train.Channels() != 1 {
		t.Errorf("Load size 16 limit 5 grey: train %d, test %d, side %d, C %d", train.Len(), test.Len(), train.Side(), train.Channels())
	}
}

// The same seed writes the same bytes, whatever the number of workers; another seed other faces.
func TestWriteFacesDeterministic(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	if err := WriteFaces(a, 3, 11, 1); err != nil {
		t.Fatal(err)
	}
	if err := WriteFaces(b, 3, 11, 3); err != nil {
		t.Fatal(err)
	}
	if err := WriteFaces(c, 3, 12, 2); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		fa, _ := os.ReadFile(filepath.Join(a, CelebAImageDir, FaceFileName(i)))
		fb, _ := os.ReadFile(filepath.Join(b, CelebAImageDir, FaceFileName(i)))
		fc, _ := os.ReadFile(filepath.Join(c, CelebAImageDir, FaceFileName(i)))
		if len(fa) == 0 || !bytes.Equal(fa, fb) {
			t.Errorf("face %d differs between 1 and 3 workers", i)
		}
		if bytes.Equal(fa, fc) {
			t.Errorf("face %d is the same for seeds 11 and 12", i)
		}
	}
	la, _ := os.ReadFile(filepath.Join(a, CelebAPartitionFile))
	if string(la) != "000001.jpg 0\n000002.jpg 0\n000003.jpg 2\n" {
		t.Errorf("partition of 3 faces:\n%s", la)
	}
}

func TestFacesSplitCounts(t *testing.T) {
	for _, n := range []int{1, 7, 10, 100, 1001} {
		var cnt [3]int
		for i := 0; i < n; i++ {
			cnt[FacesSplit(i, n)]++
		}
		want := [3]int{int(math.Round(0.8 * float64(n))), int(math.Round(0.1 * float64(n))), 0}
		want[2] = n - want[0] - want[1]
		if cnt != want {
			t.Errorf("n=%d: splits %v, want %v", n, cnt, want)
		}
	}
}

// Coarse factors and fine factors vary independently: over 400 faces the background brightness measured in
// the image's top corners follows the background factor but not the eye size, and the area of eye white
// in the eye region follows the eye size but not the background. Measured on the rendered canvas at 1 sample per pixel
// in the regions (a coarse look, cheap enough for a unit test).
func TestFaceFactorsIndependent(t *testing.T) {
	const n = 400
	var bgF, eyeF, corner, eyeWhite []float64
	for i := 0; i < n; i++ {
		f := FaceFactorsAt(21, i)
		var c float64
		for y := 0; y < 12; y++ { // top corners: background (the head's top is ≥ 25 px below the edge)
			for x := 0; x < 12; x++ {
				for _, xx := range []int{x, faceW - 1 - x} {
					col := f.shadeFace(float64(xx)+0.5, float64(y)+0.5)
					c += (col[0] + col[1] + col[2]) / 3
				}
			}
		}
		// Eye region: the pixels around both eye centres, in the face frame.
		b := f.HeadWidth * f.HeadAspect
		sn, cs := math.Sincos(f.Angle)
		var e float64
		for _, s := range []float64{-1, 1} {
			for dv := -6.0; dv <= 6; dv++ {
				for du := -12.0; du <= 12; du++ {
					u, v := s*f.EyeSpacing/2+du, -0.08*b+dv
					x := faceW/2 + f.OffsetX + cs*u - sn*v
					y := 112 + f.OffsetY + sn*u + cs*v
					col := f.shadeFace(x, y)
					d := max(math.Abs(col[0]-0.93), math.Abs(col[1]-0.92), math.Abs(col[2]-0.90))
					if d < 0.06 { // the colour of the eye whites
						e++
					}
				}
			}
		}
		bgF = append(bgF, (f.Background[0]+f.Background[1]+f.Background[2])/3)
		eyeF = append(eyeF, f.EyeSize)
		corner = append(corner, c)
		eyeWhite = append(eyeWhite, e)
	}
	// For independent variables the sample correlation has standard deviation ≈ 1/√n = 0.05; 4σ = 0.2.
	// The dependent pairs must correlate far beyond that.
	const indep = 0.2
	t.Logf("r(corner, background) %.3f, r(corner, eye size) %.3f, r(eye white, eye size) %.3f, r(eye white, background) %.3f",
		correlation(corner, bgF), correlation(corner, eyeF), correlation(eyeWhite, eyeF), correlation(eyeWhite, bgF))
	if r := correlation(corner, bgF); r < 0.9 {
		t.Errorf("corner brightness vs background factor: r = %.3f, want > 0.9", r)
	}
	if r := correlation(corner, eyeF); math.Abs(r) > indep {
		t.Errorf("corner brightness vs eye size: r = %.3f, want |r| < %.2f", r, indep)
	}
	if r := correlation(eyeWhite, eyeF); r < 0.3 {
		t.Errorf("eye-white area vs eye size: r = %.3f, want > 0.3", r)
	}
	if r := correlation(eyeWhite, bgF); math.Abs(r) > indep {
		t.Errorf("eye-white area vs background: r = %.3f, want |r| < %.2f", r, indep)
	}
}

func correlation(x, y []float64) float64 {
	var mx, my float64
	for i := range x {
		mx += x[i] / float64(len(x))
		my += y[i] / float64(len(y))
	}
	var sxy, sxx, syy float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	return sxy / math.Sqrt(sxx*syy)
}

// jpegBytes encodes a w×h grey gradient as JPEG.
func jpegBytes(t *testing.T, w, h int) []byte {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Missing, corrupt, foreign and undersized files, and bad partition lines, fail with the file's name.
func TestCelebABadFiles(t *testing.T) {
	good := jpegBytes(t, 178, 218)
	var pngBuf bytes.Buffer
	if err := png.Encode(&pngBuf, image.NewGray(image.Rect(0, 0, 178, 218))); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, list string
		files      map[string][]byte
		errSub     string
	}{
		{"missing file", "a.jpg 0\nb.jpg 2\n", map[string][]byte{"a.jpg": good}, "b.jpg"},
		{"truncated", "a.jpg 0\nb.jpg 0\n", map[string][]byte{"a.jpg": good, "b.jpg": good[:len(good)/2]}, "b.jpg"},
		{"png", "a.jpg 0\n", map[string][]byte{"a.jpg": pngBuf.Bytes()}, "a.jpg: not a JPEG"},
		{"too small", "a.jpg 0\nc.jpg 1\n", map[string][]byte{"a.jpg": good, "c.jpg": jpegBytes(t, 100, 218)}, "c.jpg: 100×218 pixels"},
		{"bad split", "a.jpg 0\nb.jpg 3\n", map[string][]byte{"a.jpg": good}, CelebAPartitionFile + ":2: split \"3\""},
		{"bad line", "a.jpg 0 extra\n", map[string][]byte{"a.jpg": good}, CelebAPartitionFile + ":1: 3 fields"},
		{"path in name", "../a.jpg 0\n", map[string][]byte{"a.jpg": good}, "not a plain file name"},
		{"duplicate", "a.jpg 0\n\na.jpg 1\n", map[string][]byte{"a.jpg": good}, ":3: a.jpg listed again (first on line 1)"},
		{"empty list", "\n", nil, "no images listed"},
	} {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, CelebAImageDir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, CelebAPartitionFile), []byte(c.list), 0o644); err != nil {
			t.Fatal(err)
		}
		for name, b := range c.files {
			if err := os.WriteFile(filepath.Join(dir, CelebAImageDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		_, _, _, err := ReadCelebA(dir, CelebAOptions{Size: 8})
		if err == nil || !strings.Contains(err.Error(), c.errSub) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.errSub)
		}
	}
	if _, _, _, err := ReadCelebA(t.TempDir(), CelebAOptions{}); err == nil || !strings.Contains(err.Error(), CelebAPartitionFile) {
		t.Errorf("no partition file: %v", err)
	}
	if _, _, _, err := ReadCelebA(t.TempDir(), CelebAOptions{Size: 48}); err == nil || !strings.Contains(err.Error(), "size 48") {
		t.Errorf("size 48: %v", err)
	}
}

func FuzzCelebAPartition(f *testing.F) {
	f.Add([]byte("000001.jpg 0\n000002.jpg 1\n000003.jpg 2\n"))
	f.Add([]byte("a.jpg\t2\r\n\nb.jpg 0"))
	f.Add([]byte("a.jpg 0\na.jpg 1\n"))
	f.Add([]byte("../x 0\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := ParseCelebAPartition("p", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "images: p") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		if len(es) == 0 || len(es) > bytes.Count(data, []byte("\n"))+1 {
			t.Fatalf("%d entries from %d lines", len(es), bytes.Count(data, []byte("\n"))+1)
		}
		seen := map[string]bool{}
		for _, e := range es {
			if e.Split < 0 || e.Split > 2 || seen[e.File] || strings.ContainsAny(e.File, "/\\") || e.File == "" {
				t.Fatalf("accepted entry %+v", e)
			}
			seen[e.File] = true
		}
	})
}

func FuzzDecodeCelebA(f *testing.F) {
	f.Add(jpegBytesF(178, 218))
	f.Add(jpegBytesF(148, 148))
	f.Add(jpegBytesF(10, 10))
	f.Add([]byte{0xff, 0xd8, 0xff})
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pix, err := DecodeCelebA("c.jpg", data, 8, 3)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "images: c.jpg: ") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		if len(pix) != 3*8*8 {
			t.Fatalf("%d values, want 192", len(pix))
		}
	})
}

func jpegBytesF(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		panic(fmt.Sprint("jpeg: ", err))
	}
	return buf.Bytes()
}
