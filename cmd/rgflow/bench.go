package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"time"

	"rgflow/datasets/images"
	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/losses"
	"rgflow/models"
	"rgflow/train"
)

// benchReport is the output of rgflow bench.
type benchReport struct {
	Preset     string  `json:"preset"`
	Engine     string  `json:"engine"`
	L          int     `json:"L"`
	Batch      int     `json:"batch"`
	Dtype      string  `json:"dtype"`
	Symmetrize bool    `json:"symmetrize"`
	Objective  string  `json:"objective"`
	Workers    int     `json:"workers"`
	Params     int     `json:"params"`
	Steps      int     `json:"steps"`
	MedianMs   float64 `json:"median_ms_per_step"`
	MinMs      float64 `json:"min_ms_per_step"`
	// CPUMs is the process's CPU time (all threads) per timed step, their mean: the work of a step, which
	// a loaded machine inflates much less than the wall time (it does not count the waits for a core).
	CPUMs float64 `json:"cpu_ms_per_step"`
	// Phases are the mean milliseconds per timed step of each phase (train.StepTimes).
	Phases benchPhases `json:"phases"`
}

// benchPhases is train.StepTimes in milliseconds per step, over the timed steps.
type benchPhases struct {
	Parallel float64   `json:"parallel_ms"`
	Reduce   float64   `json:"reduce_ms"`
	Update   float64   `json:"update_ms"`
	CPU      float64   `json:"parallel_cpu_ms"`
	Sync     []float64 `json:"worker_sync_ms"`
	Feed     []float64 `json:"worker_feed_ms"`
	Run      []float64 `json:"worker_run_ms"`
}

// phasesBetween converts the difference of two StepTimes into milliseconds per step.
func phasesBetween(a, b train.StepTimes) benchPhases {
	n := float64(b.Steps - a.Steps)
	if n <= 0 {
		return benchPhases{}
	}
	ms := func(x, y time.Duration) float64 { return float64(y-x) / float64(time.Millisecond) / n }
	p := benchPhases{Parallel: ms(a.Parallel, b.Parallel), Reduce: ms(a.Reduce, b.Reduce),
		Update: ms(a.Update, b.Update), CPU: ms(a.ParallelCPU, b.ParallelCPU)}
	for w, wb := range b.Workers {
		var wa train.WorkerTimes
		if w < len(a.Workers) {
			wa = a.Workers[w]
		}
		p.Sync = append(p.Sync, ms(wa.Sync, wb.Sync))
		p.Feed = append(p.Feed, ms(wa.Feed, wb.Feed))
		p.Run = append(p.Run, ms(wa.Run, wb.Run))
	}
	return p
}

// runBench times reverse-KL training steps (sample z, generate, action, loss, backward, Adam) on real φ⁴
// at the AKS point, one optimiser step at a time, and reports the median.
const benchUsage = `usage: rgflow bench [flags]

Times reverse-KL training steps (sample z, generate, action, loss, backward, Adam) on real φ⁴ at the AKS
point (m² = −4, λ = 1.502 in the standard convention), one optimiser step at a time, and reports the
median and the fastest milliseconds per step. --objective nll times maximum-likelihood steps of an image
flow instead (--preset rgflow-small, --L 32 --batch 32: 32×32 grey synthetic images). --workers splits
the batch over that many workers (the global batch stays --batch), to measure the data-parallel speed-up.

flags:
`

// benchFlags are the flags of rgflow bench.
type benchFlags struct {
	fs                 *flag.FlagSet
	preset, dtype      string
	engine             string
	objective          string
	L, batch, workers  int
	steps, warmup      int
	symmetrize, asJSON bool
}

func newBenchFlags() *benchFlags {
	f := &benchFlags{fs: flag.NewFlagSet("bench", flag.ContinueOnError)}
	fs := f.fs
	fs.StringVar(&f.preset, "preset", "neuralrg", "model preset")
	fs.IntVar(&f.L, "L", 8, "lattice size")
	fs.IntVar(&f.batch, "batch", 256, "batch size")
	fs.StringVar(&f.dtype, "dtype", "float32", "float32 or float64")
	fs.IntVar(&f.steps, "steps", 30, "timed steps")
	fs.IntVar(&f.warmup, "warmup", 5, "untimed steps first")
	fs.BoolVar(&f.symmetrize, "symmetrize", false, "Z₂-symmetrised loss (twice the work)")
	fs.BoolVar(&f.asJSON, "json", false, "print one JSON object")
	fs.StringVar(&f.engine, "engine", "", engineUsage)
	fs.StringVar(&f.objective, "objective", "reversekl", "reversekl (φ⁴, --L) or nll (grey synthetic --L×--L images, --preset e.g. rgflow-small)")
	fs.IntVar(&f.workers, "workers", 1, "workers the batch is split over (data parallel; the global batch stays --batch)")
	return f
}

