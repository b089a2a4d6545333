package layers

import (
	"slices"
	"sync"

	"gorgonia.org/tensor"
)

// leasePool recycles a fused op's per-run workspaces (activation buffers and the like). Every forward run
// leases its workspace to the tensor it returns; each reader of that tensor (the unpacking op and every
// backward op built on it) checks in once, and the last one returns the workspace to the pool. A reader that
// finds no lease for its tensor (already fully read, or dropped because too many runs were outstanding)
// must fail. Leases of runs whose readers never all run (a machine over part of the graph) are dropped after
// maxLeases newer runs; their workspaces are then left to the garbage collector.
type leasePool struct {
	mu      sync.Mutex
	readers int // set while the graph is built: 1 + the number of backward ops
	free    []any
	leases  []poolLease
}

type poolLease struct {
	t    *tensor.Dense
	ws   any
	left int
}

const maxLeases = 8

// takeFree removes and returns a free workspace of type W, if the pool has one.
func takeFree[W any](p *leasePool) (W, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.free) - 1; i >= 0; i-- {
		if w, ok := p.free[i].(W); ok {
			p.free = slices.Delete(p.free, i, i+1)
			return w, true
		}
	}
	var none W
	return none, false
}

// lease records that t, backed by workspace ws, holds a run that p.readers readers will read.
func (p *leasePool) lease(t *tensor.Dense, ws any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.leases) == maxLeases {
		p.leases = slices.Delete(p.leases, 0, 1)
	}
	p.leases = append(p.leases, poolLease{t: t, ws: ws, left: p.readers})
}

// checkIn records one read of t, done; the last read returns t's workspace to the pool.
func (p *leasePool) checkIn(t *tensor.Dense) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.leases {
		if p.leases[i].t == t {
			if p.leases[i].left--; p.leases[i].left == 0 {
				p.free = append(p.free, p.leases[i].ws)
				p.leases = slices.Delete(p.leases, i, i+1)
			}
			return
		}
	}
}

// leased returns the workspace of t if it still holds the run that made t, else nil.
func (p *leasePool) leased(t *tensor.Dense) any {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.leases {
		if l.t == t {
			return l.ws
		}
	}
	return nil
}
