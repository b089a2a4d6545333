// Command rgflow trains, samples and measures hierarchical RG flows and lattice field theories.
//
// Usage:
//
//	rgflow                              train the default model (NeuralRG on φ⁴ at L=8; see README)
//	rgflow train lattice [flags]        train a flow on a lattice action by reverse KL
//	rgflow train images [flags]         train a flow on images by maximum likelihood
//	rgflow train diffusion [flags]      train a lattice score network by denoising score matching
//	rgflow train diffusion images [flags] train an image score U-Net (vp, ve or heat process)
//	rgflow eval RUNDIR [flags]          free energies, ln Z, ESS and flow-MCMC observables; bits/dim
//	rgflow sample RUNDIR [flags]        write samples as .npz (images: also a PNG grid)
//	rgflow flow RUNDIR [flags]          m_R, Z, λ_R along the RG time of a diffusion run, learned against exact
//	rgflow latents RUNDIR [flags]       write latents by RG level as .npz
//	rgflow mcmc [flags]                 HMC on a lattice action, observables with errors
//	rgflow make-data faces [flags]      write synthetic CelebA-style faces in CelebA's layout
//	rgflow bench [flags]                time reverse-KL training steps
//	rgflow demo [flags]                 a round trip of an untrained model
//	rgflow help [COMMAND]               usage; a command's usage and every flag it accepts
//
// Every subcommand is a function run*(args, stdout, stderr) error so that tests drive it directly. -h,
// --help and "rgflow help COMMAND" print a command's help to stdout and succeed, without touching a run
// directory. Sample counts are --n (eval, sample, latents) and --eval-n (train).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"rgflow/train/comm"
)

// version identifies this build in run.json.
const version = "0.1.0"

