package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"io"
	"math"
	"sort"
	"sync"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"rgflow/datasets/lattice"
	"rgflow/models/bulk"
)

const holographyUsage = `usage: rgflow holography RUNDIR [flags]

Bulk correlations of a trained lattice run: samples z from exp(−S_eff(z)), S_eff(z) = S(F⁻¹(z)) − ldj,
by bulk HMC (never from the prior, under which ⟨z_i z_j⟩ = δ_ij), bins ⟨z_i z_j⟩ by RG level and boundary
separation r (periodic Euclidean distance on the L×L grid, pairs of sites of the same level), and
turns them into a holographic distance d = d₀ − ξ ln|⟨z_i z_j⟩| with d₀ = 0, ξ = 1. Fits d = a + b ln r
by least squares (over all resolved bins with r ≥ 1, and per level) and reports R². The boundary
correlator G(r) = ⟨φ_i φ_j⟩ of the same samples mapped back to φ is reported beside it. Errors are batch
means over --batches batches per chain. --connected subtracts the per-site means first. --png plots d against ln r per level with the fit, and
−ln|G(r)| for comparison.

flags:
`

type holoFlags struct {
	trajectories, thermalize, chains, batches int
	seed                                      uint64
	traj, minSigma                            float64
	png                                       string
	asJSON, connected                         bool
	wc                                        weightChoice
}

func newHoloFlags(stderr io.Writer) (*flag.FlagSet, *holoFlags) {
	f := &holoFlags{}
	fs := flag.NewFlagSet("holography", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&f.trajectories, "trajectories", 1000, "bulk HMC trajectories per chain")
	fs.IntVar(&f.thermalize, "thermalize", 100, "warm-up trajectories per chain (step size tuned here)")
	fs.IntVar(&f.chains, "chains", 4, "independent chains")
	fs.IntVar(&f.batches, "batches", 10, "batches per chain for the batch-means errors")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed")
	fs.Float64Var(&f.traj, "traj-length", 1, "mean trajectory length in MD time")
	fs.Float64Var(&f.minSigma, "min-sigma", 2, "fit only bins whose |⟨z z⟩| exceeds this many standard errors")
	fs.StringVar(&f.png, "png", "", "plot d against ln r to this PNG file")
	fs.BoolVar(&f.asJSON, "json", false, "print one JSON object")
	fs.BoolVar(&f.connected, "connected", false, "connected correlators ⟨z_i z_j⟩ − ⟨z_i⟩⟨z_j⟩ (and the same for φ)")
	f.wc.register(fs, stderr)
	return fs, f
}

type holoReport struct {
	Run           string            `json:"run"`
	Step          int64             `json:"step"`
	Action        string            `json:"action"`
	L             int               `json:"L"`
	Sampler       string            `json:"sampler"`
	Chains        int               `json:"chains"`
	Trajectories  int               `json:"trajectories"`
	Acceptance    float64           `json:"acceptance"`
	GradEvals     int64             `json:"gradient_evals"`
	Connected     bool              `json:"connected"`
	Normalisation string            `json:"normalisation"`
	Bulk          []bulk.Bin        `json:"bulk"`
	Holo          []bulk.Holo       `json:"holographic"`
	Fit           bulk.Fit          `json:"fit"`
	FitPerLevel   map[int]bulk.Fit  `json:"fit_per_level"`
	Boundary      []bulk.Bin        `json:"boundary"`
	BoundaryFit   *bulk.Fit         `json:"boundary_fit,omitempty"`
	Errors        string            `json:"errors"`
	Extra         map[string]string `json:"notes,omitempty"`
}

