package train

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal (an *os.File on a tty).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress shows training progress: a progress bar on a terminal, plain lines at log steps otherwise.
type progress struct {
	w            io.Writer
	bar          *progressbar.ProgressBar
	start, total int64
	t0           time.Time
}

func newProgress(w io.Writer, plain bool, start, total int64) *progress {
	p := &progress{w: w, start: start, total: total, t0: time.Now()}
	if w == nil || plain || !IsTerminal(w) {
		return p
	}
	p.bar = progressbar.NewOptions64(total-start,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(fmt.Sprintf("step %d/%d", start, total)),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("step"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
	return p
}

// step advances the bar by one step.
func (p *progress) step(Record) {
	if p.bar != nil {
		p.bar.Add64(1) // display only: an error here must not stop training
	}
}

// log shows the numbers of a log step.
func (p *progress) log(r Record) {
	switch {
	case p.w == nil:
	case p.bar != nil:
		p.bar.Describe(fmt.Sprintf("step %d/%d loss %.5g", r.Step, p.total, r.LossMean))
	default:
		done := r.Step - p.start
		el := time.Since(p.t0)
		rate := float64(done) / el.Seconds()
		eta := "?"
		if done > 0 {
			eta = (time.Duration(float64(el) / float64(done) * float64(p.total-r.Step))).Round(time.Second).String()
		}
		clip := ""
		if r.Clipped {
			clip = " (clipped)"
		}
		fmt.Fprintf(p.w, "step %d/%d  loss %.6g  mean %.6g  lr %.3g  |g| %.4g%s  %.3g steps/s  eta %s\n",
			r.Step, p.total, r.Loss, r.LossMean, r.LR, r.GradNorm, clip, rate, eta)
	}
}

// finish closes the bar, leaving it where it stopped.
func (p *progress) finish() {
	if p.bar != nil && !p.bar.IsFinished() {
		p.bar.Exit() // display only
	}
}
