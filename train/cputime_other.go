//go:build !unix

package train

import "time"

// processCPU cannot be read on this system: StepTimes.ParallelCPU stays 0.
func processCPU() time.Duration { return 0 }