func runHolography(args []string, stdout, stderr io.Writer) error {
	if helpRequested(args) {
		return printHelp(stdout, "holography")
	}
	fs, f := newHoloFlags(stderr)
	dir, err := runDirArg(fs, args, "holography")
	if err != nil {
		return err
	}
	switch {
	case f.trajectories < 2 || f.chains < 1 || f.thermalize < 0:
		return fmt.Errorf("holography: --trajectories=%d --chains=%d --thermalize=%d, want ≥ 2, ≥ 1, ≥ 0", f.trajectories, f.chains, f.thermalize)
	case f.batches < 2 || f.trajectories < f.batches:
		return fmt.Errorf("holography: --batches=%d, want 2 … --trajectories", f.batches)
	case !(f.traj > 0) || math.IsInf(f.traj, 0) || !(f.minSigma >= 0):
		return fmt.Errorf("holography: --traj-length=%v --min-sigma=%v, want a finite length > 0 and σ ≥ 0", f.traj, f.minSigma)
	}
	_, act, flow, store, step, err := loadLatticeRun(dir, "holography", f.wc)
	if err != nil {
		return err
	}
	ba, err := bulk.New(act, flow, store)
	if err != nil {
		return fmt.Errorf("holography: %w", err)
	}
	defer ba.Close()
	zs := make([][]float64, f.chains)
	xs := make([][]float64, f.chains)
	var mu sync.Mutex
	var decErr error
	run, err := lattice.RunHMC(context.Background(), ba, lattice.HMCConfig{
		Trajectories: f.trajectories, Thermalize: f.thermalize, Chains: f.chains, Seed: f.seed, TrajLength: f.traj,
	}, func(chain, k int, z []float64, s float64) {
		x, _, err := ba.Decode(z)
		if err != nil {
			mu.Lock()
			decErr = err
			mu.Unlock()
			return
		}
		zs[chain] = append(zs[chain], z...)
		xs[chain] = append(xs[chain], x...)
	})
	if err == nil {
		err = decErr
	}
	if err == nil {
		err = ba.Err()
	}
	if err != nil {
		return fmt.Errorf("holography: bulk HMC: %w", err)
	}
	C, L := flow.Channels, flow.L
	if f.connected {
		if err := bulk.Center(zs, C*L*L); err != nil {
			return fmt.Errorf("holography: %w", err)
		}
		if err := bulk.Center(xs, C*L*L); err != nil {
			return fmt.Errorf("holography: %w", err)
		}
	}
	bins, err := bulk.Correlations(zs, C, L, flow.Hier.LevelMap(), f.batches)
	if err != nil {
		return fmt.Errorf("holography: %w", err)
	}
	gb, err := bulk.Correlations(xs, C, L, nil, f.batches)
	if err != nil {
		return fmt.Errorf("holography: %w", err)
	}
	pts, fit, perLevel, err := bulk.HoloFit(bins, f.minSigma)
	if err != nil {
		return fmt.Errorf("holography: %w", err)
	}
	rep := holoReport{Run: dir, Step: step, Action: act.Name(), L: L, Sampler: "bulk-hmc", Chains: f.chains,
		Trajectories: f.trajectories, Acceptance: run.Acceptance(), GradEvals: ba.GradEvals(), Connected: f.connected,
		Normalisation: "d = d0 − xi·ln|<z_i z_j>| with d0 = 0, xi = 1; fit d = a + b·ln r over bins with r ≥ 1 and |<z z>| > min-sigma·err",
		Bulk:          bins, Holo: pts, Fit: fit, FitPerLevel: perLevel, Boundary: gb,
		Errors: fmt.Sprintf("batch means, %d batches per chain × %d chains", f.batches, f.chains)}
	if _, bf, _, err := bulk.HoloFit(gb, f.minSigma); err == nil {
		rep.BoundaryFit = &bf
	}
	if f.png != "" {
		if err := holoPlot(f.png, pts, fit, gb, f.minSigma, fmt.Sprintf("%s L=%d, step %d", act.Name(), L, step)); err != nil {
			return fmt.Errorf("holography: --png: %w", err)
		}
	}
	if f.asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	fmt.Fprintf(stdout, "bulk HMC on %s (step %d): %d chains × %d trajectories, acceptance %.3f, %d gradient evaluations\n",
		dir, step, f.chains, f.trajectories, rep.Acceptance, rep.GradEvals)
	fmt.Fprintf(stdout, "level  r       pairs  <z_i z_j>            d = −ln|<z z>|\n")
	for _, b := range bins {
		d := "—"
		if b.R >= 1 && math.Abs(b.Corr) > f.minSigma*b.Err {
			d = fmt.Sprintf("%.3f", -math.Log(math.Abs(b.Corr)))
		}
		fmt.Fprintf(stdout, "%5d  %-6.3f  %5d  %9.5f ± %-8.5f  %s\n", b.Level, b.R, b.Pairs, b.Corr, b.Err, d)
	}
	fmt.Fprintf(stdout, "fit d = a + b ln r over %d bins: a = %.4f, b = %.4f, R² = %.4f\n", fit.N, fit.A, fit.B, fit.R2)
	levels := make([]int, 0, len(perLevel))
	for l := range perLevel {
		levels = append(levels, l)
	}
	sort.Ints(levels)
	for _, l := range levels {
		p := perLevel[l]
		fmt.Fprintf(stdout, "  level %d: a = %.4f, b = %.4f, R² = %.4f (%d bins)\n", l, p.A, p.B, p.R2, p.N)
	}
	fmt.Fprintf(stdout, "boundary G(r):")
	for _, b := range gb {
		fmt.Fprintf(stdout, " r=%.3g: %.4f±%.4f", b.R, b.Corr, b.Err)
	}
	fmt.Fprintln(stdout)
	return nil
}

