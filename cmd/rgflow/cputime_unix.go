//go:build unix

package main

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system, all threads) this process has used so far; ok is false when the
// operating system does not say.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
