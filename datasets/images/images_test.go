package images

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const testFashion = "testdata/fashion-mnist-64"

// idxBytes builds an IDX file with the given magic and dims and payload.
func idxBytes(magic uint32, dims []int, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, uint32(d))
	}
	return append(b, payload...)
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestFashionMNISTTestdata(t *testing.T) {
	im, err := ReadIDX(filepath.Join(testFashion, "train-images-idx3-ubyte.gz"), filepath.Join(testFashion, "train-labels-idx1-ubyte"))
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 64 || im.C != 1 || im.H != 28 || im.W != 28 {
		t.Fatalf("got %d×%d×%d×%d images, want 64×1×28×28", im.N, im.C, im.H, im.W)
	}
	if want := []uint8{9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9}; !slices.Equal(im.Labels[:12], want) {
		t.Errorf("labels %v, want %v", im.Labels[:12], want)
	}
	sum := 0
	for _, v := range im.Pix {
		sum += int(v)
	}
	// Checksums computed independently (Python) from the Debian package's file.
	if sum != 3684429 || im.Pix[14*28+14] != 217 {
		t.Errorf("pixel sum %d, centre pixel %d; want 3684429 and 217", sum, im.Pix[14*28+14])
	}
	// Against the full Debian file, where it is installed.
	full := filepath.Join(DefaultFashionMNISTDir, "train-images-idx3-ubyte.gz")
	if _, err := os.Stat(full); err != nil {
		t.Logf("skipping the comparison with %s: %v", full, err)
		return
	}
	all, err := ReadIDXImages(full)
	if err != nil {
		t.Fatal(err)
	}
	if all.N != 60000 || !bytes.Equal(all.Pix[:64*784], im.Pix) {
		t.Errorf("test data differ from the first 64 images of %s (N=%d)", full, all.N)
	}
}

