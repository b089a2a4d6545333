package train

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"gorgonia.org/tensor"
)

// A run with EMA that receives a real SIGINT (through ContextWithSignals, as the command line wires it) writes a
// checkpoint, and its continuation equals the uninterrupted run bit for bit: losses, weights, EMA and Adam state.
// The hook that raises the signal waits until the context has seen it, so the interruption lands after the
// same step on every run.
func TestSIGINTResumeWithEMAIsExact(t *testing.T) {
	dt := tensor.Float64
	cfg := toyConfig(30, t.TempDir())
	cfg.EMADecay = emaDecay
	var rec recorder
	cfg.Hooks.OnStep = []Hook{rec.hook()}
	store, tr := newToy(t, dt, 1, cfg, 0)
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := finish(tr, store, rec.losses)

	dir := t.TempDir()
	ctx, stop := ContextWithSignals(context.Background())
	defer stop()
	var first recorder
	cfg = toyConfig(30, dir)
	cfg.EMADecay = emaDecay
	cfg.Hooks.OnStep = []Hook{first.hook(), {Name: "sigint", Fn: func(r Record) error {
		if r.Step != 11 {
			return nil
		}
		if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("SIGINT was not delivered within 10 s")
		}
	}}}
	_, tr1 := newToy(t, dt, 1, cfg, 0)
	if err := tr1.Run(ctx); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run after SIGINT: %v, want ErrInterrupted", err)
	}
	if tr1.Step() != 11 {
		t.Fatalf("interrupted at step %d, want 11", tr1.Step())
	}

	var second recorder
	cfg = toyConfig(30, dir)
	cfg.EMADecay = emaDecay
	cfg.Hooks.OnStep = []Hook{second.hook()}
	store2, tr2 := newToy(t, dt, 99, cfg, 0)
	if err := tr2.Resume(dir); err != nil {
		t.Fatal(err)
	}
	if err := tr2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := finish(tr2, store2, append(first.losses, second.losses...))
	sameLosses(t, "losses", got.losses, want.losses)
	sameBits(t, "weights", got.weights, want.weights)
	arraysBits(t, "EMA", got.ema, want.ema)
	arraysBits(t, "Adam state", got.adam, want.adam)
}