const usage = `rgflow: hierarchical RG flows and lattice field theory

usage:
  rgflow                           train the default model: NeuralRG on φ⁴ at the AKS point, L=8
  rgflow train lattice [flags]     train a flow on a lattice action by reverse KL
  rgflow train images [flags]      train a flow on images by maximum likelihood (bits/dim)
  rgflow train diffusion [flags]   train a lattice score network by denoising score matching (--data)
  rgflow train diffusion images [flags]  train an image score U-Net by DSM (--process vp|ve|heat)
  rgflow eval RUNDIR [flags]       free energy, ln Z, ESS and flow-MCMC observables of a run
  rgflow sample RUNDIR [flags]     write samples (x, log q, log w) as .npz
  rgflow flow RUNDIR [flags]       diffusion runs: m_R(t), Z(t), λ_R(t), max|φ| learned vs exact (--json, --png)
  rgflow latents RUNDIR [flags]    write latents by RG level as .npz
  rgflow mcmc [flags]              HMC on a lattice action, observables with errors (--bulk RUN: on z)
  rgflow holography RUNDIR [flags] bulk correlations ⟨z_i z_j⟩ by RG level and distance, holographic fit
  rgflow mix RUNDIR [flags]        mix two images' latents level by level (image runs), PNG grid
  rgflow receptive RUNDIR [flags]  image response ∂x/∂z to one latent per level against the causal cone
  rgflow correct RUNDIR [flags]    repair corrupted images in the bulk: the region's causal cone or all latents
  rgflow make-data faces [flags]   write synthetic CelebA-style faces in CelebA's layout (celeba:DIR)
  rgflow bench [flags]             time reverse-KL training steps (median ms/step)
  rgflow demo [flags]              a round trip through an untrained model
  rgflow help [COMMAND]            this text, or a command's usage and every flag it accepts

Run "rgflow COMMAND -h" (or "rgflow help COMMAND") for a command's flags.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "rgflow:", err)
		comm.Abort() // under MPI: end the other ranks too, which would wait for this one
		os.Exit(1)
	}
	comm.Finalize() // MPI, when a training run started it
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return runTrain([]string{"lattice"}, stdout, stderr)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "demo":
		return runDemo(rest, stdout, stderr)
	case "train":
		return runTrain(rest, stdout, stderr)
	case "eval":
		return runEval(rest, stdout, stderr)
	case "sample":
		return runSample(rest, stdout, stderr)
	case "flow":
		return runFlow(rest, stdout, stderr)
	case "latents":
		return runLatents(rest, stdout, stderr)
	case "bench":
		return runBench(rest, stdout, stderr)
	case "mcmc":
		return runMCMC(rest, stdout, stderr)
	case "holography":
		return runHolography(rest, stdout, stderr)
	case "mix":
		return runMix(rest, stdout, stderr)
	case "receptive":
		return runReceptive(rest, stdout, stderr)
	case "correct":
		return runCorrect(rest, stdout, stderr)
	case "make-data":
		return runMakeData(rest, stdout, stderr)
	case "help", "-h", "-help", "--h", "--help":
		if len(rest) == 0 {
			fmt.Fprint(stdout, usage)
			return nil
		}
		return printHelp(stdout, rest[0], rest[1:]...)
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}

// commands are the subcommands, in the order of the usage text.
var commands = []string{"train", "eval", "sample", "flow", "latents", "mcmc", "holography", "mix", "receptive", "correct", "make-data", "bench", "demo"}

// helpRequested reports whether args ask for help: -h, -help, --h or --help (the spellings package flag
// answers with flag.ErrHelp) anywhere before a "--". Every command checks this first and prints its help
// to stdout with a nil error, without reading a run directory or any data.
func helpRequested(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--h", "--help":
			return true
		}
	}
	return false
}

// printHelp writes command cmd's usage and every flag it accepts to w (sub: the subject of train, e.g.
// "lattice"; other commands ignore it). Commands that work on a run directory list the flags for lattice
// runs and for image runs.
func printHelp(w io.Writer, cmd string, sub ...string) error {
	flags := func(title string, fs *flag.FlagSet) {
		if title != "" {
			fmt.Fprintf(w, "\n%s:\n", title)
		}
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	switch cmd {
	case "train":
		subject := ""
		if len(sub) > 0 {
			subject = sub[0]
		}
		switch subject {
		case "lattice":
			fmt.Fprint(w, trainUsage)
			flags("", newLatticeFlags(ptr(defaultLatticeRun()), io.Discard).fs)
		case "images":
			fmt.Fprint(w, imagesUsage)
			flags("", newImageFlags(ptr(defaultImageRun()), io.Discard).fs)
		case "diffusion":
			fmt.Fprint(w, diffusionUsage)
			flags("", newDiffusionFlags(ptr(defaultDiffusionRun()), io.Discard).fs)
		case "diffusion images":
			fmt.Fprint(w, imgDiffUsage)
			flags("", newImgDiffFlags(ptr(defaultImgDiffRun()), io.Discard).fs)
		case "":
			fmt.Fprint(w, trainUsage)
			flags("", newLatticeFlags(ptr(defaultLatticeRun()), io.Discard).fs)
			fmt.Fprint(w, "\n"+imagesUsage)
			flags("", newImageFlags(ptr(defaultImageRun()), io.Discard).fs)
		default:
			return fmt.Errorf("help train: unknown subject %q (want lattice, images or diffusion)", subject)
		}
	case "eval":
		fmt.Fprint(w, evalUsage)
		flags("flags for a lattice run", newEvalLatticeFlags(io.Discard).fs)
		flags("flags for an image run", newEvalImageFlags(io.Discard).fs)
		flags("flags for an image diffusion run", newEvalImgDiffFlags(io.Discard).fs)
		flags("flags for a diffusion run", newDiffusionEvalFlags(io.Discard).fs)
	case "sample":
		fmt.Fprint(w, sampleUsage)
		flags("flags for a lattice run", newSampleLatticeFlags(io.Discard).fs)
		flags("flags for an image run", newSampleImageFlags(io.Discard).fs)
		flags("flags for a diffusion run", newDiffusionSampleFlags(io.Discard).fs)
		flags("flags for an image diffusion run", newImgDiffSampleFlags(io.Discard).fs)
	case "flow":
		fmt.Fprint(w, flowUsage)
		flags("", newFlowFlags(io.Discard).fs)
	case "latents":
		fmt.Fprint(w, latentsUsage)
		flags("flags for a lattice run", newLatentsLatticeFlags(io.Discard).fs)
		flags("flags for an image run", newLatentsImageFlags(io.Discard).fs)
	case "mcmc":
		fs, _ := newMCMCFlags()
		fmt.Fprint(w, mcmcUsage)
		flags("", fs)
	case "holography":
		fs, _ := newHoloFlags(io.Discard)
		fmt.Fprint(w, holographyUsage)
		flags("", fs)
	case "mix":
		fs, _ := newMixFlags(io.Discard)
		fmt.Fprint(w, mixUsage)
		flags("", fs)
	case "receptive":
		fs, _ := newReceptiveFlags(io.Discard)
		fmt.Fprint(w, receptiveUsage)
		flags("", fs)
	case "correct":
		fs, _ := newCorrectFlags(io.Discard)
		fmt.Fprint(w, correctUsage)
		flags("", fs)
	case "make-data":
		fmt.Fprint(w, makeDataUsage)
		flags("", newMakeDataFlags(io.Discard).fs)
	case "bench":
		fmt.Fprint(w, benchUsage)
		flags("", newBenchFlags().fs)
	case "demo":
		fmt.Fprint(w, demoUsage)
		flags("", newDemoFlags().fs)
	case "help":
		fmt.Fprint(w, usage)
	default:
		return fmt.Errorf("help: unknown command %q\n%s", cmd, usage)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// deprecatedAlias defines the flag old as another name of the existing flag name on fs: setting it sets
// name and prints a note to w.
func deprecatedAlias(fs *flag.FlagSet, old, name string, w io.Writer) {
	fs.Var(&aliasValue{Value: fs.Lookup(name).Value, old: old, name: name, w: w}, old, "deprecated spelling of --"+name)
}

type aliasValue struct {
	flag.Value
	old, name string
	w         io.Writer
}

func (a *aliasValue) Set(s string) error {
	fmt.Fprintf(a.w, "rgflow: --%s is deprecated; use --%s\n", a.old, a.name)
	return a.Value.Set(s)
}

func (a *aliasValue) String() string {
	if a == nil || a.Value == nil {
		return ""
	}
	return a.Value.String()
}
