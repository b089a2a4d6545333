//go:build unix

package bulk

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system) this process has used: unlike wall time it does not count
// the time a benchmark waits for a core on a loaded machine.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
