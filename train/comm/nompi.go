//go:build !mpi && !mpich

package comm

import (
	"fmt"
	"os"
	"strconv"
)

// Available reports whether this binary was built with MPI (build tag mpi or mpich).
const Available = false

// MPI, in a build without the mpi or mpich tag, is the group of one. Started by a launcher as one of
// several processes (Open MPI's, MPICH's/Hydra's or Slurm's PMI environment says so) it is an error instead:
// each copy would otherwise train the whole job on its own, all writing the same run directory.
func MPI() (Comm, error) {
	for _, v := range []string{"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"} {
		if n, err := strconv.Atoi(os.Getenv(v)); err == nil && n > 1 {
			return nil, fmt.Errorf("comm: started as one of %d MPI processes (%s), but this binary was built without MPI; rebuild it with -tags mpi (Open MPI) or -tags mpich", n, v)
		}
	}
	return Single(), nil
}

// Finalize does nothing without MPI.
func Finalize() {}

// Abort does nothing without MPI.
func Abort() {}
