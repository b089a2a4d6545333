// Package train holds rgflow's one training loop: a Trainer that drives any Objective, an Adam/AdamW optimiser
// whose state is keyed by parameter name and saved with the weights, learning-rate schedules, hooks, metrics
// logging, progress display, and exact resume from checkpoints.
//
// Conventions (every type in this package obeys them):
//
//   - Steps are counted in completed optimiser updates. Trainer.Step() = 0 before training; the update that
//     Record, metrics.jsonl and error messages call "step n" is the n-th one; a checkpoint of step n holds the
//     state after n updates; Schedule.LR(n−1) is the learning rate of step n. Config.Steps is the run's total,
//     so a resumed run stops at the same step as an uninterrupted one.
//   - One graph per worker, built once (one worker unless Config.Workers > 1 or Config.Comm has several
//     ranks; see "Data parallelism" below): Objective.Build binds the parameters through a layers.Scope, one
//     layers.Grad over all bound parameters that are not frozen, one tape machine. layers.Grad (not G.Grad,
//     which silently reuses the derivative nodes of an earlier differentiation) lets Build itself take
//     gradients — forces ∇ₓS_θ, divergences, scores — so the Trainer's gradient is then a correct mixed
//     second derivative, as long as the twice-differentiated part of the graph uses second-order safe ops
//     (see the layers package doc). Each step: Feed, RunAll, read loss and gradients (copied out by G.Read
//     nodes), check finiteness, clip, update the Store's tensors in place, update the moving average, Reset.
//   - Frozen parameters (layers.Store.Freeze, before New) are bound and read but get no gradient, no Adam state
//     and no update; checkpoints save them like any weight and record their names (Extra["frozen"]), and
//     Resume requires the same ones to be frozen. Buffers (layers.Scope.Buffer) are model state that is not
//     trained; whoever owns them updates them on the host, and checkpoints save and restore them.
//   - Config.EMADecay > 0 keeps an EMA (torch-ema style, with its warm-up; see EMA) of the trained weights,
//     updated after every optimiser step, saved as "ema/<param>" with Extra["ema_decay"] and
//     Extra["ema_updates"], and resumed bit for bit. LoadRunWeights loads either the averages or the raw
//     weights for sampling and evaluation.
//   - Randomness: the Trainer owns one math/rand/v2 PCG seeded from Config.Seed and hands rand.New(pcg) to
//     Objective.Feed; the PCG state is saved in every checkpoint. An objective that draws only from that rng
//     resumes bit for bit: N steps + checkpoint + Resume in a fresh process + N steps equals 2N steps exactly,
//     in float32 and float64.
//   - The optimiser computes in the Store's dtype, like torch, with torch's formulas (see Adam); its state
//     arrays are named adam/m/<param>, adam/v/<param>, adam/step/<param>.
//   - Run directory (Config.Out): metrics.jsonl (one JSON object per logged step: step, loss, loss_mean, lr,
//     grad_norm, clipped, wall_s, then the objective's metrics; NaN/Inf written as null) and
//     checkpoints/step-NNNNNNN.safetensors (package checkpoints), of which the newest Config.Keep are kept.
//   - Failure modes stop cleanly: a NaN/Inf loss or gradient returns a *NonFiniteError before the update is
//     applied and writes nothing, so the last checkpoint stays the last good one; a cancelled context (see
//     ContextWithSignals) finishes the step, writes a checkpoint and returns an error wrapping ErrInterrupted.
//     Both messages say how to resume (--resume DIR).
//   - Output goes to injected writers only (Config.Progress); nothing here touches os.Stderr or global state.
//
// Data parallelism. Config.Batch is the global batch. It is cut into contiguous shards (Split): first over the
// ranks of Config.Comm (package comm: the process alone, in-process goroutine ranks, or MPI), then over the
// Config.Workers workers of each process. Every worker has its own copy of the objective
// (ShardedObjective.NewShard), its own graph built for its shard size and its own tape machine (building is
// sequential; independent graph+machine pairs are safe in separate goroutines). The first worker binds the
// Store's tensors; the others bind private copies, refreshed from the Store before every step, because
// Gorgonia's matrix product transposes an operand in place during the backward pass, which a second graph
// reading the same tensor at the same time would see. A step:
//
//   - each worker calls FeedShard with its Shard and runs its graph, in parallel;
//   - its loss and gradient (a mean over its shard) are multiplied by shard size / global batch, so that their
//     sum is the mean over the global batch;
//   - the workers' vectors are summed in worker order, then all-reduced over the ranks (in the Store's dtype:
//     a float32 model sends 4 bytes per parameter), so every rank holds the same gradient;
//   - every rank applies the same clipped Adam update to its own copy of the weights (rank 0's initial
//     weights are broadcast by New), so the copies stay identical without further communication;
//   - metrics come from the per-sample numbers of every shard (SampleReporter), gathered by an all-reduce of
//     zero-padded vectors (adding zeros is exact), so they are those of the whole batch.
//
// Rank 0 alone writes Out, shows progress and runs the hooks; a stop request (a cancelled context on any
// rank) is agreed by an all-reduce before each step, so all ranks stop before the same one.
//
// Reproducibility. A ShardedObjective draws sample j of step s from Shard.Rand(j), a PCG seeded from
// (Config.Seed, s, j) only, and takes its data in an order that depends on the step only. The content of the
// global batch is then bit for bit the same for any number of workers or ranks, and the trainer's own PCG is
// not used. For a fixed split the run is bit for bit reproducible (the worker-order sum does not depend on
// scheduling; MPI's all-reduce order is fixed for a fixed process count and library). Across splits the
// shard means and sums are added in a different order, so losses and weights agree to rounding only (a few
// ulps per step, carried forward by Adam). Checkpoints hold nothing per worker: a run may be resumed on any
// other number of workers or ranks at the same global batch. Objectives that are not sharded are fed from
// the trainer's PCG by Feed, on one worker in one process, as before.
package train