func runBench(args []string, stdout, stderr io.Writer) error {
	if helpRequested(args) {
		return printHelp(stdout, "bench")
	}
	f := newBenchFlags()
	f.fs.SetOutput(stderr)
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected argument %q (flags only)", f.fs.Arg(0))
	}
	preset, L, batch, dtypeName, steps, warmup, sym, asJSON := &f.preset, &f.L, &f.batch, &f.dtype, &f.steps, &f.warmup, &f.symmetrize, &f.asJSON
	if *steps < 1 || *warmup < 0 || *batch < 1 {
		return fmt.Errorf("bench: --steps=%d --warmup=%d --batch=%d, want ≥ 1, ≥ 0, ≥ 1", *steps, *warmup, *batch)
	}
	dt, err := parseDtype(*dtypeName)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := checkWorkers("bench", f.workers); err != nil {
		return err
	}
	cfg, err := models.Preset(*preset, *L, 1)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := overrideEngine(&cfg, f.engine, "bench"); err != nil {
		return err
	}
	flow, err := models.Build(cfg)
	if err != nil {
		return err
	}
	var obj train.Objective
	switch f.objective {
	case "reversekl":
		act, err := lattice.NewPhi4(*L, -4, 1.502)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		obj = &losses.ReverseKL{Flow: flow, Action: engineAction(act, cfg), Symmetrize: *sym}
	case "nll":
		if *sym {
			return fmt.Errorf("bench: --symmetrize is for --objective reversekl")
		}
		sp, err := images.ParseSpec("synthetic:256")
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		data, _, err := sp.Load(images.LoadOptions{Size: *L, Channels: 1, TestFraction: -1, Seed: 1})
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		obj = &losses.NLL{Flow: flow, Data: data, DataSeed: 1}
	default:
		return fmt.Errorf("bench: --objective %q, want reversekl or nll", f.objective)
	}
	store := layers.NewStore(dt, 1)
	var times []time.Duration
	var tr *train.Trainer
	var warm train.StepTimes // the phase times after the warm-up steps
	var cpuWarm time.Duration
	last := time.Now()
	hook := train.Hook{Name: "timer", Fn: func(r train.Record) error {
		now := time.Now()
		if r.Step > int64(*warmup) {
			times = append(times, now.Sub(last))
		}
		if r.Step == int64(*warmup) {
			warm = tr.Times()
			cpuWarm, _ = processCPU()
		}
		last = now
		return nil
	}}
	tr, err = train.New(store, obj, train.Config{
		Steps: int64(*warmup + *steps), Batch: *batch, LR: 1e-4, CheckpointEvery: -1, LogEvery: 1 << 40,
		Hooks: train.Hooks{OnStep: []train.Hook{hook}}, Workers: f.workers,
	})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer tr.Close()
	cpuWarm, _ = processCPU()
	last = time.Now()
	if err := tr.Run(context.Background()); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	cpuEnd, _ := processCPU()
	cpu := cpuEnd - cpuWarm
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	rep := benchReport{Preset: *preset, Engine: cfg.EngineName(), L: *L, Batch: *batch, Dtype: *dtypeName, Symmetrize: *sym,
		Objective: f.objective, Workers: tr.Workers(),
		Params: store.NumParams(), Steps: len(times), MedianMs: ms(times[len(times)/2]), MinMs: ms(times[0]),
		CPUMs:  float64(cpu) / float64(time.Millisecond) / float64(len(times)),
		Phases: phasesBetween(warm, tr.Times())}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	fmt.Fprintf(stdout, "%s %s (%s engine) L=%d batch %d %s symmetrize=%v, %d worker(s) (%d parameters): median %.1f ms/step, min %.1f ms over %d steps; %.1f ms of CPU per step\n",
		rep.Objective, rep.Preset, rep.Engine, rep.L, rep.Batch, rep.Dtype, rep.Symmetrize, rep.Workers, rep.Params, rep.MedianMs, rep.MinMs, rep.Steps, rep.CPUMs)
	ph := rep.Phases
	fmt.Fprintf(stdout, "  mean ms per step: workers %.2f (process CPU %.2f), reduce %.2f, update %.2f",
		ph.Parallel, ph.CPU, ph.Reduce, ph.Update)
	for w := range ph.Feed {
		fmt.Fprintf(stdout, "; worker %d sync %.2f feed %.2f run %.2f", w, ph.Sync[w], ph.Feed[w], ph.Run[w])
	}
	fmt.Fprintln(stdout)
	return nil
}