func TestIDXErrors(t *testing.T) {
	good := idxBytes(MagicIDXImages, []int{2, 3, 4}, make([]byte, 24))
	labels := idxBytes(MagicIDXLabels, []int{2}, []byte{1, 2})
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"train-images-idx3-ubyte.gz", gz(labels), "train-images-idx3-ubyte.gz: bad magic 0x0801, want 0x0803 (images and labels files swapped?)"},
		{"x", labels, "x: bad magic 0x0801, want 0x0803"},
		{"short", good[:20], "short: header says 2×3×4 = 24 bytes, file has 4"},
		{"long", append(slices.Clone(good), 7), "long: header says 2×3×4 = 24 bytes, file has 25"},
		{"gzshort", gz(good[:20]), "gzshort: header says 2×3×4 = 24 bytes, file has 4 (after gunzip)"},
		{"gzlong", gz(append(slices.Clone(good), 7)), "gzlong: header says 2×3×4 = 24 bytes, file has more (after gunzip)"},
		{"gztrunc", gz(good)[:30], "gztrunc: "},
		{"tiny", []byte{0, 0}, "tiny: too short for an IDX header (the file ends early)"},
		{"hdr", good[:10], "hdr: truncated IDX header"},
		{"zero", idxBytes(MagicIDXImages, []int{2, 0, 4}, nil), "zero: header says 2×0×4: an image dimension is zero"},
		{"huge", idxBytes(MagicIDXImages, []int{1 << 31, 1 << 31, 1 << 31}, nil), "more than 17179869184 bytes"},
		{"gzbadheader", []byte{0x1f, 0x8b, 1, 2, 3}, "gzbadheader: "},
	}
	for _, c := range cases {
		_, err := DecodeIDXImages(c.name, c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "images: "+c.name+": ") {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	if _, err := DecodeIDXLabels("l", good); err == nil || !strings.Contains(err.Error(), "bad magic 0x0803, want 0x0801") {
		t.Errorf("labels from an image file: %v", err)
	}
	if l, err := DecodeIDXLabels("l", gz(labels)); err != nil || !slices.Equal(l, []byte{1, 2}) {
		t.Errorf("labels: %v %v", l, err)
	}
	im, err := DecodeIDXImages("g", good)
	if err != nil || im.N != 2 || im.H != 3 || im.W != 4 || im.Validate() != nil {
		t.Errorf("good file: %+v %v", im, err)
	}
	// Labels that do not match the images.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "i"), good, 0o644)
	os.WriteFile(filepath.Join(dir, "l"), idxBytes(MagicIDXLabels, []int{3}, []byte{1, 2, 3}), 0o644)
	if _, err := ReadIDX(filepath.Join(dir, "i"), filepath.Join(dir, "l")); err == nil || !strings.Contains(err.Error(), "has 3 labels for the 2 images") {
		t.Errorf("mismatched labels: %v", err)
	}
	if _, err := ReadIDXImages(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
}

// A gzipped header that claims 10⁹ bytes must not allocate them.
func TestIDXLyingHeaderDoesNotAllocate(t *testing.T) {
	data := gz(idxBytes(MagicIDXImages, []int{1_000_000, 1000, 1}, make([]byte, 1000)))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := DecodeIDXImages("lie.gz", data)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "header says 1000000×1000×1 = 1000000000 bytes, file has 1000") {
		t.Errorf("error %v", err)
	}
	if a := after.TotalAlloc - before.TotalAlloc; a > 4<<20 {
		t.Errorf("decoding allocated %d bytes for a %d-byte file", a, len(data))
	}
}

func TestCIFAR(t *testing.T) {
	rec := func(label byte, fill byte) []byte {
		r := make([]byte, cifarRecord)
		r[0] = label
		for c := 0; c < 3; c++ {
			for i := 0; i < 1024; i++ {
				r[1+c*1024+i] = fill + byte(c)
			}
		}
		return r
	}
	data := append(append(rec(3, 10), rec(9, 20)...), rec(0, 30)...)
	im, err := DecodeCIFAR("b", data)
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 3 || im.C != 3 || im.H != 32 || !slices.Equal(im.Labels, []byte{3, 9, 0}) || im.Validate() != nil {
		t.Fatalf("got %+v", im.Labels)
	}
	if px := im.Image(1); px[0] != 20 || px[1024] != 21 || px[3071] != 22 {
		t.Errorf("planes of image 1: %d %d %d", px[0], px[1024], px[3071])
	}
	for _, c := range []struct {
		data []byte
		want string
	}{
		{nil, "b: empty file"},
		{data[:5000], "b: 5000 bytes is not a whole number of 3073-byte CIFAR-10 records (1 label + 3×32×32 pixels); 1 records and 1927 bytes left over"},
		{append(rec(1, 0), rec(12, 0)...), "b: record 1 has label 12, want 0…9"},
	} {
		if _, err := DecodeCIFAR("b", c.data); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
	// A directory of batches, in the cifar-10-batches-bin subdirectory.
	dir := t.TempDir()
	sub := filepath.Join(dir, "cifar-10-batches-bin")
	os.Mkdir(sub, 0o755)
	for i := 1; i <= 5; i++ {
		os.WriteFile(filepath.Join(sub, fmt.Sprintf("data_batch_%d.bin", i)), rec(byte(i), byte(i)), 0o644)
	}
	os.WriteFile(filepath.Join(sub, "test_batch.bin"), data, 0o644)
	sp, err := ParseSpec("cifar10:" + dir)
	if err != nil {
		t.Fatal(err)
	}
	tr, te, err := sp.Load(LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Len() != 5 || te.Len() != 3 || tr.Side() != 32 || tr.Channels() != 3 {
		t.Errorf("cifar10 dir: train %d, test %d, side %d", tr.Len(), te.Len(), tr.Side())
	}
	os.Remove(filepath.Join(sub, "data_batch_3.bin"))
	if _, _, err := sp.Load(LoadOptions{}); err == nil || !strings.Contains(err.Error(), "data_batch_3.bin") {
		t.Errorf("missing batch: %v", err)
	}
}

func TestMNISTJSON(t *testing.T) {
	im, err := ReadMNISTJSONDir("testdata/mnist-json")
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 12 || im.H != 28 || im.C != 1 || !slices.Equal(im.Labels, []byte{0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("got %d images, labels %v", im.N, im.Labels)
	}
	// The package's values are round(p/255, 3): 255·v is within 0.125 of an integer, so rounding is exact.
	raw, _ := os.ReadFile("testdata/mnist-json/3.json")
	var vals []float64
	for _, f := range strings.Split(strings.TrimSuffix(strings.TrimPrefix(string(raw), `{"data":[`), "]}"), ",") {
		var v float64
		fmt.Sscan(f, &v)
		vals = append(vals, v)
	}
	nonzero := 0
	for i, v := range vals {
		p := im.Image(5)[i]
		if math.Abs(255*v-float64(p)) > 0.125 || math.Abs(float64(p)/255-v) > 0.0005 {
			t.Fatalf("pixel %d: value %g → %d", i, v, p)
		}
		if p != 0 {
			nonzero++
		}
	}
	if nonzero < 50 {
		t.Errorf("digit 3 has only %d non-zero pixels", nonzero)
	}
	for _, c := range []struct{ data, want string }{
		{`{"data":[0.5]}`, "1 values is not a positive multiple of 28×28 = 784"},
		{`{"data":[]}`, "0 values"},
		{`{"x":[1]}`, `no "data" array`},
		{`{"data":null}`, `no "data" array`},
		{`[1,2]`, "not an mnist JSON digit file"},
		{`{"data":[1,2`, "not an mnist JSON digit file"},
		{`{"data":[0]} {}`, "trailing data"},
		{`{"data":[` + strings.Repeat("0,", 783) + `1.5]}`, "value 1.5 at index 783 (digit 0, pixel 783) is outside [0, 1]"},
		{`{"data":[` + strings.Repeat("0,", 783) + `-0.1]}`, "outside [0, 1]"},
	} {
		if _, err := DecodeMNISTJSON("d.json", []byte(c.data)); err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "images: d.json: ") {
			t.Errorf("%.30s: error %v, want %q", c.data, err, c.want)
		}
	}
	if _, err := ReadMNISTJSONDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no 0.json") {
		t.Errorf("empty dir: %v", err)
	}
}

func TestAreaTable(t *testing.T) {
	for _, c := range [][2]int{{178, 64}, {178, 32}, {64, 32}, {5, 3}, {3, 8}, {7, 7}} {
		tab := areaTable(c[0], c[1])
		cover := make([]float64, c[0])
		for o, aw := range tab {
			s := 0.0
			for j, w := range aw.w {
				s += w
				cover[aw.first+j] += w
			}
			if math.Abs(s-1) > 1e-12 {
				t.Errorf("%d→%d: output %d weights sum to %g", c[0], c[1], o, s)
			}
		}
		// Every source pixel contributes out/in of the total in all (area conservation).
		for k, v := range cover {
			if want := float64(c[1]) / float64(c[0]); math.Abs(v-want) > 1e-12 {
				t.Errorf("%d→%d: source %d covered %g, want %g", c[0], c[1], k, v, want)
			}
		}
	}
}

func TestFolder(t *testing.T) {
	dir := t.TempDir()
	// 40×20: red | green (centre 20×20) | blue.
	wide := image.NewRGBA(image.Rect(0, 0, 40, 20))
	for y := 0; y < 20; y++ {
		for x := 0; x < 40; x++ {
			c := color.RGBA{0, 200, 0, 255}
			if x < 10 {
				c = color.RGBA{255, 0, 0, 255}
			} else if x >= 30 {
				c = color.RGBA{0, 0, 255, 255}
			}
			wide.Set(x, y, c)
		}
	}
	// 4×4 grey checkerboard of 1-px squares 0/200 → 2×2 averages are 100.
	checker := image.NewGray(image.Rect(0, 0, 4, 4))
	for y := 0; y < 4; y++ {
		for x := 0; x < 4; x++ {
			checker.SetGray(x, y, color.Gray{uint8(200 * ((x + y) % 2))})
		}
	}
	write := func(name string, enc func(*os.File) error) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := enc(f); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	write("a.png", func(f *os.File) error { return png.Encode(f, wide) })
	write("b.PNG", func(f *os.File) error { return png.Encode(f, checker) })
	grey := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range grey.Pix {
		grey.Pix[i] = 128
	}
	write("c.jpg", func(f *os.File) error { return jpeg.Encode(f, grey, &jpeg.Options{Quality: 95}) })
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)

	im, err := ReadFolder(dir, FolderOptions{Size: 2})
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 3 || im.C != 3 || im.H != 2 || im.Validate() != nil {
		t.Fatalf("got %d×%d×%d", im.N, im.C, im.H)
	}
	if a := im.Image(0); !slices.Equal(a, []uint8{0, 0, 0, 0, 200, 200, 200, 200, 0, 0, 0, 0}) {
		t.Errorf("centre crop of the 40×20 image: %v, want all green (0,200,0)", a)
	}
	if b := im.Image(1); !slices.Equal(b, slices.Repeat([]uint8{100}, 12)) {
		t.Errorf("area average of the checkerboard: %v, want all 100", b)
	}
	for _, v := range im.Image(2) {
		if v < 126 || v > 130 {
			t.Errorf("grey JPEG: %v, want ≈128", im.Image(2))
			break
		}
	}
	g, err := ReadFolder(dir, FolderOptions{Size: 4, Channels: 1, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if g.N != 2 || g.C != 1 || g.Image(0)[5] != 117 { // luma of (0,200,0): 0.587·200 = 117.4
		t.Errorf("grey: N=%d C=%d pixel %d", g.N, g.C, g.Image(0)[5])
	}
	os.WriteFile(filepath.Join(dir, "d.jpeg"), []byte("\xff\xd8garbage"), 0o644)
	if _, err := ReadFolder(dir, FolderOptions{Size: 4}); err == nil || !strings.Contains(err.Error(), "d.jpeg") {
		t.Errorf("corrupt JPEG: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "d.jpeg"), []byte("GIF89a"), 0o644)
	if _, err := ReadFolder(dir, FolderOptions{Size: 4}); err == nil || !strings.Contains(err.Error(), "d.jpeg: neither PNG nor JPEG") {
		t.Errorf("GIF named .jpeg: %v", err)
	}
	if _, err := ReadFolder(t.TempDir(), FolderOptions{Size: 4}); err == nil || !strings.Contains(err.Error(), "no .png, .jpg or .jpeg files") {
		t.Errorf("empty folder: %v", err)
	}
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 300, 300)))
	if _, err := DecodeImage("big.png", buf.Bytes(), FolderOptions{Size: 4, MaxPixels: 1000}); err == nil || !strings.Contains(err.Error(), "300×300 pixels") {
		t.Errorf("oversized image: %v", err)
	}
}

func TestPadAndGrey(t *testing.T) {
	im := &Images{N: 2, C: 1, H: 28, W: 28, Pix: make([]uint8, 2*784)}
	for i := range im.Pix {
		im.Pix[i] = uint8(1 + i%250)
	}
	p, err := im.Pad(32)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < 2; n++ {
		for y := 0; y < 32; y++ {
			for x := 0; x < 32; x++ {
				got := p.Image(n)[y*32+x]
				want := uint8(0)
				if y >= 2 && y < 30 && x >= 2 && x < 30 {
					want = im.Image(n)[(y-2)*28+x-2]
				}
				if got != want {
					t.Fatalf("image %d (%d,%d): %d, want %d", n, y, x, got, want)
				}
			}
		}
	}
	if _, err := im.Pad(16); err == nil {
		t.Error("padding 28 to 16 succeeded")
	}
	rgb := &Images{N: 1, C: 3, H: 1, W: 2, Pix: []uint8{255, 0, 0, 255, 0, 0}}
	if g := rgb.Grey(); !slices.Equal(g.Pix, []uint8{76, 150}) { // 0.299·255 = 76.2, 0.587·255 = 149.7
		t.Errorf("grey %v", g.Pix)
	}
	if NextPow2(28) != 32 || NextPow2(32) != 32 || !IsPow2(64) || IsPow2(48) {
		t.Error("power-of-two helpers")
	}
}

func TestOrderResumes(t *testing.T) {
	o, _ := NewOrder(10, 7)
	all := make([]int, 35)
	o.Next(all[:13])
	o.Next(all[13:])
	for e := 0; e < 3; e++ {
		ep := slices.Clone(all[e*10 : e*10+10])
		slices.Sort(ep)
		if !slices.Equal(ep, seq(10)) {
			t.Errorf("epoch %d is not a permutation: %v", e, all[e*10:e*10+10])
		}
	}
	if slices.Equal(all[:10], all[10:20]) {
		t.Error("two epochs in the same order")
	}
	r, _ := NewOrder(10, 7)
	if err := r.SetPosition(13); err != nil {
		t.Fatal(err)
	}
	rest := make([]int, 22)
	r.Next(rest)
	if !slices.Equal(rest, all[13:]) || r.Position() != 35 || r.Epoch() != 3 {
		t.Errorf("resumed order %v, want %v", rest, all[13:])
	}
	d, _ := NewOrder(10, 8)
	other := make([]int, 10)
	d.Next(other)
	if slices.Equal(other, all[:10]) {
		t.Error("seeds 7 and 8 give the same order")
	}
	if r.SetPosition(-1) == nil {
		t.Error("negative position accepted")
	}
}

func TestDatasetBatch(t *testing.T) {
	im := &Images{N: 3, C: 1, H: 2, W: 2, Pix: []uint8{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}}
	d, err := NewDataset(im)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]uint8, 8)
	if err := d.Batch(dst, []int{2, 0}, []bool{true, false}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dst, []uint8{10, 9, 12, 11, 1, 2, 3, 4}) {
		t.Errorf("batch %v", dst)
	}
	if d.Batch(dst, []int{3, 0}, nil) == nil || d.Batch(dst[:3], []int{0}, nil) == nil {
		t.Error("bad batch accepted")
	}
	if _, err := NewDataset(&Images{N: 1, C: 1, H: 28, W: 28, Pix: make([]uint8, 784)}); err == nil {
		t.Error("28×28 dataset accepted")
	}
}

