//go:build unix

package train

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system, all threads) this process has used so far; 0 if it cannot be
// read.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
