// Command rgflow trains, samples and measures hierarchical RG flows and lattice field theories.
//
// Usage:
//
//	rgflow                 run the default job (see README)
//	rgflow mcmc [flags]    sample a lattice action with HMC and measure observables
//	rgflow help            this text
//
// Every subcommand is a function run*(args, stdout, stderr) error so that tests drive it directly.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `rgflow: hierarchical RG flows and lattice field theory

usage:
  rgflow                 run the default job (a round trip of the default model)
  rgflow demo [flags]    the same, with flags
  rgflow mcmc [flags]    HMC on a lattice action, observables with errors
  rgflow help            this text

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
		return runDemo(nil, stdout, stderr)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "demo":
		return runDemo(rest, stdout, stderr)
	case "mcmc":
		return runMCMC(rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}
