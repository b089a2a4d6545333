//go:build !unix

package bulk

import "time"

// processCPU is not measured on this platform (the benchmark then reports 0).
func processCPU() time.Duration { return 0 }
