package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"rgflow/datasets/images"
)

const makeDataUsage = `usage: rgflow make-data faces --n N --out DIR [--seed S] [--png grid.png]

Writes N synthetic CelebA-style faces in CelebA's layout: DIR/img_align_celeba/000001.jpg … (178×218
RGB JPEGs) and DIR/list_eval_partition.txt (the first 80 % train, the next 10 % valid, the last 10 %
test). Each face's coarse factors (head size and aspect, skin, background and shirt colour, pose: rotation,
offset, light) and fine factors (eye size, spacing and colour, mouth width and curvature, lip colour, hair
colour, texture, length and fringe) are drawn independently from the seed; the same seed writes the same
files. Read them with --data celeba:DIR (or celeba:DIR:32).

flags:
`

type makeDataFlags struct {
	fs       *flag.FlagSet
	n        int
	out, png string
	seed     uint64
	workers  int
}

func newMakeDataFlags(stderr io.Writer) *makeDataFlags {
	f := &makeDataFlags{fs: flag.NewFlagSet("make-data faces", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), makeDataUsage); fs.PrintDefaults() }
	fs.IntVar(&f.n, "n", 2000, "number of faces")
	fs.StringVar(&f.out, "out", "", "output directory (created)")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed")
	fs.StringVar(&f.png, "png", "", "also write the first (up to 64) faces, read back at 32×32, as a PNG grid")
	registerWorkers(fs, &f.workers, "goroutines rendering faces (the files do not depend on it)")
	return f
}

func runMakeData(args []string, stdout, stderr io.Writer) error {
	if helpRequested(args) {
		return printHelp(stdout, "make-data")
	}
	if len(args) == 0 || args[0] != "faces" {
		return errors.New("make-data: say what to make: rgflow make-data faces --n N --out DIR")
	}
	f := newMakeDataFlags(stderr)
	if err := f.fs.Parse(args[1:]); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("make-data faces: unexpected argument %q (flags only)", f.fs.Arg(0))
	}
	if f.out == "" {
		return errors.New("make-data faces: --out DIR is required")
	}
	if f.n < 1 || f.n > 999999 {
		return fmt.Errorf("make-data faces: --n=%d, want 1…999999", f.n)
	}
	if err := checkWorkers("make-data faces", f.workers); err != nil {
		return err
	}
	start := time.Now()
	if err := images.WriteFaces(f.out, f.n, f.seed, f.workers); err != nil {
		return fmt.Errorf("make-data faces: %w", err)
	}
	tr, va, te := 0, 0, 0
	for i := 0; i < f.n; i++ {
		switch images.FacesSplit(i, f.n) {
		case images.CelebATrain:
			tr++
		case images.CelebAValid:
			va++
		default:
			te++
		}
	}
	fmt.Fprintf(stdout, "wrote %d faces (seed %d) to %s in %.1fs: %d train, %d valid, %d test; read them with --data celeba:%s\n",
		f.n, f.seed, f.out, time.Since(start).Seconds(), tr, va, te, f.out)
	if f.png != "" {
		train, _, _, err := images.ReadCelebA(f.out, images.CelebAOptions{Size: 32, Limit: 64})
		if err != nil {
			return fmt.Errorf("make-data faces: %w", err)
		}
		if err := writeGrid(f.png, train.Pix, train.N, 3, 32, 2); err != nil {
			return fmt.Errorf("make-data faces: %w", err)
		}
		fmt.Fprintf(stdout, "grid of the first %d training faces at 32×32: %s\n", train.N, f.png)
	}
	return nil
}
