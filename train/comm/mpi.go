//go:build mpi || mpich

package comm

import (
	"fmt"
	"runtime"
	"sync"

	"cogentcore.org/lab/base/mpi"
)

// Available reports whether this binary was built with MPI (build tag mpi or mpich).
const Available = true

// mpiState is the process's MPI world: initialised once, on first use.
type mpiState struct {
	once sync.Once
	comm *mpi.Comm
	err  error
}

// MPI initialises MPI (once per process) and returns the world communicator. Call Finalize (or Abort)
// before the process exits.
//
// Threads: MPI is asked for MPI_THREAD_MULTIPLE. A library that grants less is still initialised, and the
// calling goroutine is locked to its OS thread, so collective calls made from that goroutine (the Trainer
// makes them all from the goroutine that calls Run) always come from one thread, which every thread level
// above MPI_THREAD_SINGLE allows.
func MPI() (Comm, error) {
	world.once.Do(func() {
		runtime.LockOSThread()
		_ = mpi.InitThreadSafe() // its only error is a lower thread level than asked for; see above
		if !mpi.IsOn() {
			world.err = fmt.Errorf("comm: MPI did not initialise")
			return
		}
		c, err := mpi.NewComm(nil)
		if err != nil {
			world.err = fmt.Errorf("comm: the MPI world communicator: %w", err)
			return
		}
		world.comm = c
	})
	if world.err != nil {
		return nil, world.err
	}
	return mpiComm{world.comm}, nil
}

// Finalize shuts MPI down if MPI started it; afterwards no MPI communicator may be used.
func Finalize() {
	if world.comm != nil {
		mpi.Finalize()
	}
}

// Abort ends every process of the MPI job (MPI_Abort), for a rank that fails: the others would otherwise
// wait for it in their next collective call. It does nothing when MPI was not started.
func Abort() {
	if world.comm != nil && world.comm.Size() > 1 {
		_ = world.comm.Abort()
	}
}

// world is the process's MPI state; MPI itself is process-global, so this is too.
var world mpiState

type mpiComm struct{ c *mpi.Comm }

func (m mpiComm) Rank() int { return m.c.Rank() }
func (m mpiComm) Size() int { return m.c.Size() }

// The in-place form (orig nil) passes MPI_IN_PLACE; the single-process stand-in of the library would leave
// dest alone, which is also the right answer for a group of one.
func (m mpiComm) AllReduceSum64(buf []float64) error {
	if len(buf) == 0 {
		return nil
	}
	return m.c.AllReduceF64(mpi.OpSum, buf, nil)
}

func (m mpiComm) AllReduceSum32(buf []float32) error {
	if len(buf) == 0 {
		return nil
	}
	return m.c.AllReduceF32(mpi.OpSum, buf, nil)
}

func (m mpiComm) Broadcast64(root int, buf []float64) error {
	if err := checkRoot(root, m.Size()); err != nil || len(buf) == 0 {
		return err
	}
	return m.c.BcastF64(root, buf)
}

func (m mpiComm) Broadcast32(root int, buf []float32) error {
	if err := checkRoot(root, m.Size()); err != nil || len(buf) == 0 {
		return err
	}
	return m.c.BcastF32(root, buf)
}

func (m mpiComm) Barrier() error { return m.c.Barrier() }
