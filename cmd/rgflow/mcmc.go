package main

import (
	"errors"
	"io"
)

// runMCMC is being written (issue 3).
func runMCMC(args []string, stdout, stderr io.Writer) error {
	return errors.New("mcmc: not built yet")
}
