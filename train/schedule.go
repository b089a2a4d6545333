package train

import (
	"fmt"
	"math"
)

// Schedule gives the learning rate of the update with 0-based index step (the update that turns
// Trainer.Step() == step into step+1).
type Schedule interface {
	LR(step int64) float64
}

// Constant is a fixed learning rate.
type Constant struct {
	Value float64 `json:"value"`
}

// LR returns c.Value for every step.
func (c Constant) LR(int64) float64 { return c.Value }

func (c Constant) String() string { return fmt.Sprintf("constant(%g)", c.Value) }

// Cosine is a cosine decay from Peak to Final over Total steps, optionally preceded by a linear warm-up.
//
// For step < Warmup the rate rises linearly, LR(step) = Peak·(step+1)/Warmup, so the first update already
// moves (it is never 0) and LR(Warmup−1) = Peak. From there it decays:
//
//	p = (step − Warmup)/(Total − Warmup), clamped to [0, 1]
//	LR(step) = Final + (Peak − Final)·(1 + cos πp)/2
//
// so LR(Warmup) = Peak and LR(Total) = Final (like torch's CosineAnnealingLR with T_max = Total − Warmup; the
// last update a run of Total steps takes has index Total−1, just above Final). Steps past Total stay at Final.
// Total should be the run's total step count; Total ≤ Warmup means no decay phase (Peak after warm-up).
// A run extended past Total therefore continues at Final. Stretching Total to the new length
// instead restarts part of the decay (the rate jumps up at the resume step); rgflow does that only when
// asked (--reschedule).
type Cosine struct {
	Peak   float64 `json:"peak"`
	Final  float64 `json:"final"`
	Warmup int64   `json:"warmup"`
	Total  int64   `json:"total"`
}

// LR implements Schedule.
func (c Cosine) LR(step int64) float64 {
	if step < 0 {
		step = 0
	}
	if step < c.Warmup {
		return c.Peak * float64(step+1) / float64(c.Warmup)
	}
	span := c.Total - c.Warmup
	if span <= 0 {
		return c.Peak
	}
	p := float64(step-c.Warmup) / float64(span)
	if p > 1 {
		p = 1
	}
	return c.Final + (c.Peak-c.Final)*(1+math.Cos(math.Pi*p))/2
}

func (c Cosine) String() string {
	return fmt.Sprintf("cosine(peak %g, final %g, warmup %d, total %d)", c.Peak, c.Final, c.Warmup, c.Total)
}
