// Command rgflow trains, samples and measures hierarchical RG flows and lattice field theories.
//
// Usage:
//
//	rgflow                              train the default model (NeuralRG on φ⁴ at L=8; see README)
//	rgflow train lattice [flags]        train a flow on a lattice action by reverse KL
//	rgflow eval RUNDIR [flags]          free energies, ln Z, ESS and flow-MCMC observables
//	rgflow sample RUNDIR [flags]        write samples as .npz
//	rgflow latents RUNDIR [flags]       write latents by RG level as .npz
//	rgflow mcmc [flags]                 HMC on a lattice action, observables with errors
//	rgflow demo [flags]                 a round trip of an untrained model
//
// Every subcommand is a function run*(args, stdout, stderr) error so that tests drive it directly.
package main

import (
	"fmt"
	"io"
	"os"
)

// version identifies this build in run.json.
const version = "0.1.0"

const usage = `rgflow: hierarchical RG flows and lattice field theory

usage:
  rgflow                           train the default model: NeuralRG on φ⁴ at the AKS point, L=8
  rgflow train lattice [flags]     train a flow on a lattice action by reverse KL
  rgflow eval RUNDIR [flags]       free energy, ln Z, ESS and flow-MCMC observables of a run
  rgflow sample RUNDIR [flags]     write samples (x, log q, log w) as .npz
  rgflow latents RUNDIR [flags]    write latents by RG level as .npz
  rgflow mcmc [flags]              HMC on a lattice action, observables with errors
  rgflow bench [flags]             time reverse-KL training steps (median ms/step)
  rgflow demo [flags]              a round trip through an untrained model
  rgflow help                      this text

Run "rgflow COMMAND -h" for a command's flags.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "rgflow:", err)
		os.Exit(1)
	}
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
	case "latents":
		return runLatents(rest, stdout, stderr)
	case "bench":
		return runBench(rest, stdout, stderr)
	case "mcmc":
		return runMCMC(rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}
