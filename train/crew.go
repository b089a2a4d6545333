package train

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// A step's parallel work (the workers' graphs, the reduce, the optimiser update) runs on a crew: part 0 on
// the calling goroutine and parts 1…n−1 on goroutines that live as long as the Trainer. Between jobs they wait
// for the next one by spinning for up to crewSpin before they block, and the caller waits for them (and the
// workers for each other at the weight-copy barrier) the same way.
//
// Why spin: on the VMs this project is measured on, waking a goroutine that sleeps on another core takes
// 100–145 µs (median; the idle virtual CPU halts and is woken through the hypervisor), against under a
// microsecond for one that is spinning (measured with a goroutine signalled while the signaller keeps
// working; a fresh goroutine per part, as `go f()` or sync.WaitGroup.Go, waits as long for a core to pick it
// up). A training step crossed cores that way four times (starting the workers, the barrier, the reduce,
// the update), about half a millisecond of a two-worker image step of 18 ms. Spinning is bounded, and is
// left out when the crew has more members than GOMAXPROCS (a spinner would hold a processor that a member
// with work needs); a spinning goroutine yields (runtime.Gosched) between checks, so that the garbage
// collector or anything else runnable goes first. The spin shows as CPU time of the parallel phase (at most
// crewSpin per member per wait).

// crewSpin is how long a crew member, the caller or a worker at the barrier spins before it blocks: a little
// more than a wake-up across cores costs on the VMs measured, so that a wait that would have needed one is
// served by the spin, and a long wait (between steps, while a checkpoint is written) costs at most this much
// CPU before it sleeps.
const crewSpin = 200 * time.Microsecond

// spinUntil reports whether ready() became true within d, checking it in a loop that yields the processor
// between checks.
func spinUntil(ready func() bool, d time.Duration) bool {
	if d <= 0 {
		return ready()
	}
	start := time.Now()
	for i := 0; ; i++ {
		if ready() {
			return true
		}
		if i&15 == 15 && time.Since(start) > d {
			return ready()
		}
		runtime.Gosched()
	}
}

// crew is a team of size goroutines (the caller and size−1 members) that runs jobs f(0…size−1) together.
// Not safe for concurrent use: one caller runs one job at a time.
type crew struct {
	size int
	spin time.Duration // 0: block at once (more members than GOMAXPROCS)

	mu      sync.Mutex
	cond    *sync.Cond    // members blocked waiting for a job (gen changes under mu)
	gen     atomic.Uint64 // the number of jobs started
	stopped bool          // under mu: the members return

	job     func(i int)   // the current job (written before gen moves on)
	pending atomic.Int64  // members still running the current job
	done    chan struct{} // closed by the member that finishes the current job last
	exited  sync.WaitGroup
}

// spinFor is how long a crew of size goroutines spins before blocking: crewSpin, or 0 when the crew has more
// goroutines than GOMAXPROCS.
func spinFor(size int) time.Duration {
	if size > runtime.GOMAXPROCS(0) {
		return 0
	}
	return crewSpin
}

// newCrew starts the size−1 members of a crew of size goroutines (size ≥ 1) that spin for up to spin before
// they block (see spinFor).
func newCrew(size int, spin time.Duration) *crew {
	c := &crew{size: max(1, size), spin: spin}
	c.cond = sync.NewCond(&c.mu)
	for i := 1; i < c.size; i++ {
		c.exited.Add(1)
		go c.member(i)
	}
	return c
}

// run runs f(i) for every i in [0, n) (n ≤ size): f(0) on the calling goroutine, the others on members, and
// returns when all have returned. Everything f writes is visible to the caller afterwards.
// A nil crew runs the parts one after another on the caller.
func (c *crew) run(n int, f func(i int)) {
	if c == nil || n <= 1 || c.size == 1 {
		for i := range n {
			f(i)
		}
		return
	}
	if n > c.size {
		panic("train: crew.run: more parts than members")
	}
	done := make(chan struct{})
	c.job = func(i int) {
		if i < n {
			f(i)
		}
	}
	c.done = done
	c.pending.Store(int64(c.size - 1))
	c.mu.Lock()
	c.gen.Add(1)
	c.cond.Broadcast()
	c.mu.Unlock()
	f(0)
	if !spinUntil(func() bool { return c.pending.Load() == 0 }, c.spin) {
		<-done
	}
	c.job = nil
}

// member is the loop of member i: wait for the next job, run its part, report.
func (c *crew) member(i int) {
	defer c.exited.Done()
	seen := uint64(0)
	for {
		next := func() bool { return c.gen.Load() != seen }
		if !spinUntil(next, c.spin) {
			c.mu.Lock()
			for !next() && !c.stopped {
				c.cond.Wait()
			}
			stop := c.stopped && !next()
			c.mu.Unlock()
			if stop {
				return
			}
		}
		seen = c.gen.Load()
		done := c.done // read before reporting: the caller replaces it for the next job once all have reported
		c.job(i)
		if c.pending.Add(-1) == 0 {
			close(done)
		}
	}
}

// stop ends the members (after the job in progress, if any) and waits for them. Safe to call more than once.
func (c *crew) stop() {
	c.mu.Lock()
	c.stopped = true
	c.cond.Broadcast()
	c.mu.Unlock()
	c.exited.Wait()
}

// barrier lets n goroutines wait until all of them have arrived, spinning for up to spin before blocking.
type barrier struct {
	left atomic.Int64
	all  chan struct{} // closed by the last to arrive
	spin time.Duration
}

func newBarrier(n int, spin time.Duration) *barrier {
	b := &barrier{all: make(chan struct{}), spin: spin}
	b.left.Store(int64(n))
	return b
}

// arrive counts the caller in without waiting.
func (b *barrier) arrive() {
	if b.left.Add(-1) == 0 {
		close(b.all)
	}
}

// wait returns when every party has arrived.
func (b *barrier) wait() {
	if !spinUntil(func() bool { return b.left.Load() <= 0 }, b.spin) {
		<-b.all
	}
}
