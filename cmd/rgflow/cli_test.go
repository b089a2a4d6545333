package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// flagNames lists the flags defined on fs.
func flagNames(fs *flag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}

// Every command answers -h, --help and "rgflow help COMMAND" with a nil error, its help on stdout and
// nothing on stderr, listing every flag its flag sets accept (for eval, sample and latents those of lattice
// runs and of image runs), without a run directory or with one that does not exist.
func TestHelpEveryCommand(t *testing.T) {
	lattice := flagNames(newLatticeFlags(ptr(defaultLatticeRun()), io.Discard).fs)
	images := flagNames(newImageFlags(ptr(defaultImageRun()), io.Discard).fs)
	mcmcFS, _ := newMCMCFlags()
	holoFS, _ := newHoloFlags(io.Discard)
	mixFS, _ := newMixFlags(io.Discard)
	receptiveFS, _ := newReceptiveFlags(io.Discard)
	correctFS, _ := newCorrectFlags(io.Discard)
	want := map[string][]string{
		"train":         append(append([]string{}, lattice...), images...),
		"train lattice": lattice,
		"train images":  images,
		"eval":          append(append(flagNames(newEvalLatticeFlags(io.Discard).fs), flagNames(newEvalImageFlags(io.Discard).fs)...), flagNames(newDiffusionEvalFlags(io.Discard).fs)...),
		"flow":          flagNames(newFlowFlags(io.Discard).fs),
		"sample":        append(flagNames(newSampleLatticeFlags(io.Discard).fs), flagNames(newSampleImageFlags(io.Discard).fs)...),
		"latents":       append(flagNames(newLatentsLatticeFlags(io.Discard).fs), flagNames(newLatentsImageFlags(io.Discard).fs)...),
		"mcmc":          flagNames(mcmcFS),
		"holography":    flagNames(holoFS),
		"mix":           flagNames(mixFS),
		"receptive":     flagNames(receptiveFS),
		"correct":       flagNames(correctFS),
		"make-data":     flagNames(newMakeDataFlags(io.Discard).fs),
		"bench":         flagNames(newBenchFlags().fs),
		"demo":          flagNames(newDemoFlags().fs),
	}
	// Flags users look for, independently of the constructors above.
	must := map[string][]string{
		"train":         {"action", "m2", "lambda", "data", "eval-n", "resume", "reschedule", "steps", "workers"},
		"train lattice": {"action", "convention", "eval-n", "eval-samples", "reschedule", "workers"},
		"train images":  {"data", "size", "eval-n", "reschedule", "workers"},
		"eval":          {"n", "samples", "seed", "json", "data", "split", "swd", "workers"},
		"sample":        {"n", "out", "seed", "temperature", "level-temperatures", "png", "zoom", "workers"},
		"latents":       {"n", "out", "data", "split", "workers"},
		"mcmc":          {"action", "trajectories", "chains", "out", "workers"},
		"correct":       {"corrupt", "method", "steps", "n", "png", "json", "sigma"},
		"flow":          {"n", "points", "nfe", "sampler", "data", "json", "png"},
	}
	for _, c := range commands {
		if _, ok := want[c]; !ok {
			t.Errorf("command %q has no expected help in this test", c)
		}
	}
	for cmd, flags := range want {
		words := strings.Fields(cmd)
		for _, args := range [][]string{
			append(append([]string{}, words...), "-h"),
			append(append([]string{}, words...), "--help"),
			append([]string{"help"}, words...),
			append(append([]string{}, words...), filepath.Join(t.TempDir(), "no-such-run"), "-h"),
		} {
			var out, errb bytes.Buffer
			if err := run(args, &out, &errb); err != nil {
				t.Errorf("%v: %v", args, err)
				continue
			}
			if errb.Len() > 0 {
				t.Errorf("%v: wrote to stderr: %s", args, errb.String())
			}
			for _, f := range append(append([]string{}, flags...), must[cmd]...) {
				if !strings.Contains(out.String(), "  -"+f+" ") && !strings.Contains(out.String(), "  -"+f+"\n") {
					t.Errorf("%v: help does not list -%s:\n%s", args, f, out.String())
				}
			}
		}
	}
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		var out, errb bytes.Buffer
		if err := run(args, &out, &errb); err != nil || !strings.Contains(out.String(), "rgflow eval RUNDIR") {
			t.Errorf("%v: %v\n%s", args, err, out.String())
		}
	}
	if err := run([]string{"help", "nope"}, io.Discard, io.Discard); err == nil {
		t.Error("help nope: no error")
	}
}

