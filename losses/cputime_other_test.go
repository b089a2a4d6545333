//go:build !unix

package losses

import "time"

// processCPU is not measured on this system (the benchmarks then report wall time only).
func processCPU() time.Duration { return 0 }