// holoPlot draws d = −ln|⟨z z⟩| against ln r, one colour per level, the fitted line, and −ln|G(r)|.
func holoPlot(path string, pts []bulk.Holo, fit bulk.Fit, boundary []bulk.Bin, minSigma float64, title string) error {
	p := plot.New()
	p.Title.Text = "holographic distance, " + title
	p.X.Label.Text = "ln r"
	p.Y.Label.Text = "d = −ln|⟨z_i z_j⟩|"
	byLevel := map[int]plotter.XYs{}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, h := range pts {
		x := math.Log(h.R)
		byLevel[h.Level] = append(byLevel[h.Level], plotter.XY{X: x, Y: h.D})
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	levels := make([]int, 0, len(byLevel))
	for l := range byLevel {
		levels = append(levels, l)
	}
	sort.Ints(levels)
	for i, l := range levels {
		s, err := plotter.NewScatter(byLevel[l])
		if err != nil {
			return err
		}
		s.GlyphStyle.Color = plotColor(i)
		s.GlyphStyle.Shape = draw.CircleGlyph{}
		s.GlyphStyle.Radius = vg.Points(3)
		p.Add(s)
		p.Legend.Add(fmt.Sprintf("bulk, level %d", l), s)
	}
	if hi > lo {
		line, err := plotter.NewLine(plotter.XYs{{X: lo, Y: fit.A + fit.B*lo}, {X: hi, Y: fit.A + fit.B*hi}})
		if err != nil {
			return err
		}
		line.Color = color.Black
		p.Add(line)
		p.Legend.Add(fmt.Sprintf("fit b=%.3f R²=%.3f", fit.B, fit.R2), line)
	}
	var g plotter.XYs
	for _, b := range boundary {
		if b.R >= 1 && math.Abs(b.Corr) > minSigma*b.Err {
			g = append(g, plotter.XY{X: math.Log(b.R), Y: -math.Log(math.Abs(b.Corr))})
		}
	}
	if len(g) > 0 {
		s, err := plotter.NewScatter(g)
		if err != nil {
			return err
		}
		s.GlyphStyle.Shape = draw.CrossGlyph{}
		s.GlyphStyle.Color = color.RGBA{R: 120, G: 120, B: 120, A: 255}
		p.Add(s)
		p.Legend.Add("boundary −ln|G(r)|", s)
	}
	p.Legend.Top = false // bottom right: d grows with r, so the lower right is the emptiest corner
	return p.Save(6*vg.Inch, 4.5*vg.Inch, path)
}

func plotColor(i int) color.Color {
	cs := []color.RGBA{{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}, {148, 103, 189, 255}, {140, 86, 75, 255}}
	return cs[i%len(cs)]
}
