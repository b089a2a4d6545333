package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"rgflow/datasets/lattice"
	"rgflow/models/bulk"
)

// countedTarget is what rgflow mcmc runs HMC on: a host action that counts its force evaluations, and
// reports a graph error after the run (the lattice actions have none).
type countedTarget struct {
	lattice.HostAction
	name  string
	grads atomic.Int64
	err   func() error
}

func (c *countedTarget) Force(dst, phi []float64) {
	c.grads.Add(1)
	c.HostAction.Force(dst, phi)
}

func (c *countedTarget) Name() string     { return c.name }
func (c *countedTarget) GradEvals() int64 { return c.grads.Load() }
func (c *countedTarget) Err() error {
	if c.err == nil {
		return nil
	}
	return c.err()
}

// mcmcTarget returns the physical action, the target HMC samples and, for bulk HMC (--bulk RUN), the map
// from a latent configuration z to (φ = F⁻¹(z), S(φ)). Without --bulk the target is the action itself.
func mcmcTarget(f *mcmcFlags, stderr io.Writer) (lattice.Action, *countedTarget, func([]float64) ([]float64, float64), func(), error) {
	if f.bulk == "" {
		a, err := f.physics.build("mcmc")
		if err != nil {
			return nil, nil, nil, nil, err
		}
		return a, &countedTarget{HostAction: a, name: "hmc"}, nil, func() {}, nil
	}
	if len(f.physics.Set) > 0 {
		return nil, nil, nil, nil, fmt.Errorf("mcmc: --bulk takes the action from the run %s; drop the action flags", f.bulk)
	}
	_, act, flow, store, step, err := loadLatticeRun(f.bulk, "mcmc", weightChoice{ema: true, log: stderr})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ba, err := bulk.New(act, flow, store)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("mcmc: --bulk %s: %w", f.bulk, err)
	}
	fmt.Fprintf(stderr, "mcmc: bulk HMC on the latents of %s (step %d), S_eff(z) = S(F⁻¹(z)) − ldj\n", f.bulk, step)
	var mu sync.Mutex
	var decErr error
	decode := func(z []float64) ([]float64, float64) {
		x, _, err := ba.Decode(z)
		if err != nil {
			mu.Lock()
			decErr = err
			mu.Unlock()
			return z, act.Eval(z)
		}
		return x, act.Eval(x)
	}
	t := &countedTarget{HostAction: ba, name: "bulk-hmc", err: func() error {
		mu.Lock()
		defer mu.Unlock()
		if decErr != nil {
			return decErr
		}
		return ba.Err()
	}}
	return act, t, decode, func() { ba.Close() }, nil
}
