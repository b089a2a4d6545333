package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"

	"rgflow/train/comm"
)

// registerWorkers defines --workers (default: the machine's logical cores) on fs.
func registerWorkers(fs *flag.FlagSet, p *int, what string) {
	fs.IntVar(p, "workers", runtime.NumCPU(), what)
}

// checkWorkers rejects a worker count below 1.
func checkWorkers(cmd string, n int) error {
	if n < 1 {
		return fmt.Errorf("%s: --workers=%d, want ≥ 1", cmd, n)
	}
	return nil
}

// trainComm is the process group a training run is split over: the MPI world when this binary was built
// with MPI and started by mpirun or srun, otherwise the process alone. Ranks other than 0 write nothing
// and print nothing (rank 0 writes the run directory and reports).
func trainComm(cmd string, stdout, stderr io.Writer) (c comm.Comm, out, errw io.Writer, err error) {
	c, err = comm.MPI()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	if c.Rank() != 0 {
		return c, io.Discard, io.Discard, nil
	}
	return c, stdout, stderr, nil
}
