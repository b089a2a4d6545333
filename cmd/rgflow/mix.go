package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"rgflow/losses"
	"rgflow/models"
	"rgflow/models/bulk"
)

const mixUsage = `usage: rgflow mix RUNDIR --a I --b J --png mix.png [flags]

Feature mixing on an image run: encodes images A and B (indices into --split, dequantised at the bin
centres), and for every cut h = 0 … n (n RG levels) decodes the latents that take levels ≥ h from A and
levels < h from B, and the reverse (≥ h from B, < h from A). h = 0 gives A back, h = n gives B; in
between, the coarse structure (high levels) of one image meets the fine detail (low levels) of the
other. The PNG grid holds, in order: A, B, the mixes for h = 0 … n, then the reverse mixes for h = 0 … n.
With --interpolate N it holds instead N images decoded along the straight line from z_A to z_B.
--json prints, for every cut, how many pixel values equal A's and B's.

flags:
`

type mixFlags struct {
	data, split, png string
	a, b, interp     int
	zoom             int
	asJSON           bool
	wc               weightChoice
}

func newMixFlags(stderr io.Writer) (*flag.FlagSet, *mixFlags) {
	f := &mixFlags{}
	fs := flag.NewFlagSet("mix", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.data, "data", "", "image data set (default: the run's)")
	fs.StringVar(&f.split, "split", "test", "test or train")
	fs.IntVar(&f.a, "a", 0, "index of image A in the split")
	fs.IntVar(&f.b, "b", 1, "index of image B in the split")
	fs.IntVar(&f.interp, "interpolate", 0, "decode this many points on the line from z_A to z_B instead of mixing (≥ 2)")
	fs.StringVar(&f.png, "png", "", "write the grid to this PNG file")
	fs.IntVar(&f.zoom, "zoom", 4, "pixel enlargement in the PNG")
	fs.BoolVar(&f.asJSON, "json", false, "print one JSON object")
	f.wc.register(fs, stderr)
	return fs, f
}

type mixCut struct {
	H          int `json:"h"`
	EqualA     int `json:"equal_a"` // pixel values of the mix (≥ h from A) equal to A's
	EqualB     int `json:"equal_b"`
	RevEqualA  int `json:"reverse_equal_a"` // the reverse mix (≥ h from B)
	RevEqualB  int `json:"reverse_equal_b"`
	PixelCount int `json:"pixels"`
}

func runMix(args []string, stdout, stderr io.Writer) error {
	if helpRequested(args) {
		return printHelp(stdout, "mix")
	}
	fs, f := newMixFlags(stderr)
	dir, err := runDirArg(fs, args, "mix")
	if err != nil {
		return err
	}
	if f.png == "" && !f.asJSON {
		return errors.New("mix: say where to write: --png mix.png and/or --json")
	}
	if f.zoom < 1 || f.zoom > 16 || f.interp == 1 || f.interp < 0 {
		return fmt.Errorf("mix: --zoom=%d --interpolate=%d, want 1 ≤ zoom ≤ 16 and interpolate 0 or ≥ 2", f.zoom, f.interp)
	}
	run, flow, store, _, err := loadImageRun(dir, "mix", f.wc)
	if err != nil {
		return err
	}
	set, err := run.Data.split(f.data, f.split, run.Train.Seed, "mix")
	if err != nil {
		return err
	}
	for _, i := range []int{f.a, f.b} {
		if i < 0 || i >= set.Len() {
			return fmt.Errorf("mix: image index %d outside the %s split (0 … %d)", i, f.split, set.Len()-1)
		}
	}
	dim := set.Dim()
	pix := make([]uint8, 2*dim)
	if err := set.Batch(pix, []int{f.a, f.b}, nil); err != nil {
		return fmt.Errorf("mix: %w", err)
	}
	y := make([]float64, len(pix))
	if err := (losses.Preprocess{Fixed: true, U: 0.5}).Apply(nil, pix, dim, y, make([]float64, 2)); err != nil {
		return fmt.Errorf("mix: %w", err)
	}
	enc, err := models.NewEncoder(flow, store, 2)
	if err != nil {
		return err
	}
	defer enc.Close()
	z, _, err := enc.Encode(y)
	if err != nil {
		return fmt.Errorf("mix: %w", err)
	}
	za, zb := z[:dim], z[dim:]
	var zs [][]float64
	n := flow.Hier.Levels()
	if f.interp > 0 {
		for k := 0; k < f.interp; k++ {
			t := float64(k) / float64(f.interp-1)
			v := make([]float64, dim)
			for i := range v {
				v[i] = (1-t)*za[i] + t*zb[i]
			}
			zs = append(zs, v)
		}
	} else {
		for _, pair := range [][2][]float64{{za, zb}, {zb, za}} {
			for h := 0; h <= n; h++ {
				m, err := bulk.MixLevels(flow.Hier, flow.Channels, pair[0], pair[1], h)
				if err != nil {
					return fmt.Errorf("mix: %w", err)
				}
				zs = append(zs, m)
			}
		}
	}
	sm, err := models.NewSampler(flow, store, len(zs))
	if err != nil {
		return err
	}
	defer sm.Close()
	flat := make([]float64, 0, len(zs)*dim)
	for _, v := range zs {
		flat = append(flat, v...)
	}
	x, _, err := sm.Decode(flat)
	if err != nil {
		return fmt.Errorf("mix: %w", err)
	}
	out := make([]uint8, len(x))
	losses.Preprocess{}.Pixels(out, x)
	var cuts []mixCut
	if f.interp == 0 {
		count := func(img, ref []uint8) int {
			e := 0
			for i := range img {
				if img[i] == ref[i] {
					e++
				}
			}
			return e
		}
		pa, pb := pix[:dim], pix[dim:]
		for h := 0; h <= n; h++ {
			m, r := out[h*dim:(h+1)*dim], out[(n+1+h)*dim:(n+2+h)*dim]
			cuts = append(cuts, mixCut{H: h, EqualA: count(m, pa), EqualB: count(m, pb),
				RevEqualA: count(r, pa), RevEqualB: count(r, pb), PixelCount: dim})
		}
	}
	if f.png != "" {
		grid := out
		count := len(zs)
		if f.interp == 0 {
			grid = append(append([]uint8{}, pix...), out...)
			count += 2
		}
		if err := writeGrid(f.png, grid, count, flow.Channels, flow.L, f.zoom); err != nil {
			return fmt.Errorf("mix: %w", err)
		}
	}
	if f.asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"run": dir, "a": f.a, "b": f.b, "levels": n,
			"interpolate": f.interp, "cuts": cuts, "png": f.png})
	}
	if f.interp > 0 {
		fmt.Fprintf(stdout, "decoded %d points from z_A (image %d) to z_B (image %d) → %s\n", f.interp, f.a, f.b, f.png)
		return nil
	}
	for _, c := range cuts {
		fmt.Fprintf(stdout, "h=%d: mix (≥h from A) matches A in %d/%d pixel values, B in %d; reverse matches A in %d, B in %d\n",
			c.H, c.EqualA, dim, c.EqualB, c.RevEqualA, c.RevEqualB)
	}
	fmt.Fprintf(stdout, "grid (A, B, mixes h=0…%d, reverse mixes h=0…%d) → %s\n", n, n, f.png)
	return nil
}
