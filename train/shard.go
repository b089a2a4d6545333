package train

import (
	"fmt"
	"math/rand/v2"
)

// ShardedObjective is an Objective that the Trainer can split over workers: every worker builds its own
// copy's graph for its part of the global batch (Build(scope, shard size)) and feeds it with FeedShard.
//
// For a run whose numbers do not depend on how the batch is split, FeedShard must draw the randomness of
// global sample j from sh.Rand(j) only (and any data in an order that depends on the step and j only): the
// global batch is then the same, sample for sample and bit for bit, for every worker count.
type ShardedObjective interface {
	Objective
	// NewShard returns a fresh, unbuilt objective with the same settings (it may share read-only data such
	// as a dataset), for another worker.
	NewShard() (ShardedObjective, error)
	// FeedShard Let()s the samples [sh.Offset, sh.Offset+sh.Size) of the global batch of step sh.Step into
	// the graph that Build made for sh.Size samples.
	FeedShard(sh *Shard) error
}

// SampleReporter is implemented by sharded objectives whose metrics are functions of per-sample numbers:
// the Trainer gathers the numbers of every shard, in global sample order, and asks the first worker's
// objective for the metrics of the whole batch. (A plain MetricsReporter only sees its own shard, so with
// more than one worker the Trainer uses SampleReporter when the objective has it, and no metrics otherwise.)
type SampleReporter interface {
	// SampleValues returns, for the shard last run, named per-sample numbers (each slice of the shard's
	// size). The names must be the same at every step and on every worker.
	SampleValues() map[string][]float64
	// MetricsOf returns the metrics of a step from the global batch's per-sample numbers.
	MetricsOf(values map[string][]float64) map[string]float64
}

// Shard is one worker's part of a step's global batch, with the per-sample random streams.
type Shard struct {
	Step   int64 // completed steps before this one (0 for the first step of a run)
	Offset int   // index of the shard's first sample in the global batch
	Size   int   // samples in the shard
	Batch  int   // the global batch size

	seed uint64
	pcg  rand.PCG
	rng  *rand.Rand
}

// newShard returns the shard [offset, offset+size) of a global batch, for streams derived from seed.
func newShard(seed uint64, offset, size, batch int) *Shard {
	sh := &Shard{Offset: offset, Size: size, Batch: batch, seed: seed}
	sh.rng = rand.New(&sh.pcg)
	return sh
}

// Rand returns the random stream of global sample j (0 ≤ j < Batch) of the shard's step: a PCG seeded from
// (Seed, Step, j) alone, so a sample's randomness does not depend on which worker draws it or how many
// there are, and a run resumed at any step needs no saved generator state for it. The returned generator
// is reused by the next call (draw sample j completely before asking for j+1).
func (sh *Shard) Rand(j int) *rand.Rand {
	if j < 0 || j >= sh.Batch {
		panic(fmt.Sprintf("train: Shard.Rand(%d) outside the global batch of %d", j, sh.Batch))
	}
	hi, lo := SampleSeed(sh.seed, sh.Step, j)
	sh.pcg.Seed(hi, lo)
	return sh.rng
}

// SampleSeed is the PCG seed pair of global sample j at a step for a run seed: splitmix64 finalisers of
// the seed and step (first word) and of the sample index (second word).
func SampleSeed(seed uint64, step int64, j int) (uint64, uint64) {
	return mix64(seed ^ mix64(uint64(step)+0x632be59bd9b4e019)), mix64(uint64(j) ^ pcgStream)
}

// mix64 is splitmix64's finaliser, a bijection of uint64 that scrambles neighbouring inputs.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Split returns the sizes of n contiguous shards of a batch: the first batch mod n get one sample more.
func Split(batch, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = batch / n
		if i < batch%n {
			out[i]++
		}
	}
	return out
}

// MakeShard returns the shard [offset, offset+size) of a global batch at a step of a run with the given
// seed: what the Trainer hands a worker's FeedShard (for feeding an objective by hand, e.g. in its tests).
func MakeShard(seed uint64, step int64, offset, size, batch int) *Shard {
	sh := newShard(seed, offset, size, batch)
	sh.Step = step
	return sh
}
