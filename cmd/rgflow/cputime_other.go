//go:build !unix

package main

import "time"

// processCPU reports that this operating system's process CPU time is not available here.
func processCPU() (time.Duration, bool) { return 0, false }