func TestSpec(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Spec
		err  string
	}{
		{"fashion-mnist", Spec{Kind: "fashion-mnist", Dir: DefaultFashionMNISTDir}, ""},
		{"fashion-mnist:/d", Spec{Kind: "fashion-mnist", Dir: "/d"}, ""},
		{"mnist-idx:a:b", Spec{Kind: "mnist-idx", Dir: "a:b"}, ""},
		{"mnist-json:x", Spec{Kind: "mnist-json", Dir: "x"}, ""},
		{"cifar10:c", Spec{Kind: "cifar10", Dir: "c"}, ""},
		{"folder:/celeba", Spec{Kind: "folder", Dir: "/celeba"}, ""},
		{"synthetic", Spec{Kind: "synthetic", N: 2048}, ""},
		{"synthetic:100", Spec{Kind: "synthetic", N: 100}, ""},
		{"synthetic:x", Spec{}, "positive image count"},
		{"folder", Spec{}, "folder needs a directory"},
		{"imagenet:/x", Spec{}, `unknown kind "imagenet"`},
	} {
		got, err := ParseSpec(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %+v %v, want %+v", c.in, got, err, c.want)
		}
		if back, _ := ParseSpec(got.String()); back != got {
			t.Errorf("%q: String %q does not parse back", c.in, got.String())
		}
	}

	sp, _ := ParseSpec("fashion-mnist:" + testFashion)
	tr, te, err := sp.Load(LoadOptions{Size: 32, TestFraction: -1})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Len() != 64 || te != nil || tr.Side() != 32 || tr.Channels() != 1 || tr.Images().Labels[0] != 9 {
		t.Errorf("fashion-mnist-64: %d images of %d, test %v", tr.Len(), tr.Side(), te)
	}
	tr, te, err = sp.Load(LoadOptions{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Len() != 58 || te.Len() != 6 || tr.Side() != 32 {
		t.Errorf("default split: %d/%d of side %d, want 58/6 of 32", tr.Len(), te.Len(), tr.Side())
	}
	if _, _, err := sp.Load(LoadOptions{Size: 16}); err == nil || !strings.Contains(err.Error(), "larger than the model size 16") {
		t.Errorf("size 16: %v", err)
	}
	if _, _, err := sp.Load(LoadOptions{Channels: 3}); err == nil || !strings.Contains(err.Error(), "grey") {
		t.Errorf("3 channels of grey data: %v", err)
	}
	if _, _, err := sp.Load(LoadOptions{Size: 48}); err == nil || !strings.Contains(err.Error(), "not a power of two") {
		t.Errorf("size 48: %v", err)
	}
	js, _ := ParseSpec("mnist-json:testdata/mnist-json")
	if tr, te, err := js.Load(LoadOptions{TestFraction: 0.25, Limit: 5}); err != nil || tr.Len() != 5 || te.Len() != 3 {
		t.Errorf("mnist-json: %v", err)
	}
	syn, _ := ParseSpec("synthetic:20")
	tr, _, err = syn.Load(LoadOptions{Size: 16, Channels: 1, TestFraction: -1})
	if err != nil || tr.Len() != 20 || tr.Channels() != 1 || tr.Side() != 16 {
		t.Errorf("synthetic: %v", err)
	}
	missing, _ := ParseSpec("mnist-idx:" + t.TempDir())
	if _, _, err := missing.Load(LoadOptions{}); err == nil || !strings.Contains(err.Error(), "no train-images-idx3-ubyte[.gz]") {
		t.Errorf("empty IDX dir: %v", err)
	}
}

func TestSynthetic(t *testing.T) {
	a, err := Synthetic(rand.New(rand.NewPCG(1, 2)), 4, 3, 32)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Synthetic(rand.New(rand.NewPCG(1, 2)), 4, 3, 32)
	c, _ := Synthetic(rand.New(rand.NewPCG(1, 3)), 4, 3, 32)
	if !bytes.Equal(a.Pix, b.Pix) || bytes.Equal(a.Pix, c.Pix) || a.Validate() != nil {
		t.Error("synthetic images are not a function of the seed")
	}
	// Every image spans most of the 0…255 range, and neighbouring pixels are correlated (structure at
	// coarse scales) but not equal (structure at fine scales).
	for n := 0; n < a.N; n++ {
		px := a.Image(n)[:1024]
		lo, hi := slices.Min(px), slices.Max(px)
		var corr, same float64
		for y := 0; y < 32; y++ {
			for x := 0; x < 32; x++ {
				d := math.Abs(float64(px[y*32+x]) - float64(px[y*32+(x+1)%32]))
				corr += d
				if d == 0 {
					same++
				}
			}
		}
		if hi-lo < 150 || corr/1024 > 40 || same > 512 {
			t.Errorf("image %d: range %d…%d, mean neighbour difference %.1f, %g equal neighbours", n, lo, hi, corr/1024, same)
		}
	}
	if _, err := Synthetic(rand.New(rand.NewPCG(1, 2)), 1, 2, 32); err == nil {
		t.Error("2 channels accepted")
	}
}
