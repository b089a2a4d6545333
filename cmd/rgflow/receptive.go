package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"

	"rgflow/layers"
	"rgflow/losses"
	"rgflow/models"
	"rgflow/models/bulk"
)

const receptiveUsage = `usage: rgflow receptive RUNDIR --png rf.png [--json] [flags]

Receptive fields of an image run: at the latents of image --image (encoded at the bin centres), the
Jacobian ∂x/∂z of the generation map through the graph (reverse mode, float64), and for one latent per RG
level (channel 0, the site of that level nearest the centre) the pixels it moves: the measured extent
(rows × columns of the smallest periodic window holding every pixel with |∂x/∂z_i| > --tol·max) beside
the causal cone's extent computed from the blocks of every layer. The measured extent can never exceed
the cone's. The PNG shows |∂x/∂z_i| per level (channel-summed, each panel scaled to its maximum).

flags:
`

type receptiveFlags struct {
	data, split, png string
	image, zoom      int
	tol              float64
	asJSON           bool
	wc               weightChoice
}

func newReceptiveFlags(stderr io.Writer) (*flag.FlagSet, *receptiveFlags) {
	f := &receptiveFlags{}
	fs := flag.NewFlagSet("receptive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.data, "data", "", "image data set (default: the run's)")
	fs.StringVar(&f.split, "split", "test", "test or train")
	fs.IntVar(&f.image, "image", 0, "index of the image whose latents are the expansion point")
	fs.Float64Var(&f.tol, "tol", 1e-6, "a pixel responds when |∂x/∂z_i| exceeds tol times the largest response")
	fs.StringVar(&f.png, "png", "", "write the response maps to this PNG file")
	fs.IntVar(&f.zoom, "zoom", 4, "pixel enlargement in the PNG")
	fs.BoolVar(&f.asJSON, "json", false, "print one JSON object")
	f.wc.register(fs, stderr)
	return fs, f
}

// receptiveLevel is one level's measured and theoretical receptive field.
type receptiveLevel struct {
	Level        int     `json:"level"`
	Site         [2]int  `json:"site"`
	MeasuredRows int     `json:"measured_rows"`
	MeasuredCols int     `json:"measured_cols"`
	MeasuredN    int     `json:"measured_pixels"`
	ConeRows     int     `json:"cone_rows"`
	ConeCols     int     `json:"cone_cols"`
	ConeN        int     `json:"cone_pixels"`
	MaxResponse  float64 `json:"max_response"`
	OutsideCone  float64 `json:"max_response_outside_cone"`
}

// levelSite is a site of the given level near the centre: (c, c) with c = L/2 + 2^ℓ below the top level
// (v₂(c) = ℓ) and c = L/2 at the top.
func levelSite(h layers.Hierarchy, level int) (int, int) {
	c := h.L / 2
	if level < h.Levels()-1 {
		c += 1 << level
	}
	return c, c
}

// receptiveFields measures, for one latent per level, the pixels that respond to it.
func receptiveFields(flow *models.Flow, store *layers.Store, z []float64, tol float64) ([]receptiveLevel, [][]float64, error) {
	J, err := bulk.Jacobian(flow, store, z, 256)
	if err != nil {
		return nil, nil, err
	}
	seq, err := layers.BlockSequence(flow.Bijector)
	if err != nil {
		return nil, nil, err
	}
	h, C, L := flow.Hier, flow.Channels, flow.L
	var out []receptiveLevel
	var maps [][]float64
	for l := 0; l < h.Levels(); l++ {
		i, j := levelSite(h, l)
		site := i*L + j
		if h.Level(i, j) != l {
			return nil, nil, fmt.Errorf("receptive: site (%d,%d) has level %d, want %d", i, j, h.Level(i, j), l)
		}
		inf, err := h.Influence(site, seq)
		if err != nil {
			return nil, nil, err
		}
		inCone := make([]bool, L*L)
		for _, s := range inf {
			inCone[s] = true
		}
		resp := make([]float64, L*L) // Σ over output channels of |∂x_{c,s}/∂z_{0,site}|
		for c := 0; c < C; c++ {
			for s := 0; s < L*L; s++ {
				resp[s] += math.Abs(J[c*L*L+s][site])
			}
		}
		mx, outside := 0.0, 0.0
		for s, v := range resp {
			mx = math.Max(mx, v)
			if !inCone[s] {
				outside = math.Max(outside, v)
			}
		}
		var hit []int
		for s, v := range resp {
			if v > tol*mx {
				hit = append(hit, s)
			}
		}
		r := receptiveLevel{Level: l, Site: [2]int{i, j}, MeasuredN: len(hit), ConeN: len(inf), MaxResponse: mx, OutsideCone: outside}
		r.MeasuredRows, r.MeasuredCols = h.Extent(hit)
		r.ConeRows, r.ConeCols = h.Extent(inf)
		out = append(out, r)
		maps = append(maps, resp)
	}
	return out, maps, nil
}

func runReceptive(args []string, stdout, stderr io.Writer) error {
	if helpRequested(args) {
		return printHelp(stdout, "receptive")
	}
	fs, f := newReceptiveFlags(stderr)
	dir, err := runDirArg(fs, args, "receptive")
	if err != nil {
		return err
	}
	if f.png == "" && !f.asJSON {
		return errors.New("receptive: say where to write: --png rf.png and/or --json")
	}
	if !(f.tol > 0 && f.tol < 1) || f.zoom < 1 || f.zoom > 16 {
		return fmt.Errorf("receptive: --tol=%v --zoom=%d, want 0 < tol < 1 and 1 ≤ zoom ≤ 16", f.tol, f.zoom)
	}
	run, flow, store, step, err := loadImageRun(dir, "receptive", f.wc)
	if err != nil {
		return err
	}
	set, err := run.Data.split(f.data, f.split, run.Train.Seed, "receptive")
	if err != nil {
		return err
	}
	if f.image < 0 || f.image >= set.Len() {
		return fmt.Errorf("receptive: --image %d outside the %s split (0 … %d)", f.image, f.split, set.Len()-1)
	}
	dim := set.Dim()
	pix := make([]uint8, dim)
	if err := set.Batch(pix, []int{f.image}, nil); err != nil {
		return fmt.Errorf("receptive: %w", err)
	}
	y := make([]float64, dim)
	if err := (losses.Preprocess{Fixed: true, U: 0.5}).Apply(nil, pix, dim, y, make([]float64, 1)); err != nil {
		return fmt.Errorf("receptive: %w", err)
	}
	enc, err := models.NewEncoder(flow, store, 1)
	if err != nil {
		return err
	}
	z, _, err := enc.Encode(y)
	enc.Close()
	if err != nil {
		return fmt.Errorf("receptive: %w", err)
	}
	levels, maps, err := receptiveFields(flow, store, z, f.tol)
	if err != nil {
		return fmt.Errorf("receptive: %w", err)
	}
	if f.png != "" {
		L := flow.L
		grid := make([]uint8, 0, len(maps)*L*L)
		for _, m := range maps {
			mx := 0.0
			for _, v := range m {
				mx = math.Max(mx, v)
			}
			for _, v := range m {
				g := 0.0
				if mx > 0 {
					g = v / mx
				}
				grid = append(grid, uint8(math.Round(255*math.Sqrt(g)))) // square root: faint tails visible
			}
		}
		if err := writeGrid(f.png, grid, len(maps), 1, L, f.zoom); err != nil {
			return fmt.Errorf("receptive: %w", err)
		}
	}
	if f.asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"run": dir, "step": step, "image": f.image, "tol": f.tol, "levels": levels})
	}
	fmt.Fprintf(stdout, "receptive fields of %s (step %d) at the latents of %s image %d:\n", dir, step, f.split, f.image)
	fmt.Fprintf(stdout, "level  site      measured (|∂x/∂z| > %g·max)   causal cone          max |∂x/∂z|\n", f.tol)
	for _, r := range levels {
		fmt.Fprintf(stdout, "%5d  (%2d,%2d)   %3d×%-3d (%4d px)            %3d×%-3d (%4d px)   %.4g\n", r.Level, r.Site[0], r.Site[1],
			r.MeasuredRows, r.MeasuredCols, r.MeasuredN, r.ConeRows, r.ConeCols, r.ConeN, r.MaxResponse)
	}
	return nil
}
