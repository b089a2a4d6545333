package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"

	"rgflow/checkpoints"
)

// runSample writes flow samples of a lattice run: x (n, C, L, L), log q and log importance weights
// log w = −S − log q.
const sampleUsage = `usage: rgflow sample RUNDIR [flags]

Draws samples from the newest checkpoint of a run. A lattice run: x (n, C, L, L), log q, the action S and
the log importance weights log w = −S − log q in an .npz file. An image run: a PNG grid and/or an .npz of
x (logit space), pixels and log q, at a prior temperature T (overall or per RG level).
`

const latentsUsage = `usage: rgflow latents RUNDIR [flags]

Writes latents by RG level as .npz: level0 … levelK with shape (n, C, count_ℓ) (the sites of each level in
row-major order), the full grid z (n, C, L, L), the configurations or images x and the level of every site
(levels, (L, L)). A lattice run encodes its own samples; an image run encodes the first n images of a split.
`

func runSample(args []string, stdout, stderr io.Writer) error {
	if helpRequested(args) {
		return printHelp(stdout, "sample")
	}
	return dispatchRun(args, "sample", func(a []string) error { return runSampleLattice(a, stdout, stderr) },
		func(dir string, a []string) error { return runSampleImages(dir, a, stdout, stderr) })
}

// drawFlags are the flags of rgflow sample and rgflow latents on a lattice run.
type drawFlags struct {
	fs      *flag.FlagSet
	n       int
	out     string
	seed    uint64
	wc      weightChoice
	workers int
}

func newDrawFlags(cmd, out string, stderr io.Writer) *drawFlags {
	f := &drawFlags{fs: flag.NewFlagSet(cmd, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.IntVar(&f.n, "n", 1000, "number of samples")
	f.fs.StringVar(&f.out, "out", out, "output .npz file")
	f.fs.Uint64Var(&f.seed, "seed", 1, "random seed")
	f.wc.register(f.fs, stderr)
	registerWorkers(f.fs, &f.workers, "goroutines drawing flow samples (the draws do not depend on it)")
	return f
}

func newSampleLatticeFlags(stderr io.Writer) *drawFlags {
	return newDrawFlags("sample", "samples.npz", stderr)
}
func newLatentsLatticeFlags(stderr io.Writer) *drawFlags {
	return newDrawFlags("latents", "latents.npz", stderr)
}

func runSampleLattice(args []string, stdout, stderr io.Writer) error {
	f := newSampleLatticeFlags(stderr)
	n, out, seed := &f.n, &f.out, &f.seed
	dir, err := runDirArg(f.fs, args, "sample")
	if err != nil {
		return err
	}
	if *n < 1 {
		return fmt.Errorf("sample: --n=%d, want ≥ 1", *n)
	}
	if err := checkWorkers("sample", f.workers); err != nil {
		return err
	}
	run, act, flow, store, step, err := loadLatticeRun(dir, "sample", f.wc)
	if err != nil {
		return err
	}
	d, err := drawLattice(run, act, flow, store, *n, f.workers, rand.New(rand.NewPCG(*seed, 0x5a3e)))
	if err != nil {
		return err
	}
	logw := d.LogW()
	shape := []int{*n, flow.Channels, flow.L, flow.L}
	if err := checkpoints.WriteNPZ(*out, []checkpoints.Array{
		{Name: "x", Shape: shape, Data: d.X},
		{Name: "logq", Shape: []int{*n}, Data: d.LogQ},
		{Name: "action", Shape: []int{*n}, Data: d.Action},
		{Name: "logw", Shape: []int{*n}, Data: logw},
	}); err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %d samples of %s (step %d) to %s: x %v, logq, action, logw\n", *n, dir, step, *out, shape)
	return nil
}

// runLatents writes the latents of flow samples by RG level: level0 … levelK with shape (n, C, count_ℓ)
// (sites of each level in row-major order), the full grid z (n, C, L, L), the samples x and the level of
// every site (levels, (L, L)).
func runLatents(args []string, stdout, stderr io.Writer) error {
	if helpRequested(args) {
		return printHelp(stdout, "latents")
	}
	return dispatchRun(args, "latents", func(a []string) error { return runLatentsLattice(a, stdout, stderr) },
		func(dir string, a []string) error { return runLatentsImages(dir, a, stdout, stderr) })
}

func runLatentsLattice(args []string, stdout, stderr io.Writer) error {
	f := newLatentsLatticeFlags(stderr)
	n, out, seed := &f.n, &f.out, &f.seed
	dir, err := runDirArg(f.fs, args, "latents")
	if err != nil {
		return err
	}
	if *n < 1 {
		return fmt.Errorf("latents: --n=%d, want ≥ 1", *n)
	}
	if err := checkWorkers("latents", f.workers); err != nil {
		return err
	}
	run, act, flow, store, step, err := loadLatticeRun(dir, "latents", f.wc)
	if err != nil {
		return err
	}
	// Latents of the model's own samples: without symmetrisation z is the draw that made x.
	run.Train.Symmetrize = false
	d, err := drawLattice(run, act, flow, store, *n, f.workers, rand.New(rand.NewPCG(*seed, 0x1a7e)))
	if err != nil {
		return err
	}
	c, L := flow.Channels, flow.L
	levels, err := flow.Hier.SplitLevels(d.Z, *n, c)
	if err != nil {
		return err
	}
	counts := flow.Hier.LevelCounts()
	arrays := []checkpoints.Array{
		{Name: "z", Shape: []int{*n, c, L, L}, Data: d.Z},
		{Name: "x", Shape: []int{*n, c, L, L}, Data: d.X},
	}
	for l, v := range levels {
		arrays = append(arrays, checkpoints.Array{Name: fmt.Sprintf("level%d", l), Shape: []int{*n, c, counts[l]}, Data: v})
	}
	arrays = append(arrays, levelMapArray(flow.Hier))
	if err := checkpoints.WriteNPZ(*out, arrays); err != nil {
		return fmt.Errorf("latents: %w", err)
	}
	fmt.Fprintf(stdout, "wrote latents of %d samples of %s (step %d) to %s: %d levels with %v latents per channel, z, x, levels\n",
		*n, dir, step, *out, len(levels), counts)
	return nil
}
