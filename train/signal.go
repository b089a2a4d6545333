package train

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// ContextWithSignals returns a context that is cancelled by the first SIGINT or SIGTERM, which makes
// Trainer.Run finish its step, write a checkpoint and return. After that first signal the default handling is
// restored, so a second Ctrl-C kills the process at once. Call stop to release the signal handler.
func ContextWithSignals(parent context.Context) (ctx context.Context, stop context.CancelFunc) {
	ctx, stop = signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}
