package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/models/diffusion"
)

const flowUsage = `usage: rgflow flow RUNDIR [flags]

Measures a diffusion run along RG time t (a grid from 0 to the process's end T): the renormalized mass
m_R(t), field normalisation Z(t), coupling λ_R(t) and ⟨max_x |φ_x|⟩ (definitions in the doc of
diffusion.MeasureRenormalized) for
  forward  the exact forward process started from HMC samples (the run's --data file, or fresh HMC chains),
  reverse  the learned reverse process (the states of its trajectory, from the prior at T, at the same t),
  gaussian the exact values of the Gaussian with the data's spectrum pushed through the process (for a free
           field: the exact free flow),
and, for an effective-action score, its couplings f_i(t) beside the local projection of the exact free
action. --json prints them, --png plots them.
`

// flowFlags are the flags of rgflow flow.
type flowFlags struct {
	fs      *flag.FlagSet
	n       int
	points  int
	nfe     int
	batch   int
	sampler string
	data    string
	png     string
	seed    uint64
	asJSON  bool
	snr     float64
	wc      weightChoice
}

func newFlowFlags(stderr io.Writer) *flowFlags {
	f := &flowFlags{fs: flag.NewFlagSet("flow", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(stderr)
	fs.IntVar(&f.n, "n", 1000, "samples per ensemble (forward and reverse)")
	fs.IntVar(&f.points, "points", 9, "times t = T·i/(points−1), i = 0 … points−1")
	fs.IntVar(&f.nfe, "nfe", 200, "score evaluations of the reverse process from T to 0 (em: steps; pc: 2 per step; ode: RK4, 4 per step), spread over the intervals by length")
	fs.IntVar(&f.batch, "batch", 256, "samples per forward graph of the score network")
	fs.StringVar(&f.sampler, "sampler", "em", "reverse process: em, pc (predictor–corrector), ancestral (exact-Gaussian posterior steps: exact for a Gaussian at any step count) or ode (probability flow, RK4)")
	fs.Float64Var(&f.snr, "snr", 0.16, "pc: the corrector's signal-to-noise ratio")
	fs.StringVar(&f.data, "data", "", "HMC samples (phi (N, C, L, L) .npz) that start the forward process (default: the run's --data; fresh HMC chains for a run trained on --chains)")
	fs.StringVar(&f.png, "png", "", "plot m_R, Z, λ_R, max|φ| (and the couplings) against t into this PNG file")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed")
	fs.BoolVar(&f.asJSON, "json", false, "print one JSON object")
	f.wc.register(fs, stderr)
	return f
}

// flowSeries are the measurements of one ensemble at every t: [value, error] pairs.
type flowSeries struct {
	MR      [][2]jsonNum `json:"m_R"`
	Z       [][2]jsonNum `json:"Z"`
	LambdaR [][2]jsonNum `json:"lambda_R"`
	Chi     [][2]jsonNum `json:"chi"`
	MaxAbs  [][2]jsonNum `json:"max_abs_phi"`
}

func (s *flowSeries) add(r diffusion.Renormalized) {
	p := func(e lattice.Estimate) [2]jsonNum { return [2]jsonNum{jsonNum(e.Value), jsonNum(e.Err)} }
	s.MR, s.Z, s.LambdaR = append(s.MR, p(r.MR)), append(s.Z, p(r.Z)), append(s.LambdaR, p(r.LambdaR))
	s.Chi, s.MaxAbs = append(s.Chi, p(r.Chi)), append(s.MaxAbs, p(r.MaxAbs))
}

// gaussianSeries are exact values (no error).
type gaussianSeries struct {
	Source string    `json:"source"`
	MR     []jsonNum `json:"m_R"`
	Z      []jsonNum `json:"Z"`
	Chi    []jsonNum `json:"chi"`
}

// flowReport is the --json output of rgflow flow.
type flowReport struct {
	Run      string         `json:"run"`
	Step     int64          `json:"step"`
	Process  string         `json:"process"`
	T        []float64      `json:"t"`
	N        int            `json:"n"`
	Sampler  string         `json:"sampler"`
	NFE      int            `json:"nfe"`
	Start    string         `json:"forward_start"`
	Forward  flowSeries     `json:"forward"`
	Reverse  flowSeries     `json:"reverse"`
	Gaussian gaussianSeries `json:"gaussian"`
	// Couplings (effective-action runs): learned f_i(t) and, for a free field, the exact projection.
	Couplings []couplingReport `json:"couplings,omitempty"`
	Seconds   float64          `json:"seconds"`
}

func runFlow(args []string, stdout, stderr io.Writer) error {
	const cmd = "flow"
	if helpRequested(args) {
		return printHelp(stdout, cmd)
	}
	f := newFlowFlags(stderr)
	dir, err := runDirArg(f.fs, args, cmd)
	if err != nil {
		return err
	}
	switch {
	case f.n < 4:
		return fmt.Errorf("%s: --n=%d, want ≥ 4", cmd, f.n)
	case f.points < 2:
		return fmt.Errorf("%s: --points=%d, want ≥ 2 (t = 0 and T at least)", cmd, f.points)
	case f.batch < 1:
		return fmt.Errorf("%s: --batch=%d, want ≥ 1", cmd, f.batch)
	case f.sampler != "em" && f.sampler != "pc" && f.sampler != "ode" && f.sampler != "ancestral":
		return fmt.Errorf("%s: --sampler %q, want em, pc, ancestral or ode", cmd, f.sampler)
	}
	perStep := map[string]int{"em": 1, "pc": 2, "ode": 4, "ancestral": 1}[f.sampler]
	if f.nfe < perStep*(f.points-1) {
		return fmt.Errorf("%s: --nfe=%d is too small: %s needs %d per step and at least one step per interval (%d intervals)", cmd, f.nfe, f.sampler, perStep, f.points-1)
	}
	if !isDiffusionRun(dir) {
		return fmt.Errorf("%s: %s holds no diffusion run (rgflow flow measures runs of rgflow train diffusion)", cmd, dir)
	}
	run, act, net, store, step, err := loadDiffusionRun(dir, cmd, f.wc.ema)
	if err != nil {
		return err
	}
	start := time.Now()
	sde := net.Process()
	lat := sde.Lattice()
	C, L, V := net.Channels(), run.Physics.L, lat.V
	T := sde.T()
	ts := make([]float64, f.points)
	for i := range ts {
		ts[i] = T * float64(i) / float64(f.points-1)
	}
	ts[len(ts)-1] = T

	// (a) exact forward process from HMC samples.
	var x0 []float64
	var src string
	chains := 1 // of the starting samples, for the error analysis
	switch {
	case f.data != "" || run.Data != "":
		path := f.data
		if path == "" {
			path = run.Data
		}
		all, n, err := readLatticeSamples(path, C, L, cmd)
		if err != nil {
			return err
		}
		x0 = make([]float64, 0, min(n, f.n)*C*V)
		stride := max(1, n/f.n) // spread over the file: consecutive HMC samples are correlated
		for i := 0; i < n && len(x0) < f.n*C*V; i += stride {
			x0 = append(x0, all[i*C*V:(i+1)*C*V]...)
		}
		src = fmt.Sprintf("%s (%d samples, every %d)", path, len(x0)/(C*V), stride)
	default:
		if x0, src, chains, err = heldOutSamples(run, act, lat, f.n, f.seed); err != nil {
			return fmt.Errorf("%s: HMC samples: %w", cmd, err)
		}
	}
	if len(x0)/(C*V) < 4 {
		return fmt.Errorf("%s: %d starting samples, want ≥ 4", cmd, len(x0)/(C*V))
	}
	rep := &flowReport{Run: dir, Step: step, Process: sde.Name(), T: ts, N: f.n, Sampler: f.sampler, Start: src}
	rng := rand.New(rand.NewPCG(f.seed, 0xf10))
	x := append([]float64(nil), x0...)
	for i, t := range ts {
		if i > 0 {
			if err := diffusion.Perturb(sde, ts[i-1], t, x, x, rng); err != nil {
				return fmt.Errorf("%s: %w", cmd, err)
			}
		}
		r, err := diffusion.MeasureRenormalized(lat, C, x, chains)
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		rep.Forward.add(r)
	}

	// (b) the learned reverse process, recorded at the same t.
	score, closeScore, err := hostScore(net, store, min(f.batch, f.n))
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	defer closeScore()
	prior, err := diffusion.Prior(sde, run.V0)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	y := make([]float64, f.n*C*V)
	if err := prior.Sample(rng, y); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	rev := make([]diffusion.Renormalized, len(ts))
	steps := f.nfe / perStep
	for i := len(ts) - 1; i >= 0; i-- {
		if i < len(ts)-1 {
			k := max(1, int(math.Round(float64(steps)*(ts[i+1]-ts[i])/T)))
			var nfe int
			switch f.sampler {
			case "em":
				nfe, err = diffusion.ReverseSDE(sde, score, y, ts[i+1], ts[i], k, 0, 0, rng)
			case "pc":
				nfe, err = diffusion.ReverseSDE(sde, score, y, ts[i+1], ts[i], k, f.snr, 1, rng)
			case "ode":
				nfe, err = diffusion.ProbabilityFlowRK4(sde, score, y, ts[i+1], ts[i], k)
			case "ancestral":
				nfe, err = diffusion.Ancestral(sde, score, run.V0, y, ts[i+1], ts[i], k, rng)
			}
			if err != nil {
				return fmt.Errorf("%s: %s from t=%g to %g: %w", cmd, f.sampler, ts[i+1], ts[i], err)
			}
			rep.NFE += nfe
		}
		if rev[i], err = diffusion.MeasureRenormalized(lat, C, y, 1); err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
	}
	for _, r := range rev {
		rep.Reverse.add(r)
	}

	// Exact Gaussian flow.
	v0, gsrc := run.V0, "the Gaussian with the data's spectrum"
	if run.Physics.Action == "free" && run.Physics.M2 > 0 {
		if v0, err = lat.FreeVariance(run.Physics.M2); err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		gsrc = "the exact free field"
	}
	rep.Gaussian.Source = gsrc
	v := make([]float64, V)
	for _, t := range ts {
		if err := diffusion.MarginalVariance(sde, t, v0, v); err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		mR, Z, err := diffusion.GaussianRenormalized(lat, C, v)
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		rep.Gaussian.MR, rep.Gaussian.Z = append(rep.Gaussian.MR, jsonNum(mR)), append(rep.Gaussian.Z, jsonNum(Z))
		rep.Gaussian.Chi = append(rep.Gaussian.Chi, jsonNum(float64(C)*v[0]))
	}
	if e := effectivePart(net); e != nil {
		if rep.Couplings, err = couplingsAt(e, store, run, ts); err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	if f.png != "" {
		if err := plotFlow(rep, f.png); err != nil {
			return fmt.Errorf("%s: --png: %w", cmd, err)
		}
	}
	if f.asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	printFlow(stdout, rep)
	if f.png != "" {
		fmt.Fprintf(stdout, "wrote %s\n", f.png)
	}
	return nil
}

// couplingsAt reports the learned couplings at ts and, for a free field, the exact projection.
func couplingsAt(e *diffusion.EffectiveScore, store *layers.Store, run *diffusionRun, ts []float64) ([]couplingReport, error) {
	f, err := e.CouplingsAt(store, ts)
	if err != nil {
		return nil, err
	}
	var v0 []float64
	if run.Physics.Action == "free" && run.Physics.M2 > 0 {
		if v0, err = e.SDE.Lattice().FreeVariance(run.Physics.M2); err != nil {
			return nil, err
		}
	}
	out := make([]couplingReport, len(ts))
	for i, t := range ts {
		out[i] = couplingReport{T: t, F: [5]jsonNum{jsonNum(f[i][0]), jsonNum(f[i][1]), jsonNum(f[i][2]), jsonNum(f[i][3]), jsonNum(f[i][4])}}
		if v0 != nil {
			f1, f3, f4, err := diffusion.GaussianCouplings(e.SDE, v0, t)
			if err != nil {
				return nil, err
			}
			out[i].Free = [5]jsonNum{jsonNum(f1), 0, jsonNum(f3), jsonNum(f4), 0}
		}
	}
	return out, nil
}

func printFlow(w io.Writer, r *flowReport) {
	fmt.Fprintf(w, "%s (step %d), %s process, %d samples per ensemble; forward from %s; reverse by %s with %d score evaluations; %.1fs\n",
		r.Run, r.Step, r.Process, r.N, r.Start, r.Sampler, r.NFE, r.Seconds)
	pm := func(v [2]jsonNum) string {
		return fmt.Sprintf("%s ± %s", fmtNum(float64(v[0])), fmtNum(float64(v[1])))
	}
	fmt.Fprintf(w, "%-7s %-22s %-22s %-9s %-22s %-22s %-9s %-20s %-20s\n", "t", "m_R forward", "m_R reverse", "m_R "+"gauss",
		"Z forward", "Z reverse", "Z gauss", "λ_R forward", "λ_R reverse")
	for i, t := range r.T {
		fmt.Fprintf(w, "%-7.4g %-22s %-22s %-9s %-22s %-22s %-9s %-20s %-20s\n", t, pm(r.Forward.MR[i]), pm(r.Reverse.MR[i]), fmtNum(float64(r.Gaussian.MR[i])),
			pm(r.Forward.Z[i]), pm(r.Reverse.Z[i]), fmtNum(float64(r.Gaussian.Z[i])), pm(r.Forward.LambdaR[i]), pm(r.Reverse.LambdaR[i]))
	}
	fmt.Fprintf(w, "max|φ| forward / reverse:")
	for i := range r.T {
		fmt.Fprintf(w, " %s/%s", fmtNum(float64(r.Forward.MaxAbs[i][0])), fmtNum(float64(r.Reverse.MaxAbs[i][0])))
	}
	fmt.Fprintln(w)
	for _, c := range r.Couplings {
		fmt.Fprintf(w, "  t=%-6.3g f(φ², φ⁴, (∇φ)², M²/V, M⁴/V³) = %s, %s, %s, %s, %s", c.T,
			fmtNum(float64(c.F[0])), fmtNum(float64(c.F[1])), fmtNum(float64(c.F[2])), fmtNum(float64(c.F[3])), fmtNum(float64(c.F[4])))
		if c.Free != [5]jsonNum{} {
			fmt.Fprintf(w, "   free projection %s, 0, %s, %s, 0", fmtNum(float64(c.Free[0])), fmtNum(float64(c.Free[2])), fmtNum(float64(c.Free[3])))
		}
		fmt.Fprintln(w)
	}
}

// errPoints are points with symmetric y errors for plotter.NewYErrorBars.
type errPoints struct {
	plotter.XYs
	plotter.YErrors
}

// series adds one measured curve (points, line and error bars; NaN points skipped) to p.
func series(p *plot.Plot, ts []float64, v [][2]jsonNum, col color.Color, name string) error {
	var e errPoints
	for i, t := range ts {
		y, d := float64(v[i][0]), float64(v[i][1])
		if math.IsNaN(y) || math.IsInf(y, 0) {
			continue
		}
		if math.IsNaN(d) || math.IsInf(d, 0) {
			d = 0
		}
		e.XYs = append(e.XYs, plotter.XY{X: t, Y: y})
		e.YErrors = append(e.YErrors, struct{ Low, High float64 }{d, d})
	}
	if len(e.XYs) == 0 {
		return nil
	}
	l, s, err := plotter.NewLinePoints(e.XYs)
	if err != nil {
		return err
	}
	l.Color, s.Color = col, col
	b, err := plotter.NewYErrorBars(e)
	if err != nil {
		return err
	}
	b.Color = col
	p.Add(l, s, b)
	p.Legend.Add(name, l, s)
	return nil
}

// exactLine adds a dashed curve of exact values.
func exactLine(p *plot.Plot, ts []float64, v []jsonNum, col color.Color, name string) error {
	var xy plotter.XYs
	for i, t := range ts {
		if y := float64(v[i]); !math.IsNaN(y) && !math.IsInf(y, 0) {
			xy = append(xy, plotter.XY{X: t, Y: y})
		}
	}
	if len(xy) == 0 {
		return nil
	}
	l, err := plotter.NewLine(xy)
	if err != nil {
		return err
	}
	l.Color, l.Dashes = col, []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

var (
	colForward = color.RGBA{B: 200, A: 255}
	colReverse = color.RGBA{R: 200, A: 255}
	colExact   = color.RGBA{A: 255}
)

// plotFlow draws the report: m_R, Z, λ_R, max|φ| (and the couplings for an effective score) against t.
func plotFlow(r *flowReport, path string) error {
	panel := func(title string) *plot.Plot {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = "t"
		p.Legend.Top = true
		return p
	}
	mr, z, lr, mx := panel("m_R(t)"), panel("Z(t)"), panel("λ_R(t)"), panel("⟨max |φ|⟩(t)")
	for _, s := range []struct {
		p *plot.Plot
		f func(flowSeries) [][2]jsonNum
		g []jsonNum
	}{
		{mr, func(s flowSeries) [][2]jsonNum { return s.MR }, r.Gaussian.MR},
		{z, func(s flowSeries) [][2]jsonNum { return s.Z }, r.Gaussian.Z},
		{lr, func(s flowSeries) [][2]jsonNum { return s.LambdaR }, nil},
		{mx, func(s flowSeries) [][2]jsonNum { return s.MaxAbs }, nil},
	} {
		if err := series(s.p, r.T, s.f(r.Forward), colForward, "exact forward"); err != nil {
			return err
		}
		if err := series(s.p, r.T, s.f(r.Reverse), colReverse, "learned reverse"); err != nil {
			return err
		}
		if s.g != nil {
			if err := exactLine(s.p, r.T, s.g, colExact, "Gaussian"); err != nil {
				return err
			}
		}
	}
	rows := [][]*plot.Plot{{mr, z}, {lr, mx}}
	if len(r.Couplings) > 0 {
		cp := panel("couplings f_i(t)")
		names := []string{"f₁ φ²", "f₂ φ⁴", "f₃ (grad φ)²", "f₄ M²/V", "f₅ M⁴/V³"}
		cols := []color.Color{color.RGBA{R: 200, A: 255}, color.RGBA{G: 150, A: 255}, color.RGBA{B: 200, A: 255}, color.RGBA{R: 150, B: 150, A: 255}, color.RGBA{R: 200, G: 120, A: 255}}
		for k := range 5 {
			learned := make([][2]jsonNum, len(r.T))
			exact := make([]jsonNum, len(r.T))
			for i, c := range r.Couplings {
				learned[i] = [2]jsonNum{c.F[k], 0}
				exact[i] = c.Free[k]
			}
			if err := series(cp, r.T, learned, cols[k], names[k]); err != nil {
				return err
			}
			if k != 1 && k != 4 && r.Couplings[0].Free != [5]jsonNum{} {
				if err := exactLine(cp, r.T, exact, cols[k], names[k]+" free"); err != nil {
					return err
				}
			}
		}
		rows = append(rows, []*plot.Plot{cp, nil})
	}
	const w, h = 9 * vg.Inch, 3.2 * vg.Inch
	img := vgimg.New(w, h*vg.Length(len(rows)))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(rows), Cols: 2, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(rows, tiles, dc)
	for j, row := range rows {
		for i, p := range row {
			if p != nil {
				p.Draw(canvases[j][i])
			}
		}
	}
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(fh)
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(bw); err != nil {
		fh.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