// snapshot maps every file under dir to its contents.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		m[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A fresh run into a directory that holds another run's checkpoints is refused, and not one byte of that
// directory changes (config.json, run.json, metrics.jsonl, the checkpoints); the error says how to resume.
func TestRefusedRunChangesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	runCmd(t, trainCmd, small(dir, "--steps", "10")...)
	before := snapshot(t, dir)
	for _, name := range []string{"config.json", "run.json", "metrics.jsonl"} {
		if _, ok := before[filepath.Join(dir, name)]; !ok {
			t.Fatalf("the first run wrote no %s", name)
		}
	}
	var out, errb bytes.Buffer
	err := runTrain(small(dir, "--steps", "20", "--lr", "1e-2", "--seed", "7"), &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "--resume "+dir) {
		t.Fatalf("error %v, want a refusal naming --resume %s", err, dir)
	}
	if after := snapshot(t, dir); !reflect.DeepEqual(before, after) {
		for p := range after {
			if before[p] != after[p] {
				t.Errorf("%s changed", p)
			}
		}
		if len(before) != len(after) {
			t.Errorf("%d files before, %d after", len(before), len(after))
		}
	}
}

// loggedLR reads the learning rate of every logged step of a run.
func loggedLR(t *testing.T, dir string) map[int64]float64 {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lr := map[int64]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m struct {
			Step int64   `json:"step"`
			LR   float64 `json:"lr"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		lr[m.Step] = m.LR
	}
	return lr
}

// Extending a finished cosine run with a larger --steps keeps its schedule (the new steps run at the final
// rate, and it says so); --reschedule stretches the cosine to the new total (and says so). The expected
// rates are the cosine formula written out here: update k (1-based) uses
// LR = final + (peak − final)·(1 + cos πp)/2, p = (k − 1 − warmup)/(horizon − warmup), after a linear
// warm-up peak·k/warmup; warm-up = min(50, steps/10) = 2 for the first 20 steps.
func TestResumeExtendsCosine(t *testing.T) {
	const peak, final, warmup = 3e-3, 1e-5, 2
	cosine := func(k, horizon int64) float64 {
		if k-1 < warmup {
			return peak * float64(k) / warmup
		}
		p := math.Min(1, float64(k-1-warmup)/float64(horizon-warmup))
		return final + (peak-final)*(1+math.Cos(math.Pi*p))/2
	}
	for _, reschedule := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "run")
		runCmd(t, trainCmd, small(dir, "--steps", "20", "--log-every", "1")...)
		args := []string{"lattice", "--resume", dir, "--steps", "30"}
		if reschedule {
			args = append(args, "--reschedule")
		}
		var out, errb bytes.Buffer
		if err := runTrain(args, &out, &errb); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		note := "final rate"
		if reschedule {
			note = "now ends at step 30"
		}
		if !strings.Contains(errb.String(), note) {
			t.Errorf("reschedule=%v: stderr does not say %q:\n%s", reschedule, note, errb.String())
		}
		lr := loggedLR(t, dir)
		for k := int64(1); k <= 30; k++ {
			horizon := int64(20)
			if reschedule && k > 20 {
				horizon = 30
			}
			want := cosine(k, horizon)
			if got, ok := lr[k]; !ok || math.Abs(got-want) > 1e-15 { // a few ulp of 1e-3: the same formula, other rounding
				t.Errorf("reschedule=%v: step %d: lr %v (logged %v), want %v", reschedule, k, got, ok, want)
			}
		}
	}
}

// Sample counts are --n on eval, sample and latents and --eval-n on train; the old names still work and
// print a deprecation note.
func TestSampleCountFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	var out, errb bytes.Buffer
	args := append(small(dir, "--steps", "2"), "--eval-samples", "16")
	if err := runTrain(args, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errb.String(), "--eval-samples is deprecated; use --eval-n") || !strings.Contains(out.String(), "on 16 flow samples") {
		t.Errorf("--eval-samples: stdout\n%s\nstderr\n%s", out.String(), errb.String())
	}
	for _, flagName := range []string{"--n", "--samples"} {
		var out, errb bytes.Buffer
		if err := run([]string{"eval", dir, flagName, "24", "--json"}, &out, &errb); err != nil {
			t.Fatal(err)
		}
		var rep struct {
			Samples int `json:"samples"`
		}
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Samples != 24 {
			t.Errorf("eval %s 24: %v, %s", flagName, err, out.String())
		}
		if deprecated := strings.Contains(errb.String(), "deprecated"); deprecated != (flagName == "--samples") {
			t.Errorf("eval %s: stderr %q", flagName, errb.String())
		}
	}
	if err := run([]string{"eval", dir, "--n", "3"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--n=3") {
		t.Errorf("eval --n 3: %v, want an error naming --n", err)
	}
}

// Errors that name what the user typed: the free field without --m2, and --resume with another --out.
func TestCommandLineErrors(t *testing.T) {
	tmp := t.TempDir()
	for _, args := range [][]string{
		{"train", "lattice", "--action", "free", "--L", "4", "--out", filepath.Join(tmp, "a")},
		{"mcmc", "--action", "free", "--L", "4"},
	} {
		err := run(args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "m² > 0") || !strings.Contains(err.Error(), "--m2") || strings.Contains(err.Error(), "-4") {
			t.Errorf("%v: %v, want an error asking for --m2 > 0 (and no value the user did not type)", args, err)
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, "a")); err == nil {
		t.Error("the refused free-field run created its directory")
	}
	for _, subject := range []string{"lattice", "images"} {
		err := run([]string{"train", subject, "--resume", filepath.Join(tmp, "r"), "--out", filepath.Join(tmp, "o")}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--out") {
			t.Errorf("train %s --resume R --out O: %v, want an error about --out", subject, err)
		}
		err = run([]string{"train", subject, "--reschedule", "--out", filepath.Join(tmp, "o")}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--reschedule") {
			t.Errorf("train %s --reschedule without --resume: %v", subject, err)
		}
	}
}

// The "next:" lines after training are commands that run as printed: each is split into words and given
// to run().
func TestNextHintsRun(t *testing.T) {
	tmp := t.TempDir()
	t.Chdir(tmp) // the hints write samples.npz, latents.npz and grid.png into the working directory
	for _, args := range [][]string{
		small(filepath.Join(tmp, "lat"), "--steps", "2", "--eval-n", "8"),
		smallImages(filepath.Join(tmp, "img"), "--steps", "2", "--eval-n", "4"),
	} {
		out := runCmd(t, trainCmd, args...)
		_, next, ok := strings.Cut(out, "\nnext:\n")
		if !ok {
			t.Fatalf("%v: no next: section in\n%s", args, out)
		}
		lines := strings.Split(strings.TrimSpace(next), "\n")
		if len(lines) != 3 {
			t.Errorf("%d hint lines, want 3:\n%s", len(lines), next)
		}
		for _, line := range lines {
			words := strings.Fields(line)
			if len(words) < 2 || words[0] != "rgflow" {
				t.Errorf("hint %q is not an rgflow command", line)
				continue
			}
			var o, e bytes.Buffer
			if err := run(words[1:], &o, &e); err != nil {
				t.Errorf("hint %q: %v\n%s", line, err, e.String())
			}
		}
	}
}
