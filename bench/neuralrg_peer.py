#!/usr/bin/env python3
"""Times one reverse-KL training step of NeuralRG's OWN code (a checkout the user provides; rgflow does not
ship it) on the same target as `rgflow bench`: real φ⁴ in the standard convention,
S = Σ_x [½ Σ_μ (φ_{x+μ} − φ_x)² + ½ m² φ_x² + λ φ_x⁴] at m² = −4, λ = 1.502, batch 256, one thread.

The network is the one of NeuralRG's README command (-nlayers 10 -nmlp 3 -nhidden 10 -nrepeat 1), built by
its own train.symmetryMERAInit; --symmetry wraps it in its Z₂ Symmetrized flow (compare with
`rgflow bench --symmetrize`). One step is NeuralRG's own training step (train/learn.py): x, log q =
flow.sample(batch); loss = mean(log q + S(x)); backward; Adam. Prints one JSON line with the median ms/step.

Needs Debian's python3-torch and python3-h5py's absence is tolerated only if NeuralRG imports without it.
Usage: python3 bench/neuralrg_peer.py --neuralrg ~/src/NeuralRG --L 8 --dtype float32 --steps 20 [--symmetry]
"""
import argparse
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--neuralrg", required=True, help="path of a NeuralRG checkout")
    ap.add_argument("--L", type=int, default=8)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--symmetry", action="store_true")
    args = ap.parse_args()

    root = os.path.abspath(os.path.expanduser(args.neuralrg))
    if not os.path.isfile(os.path.join(root, "train", "learn.py")):
        sys.exit(f"neuralrg_peer: {root} is not a NeuralRG checkout (no train/learn.py)")
    sys.path.insert(0, root)
    import torch
    torch.set_num_threads(1)
    torch.manual_seed(1)
    import train  # NeuralRG's package

    dtype = torch.float32 if args.dtype == "float32" else torch.float64
    sym = [lambda x: -x] if args.symmetry else None
    fw = train.symmetryMERAInit(args.L, 2, 10, 3, 10, 1, sym, torch.device("cpu"), dtype, "bench")
    opt = torch.optim.Adam([p for p in fw.parameters() if p.requires_grad], lr=1e-3)
    m2, lam = -4.0, 1.502

    def action(x):  # x: (B, 1, L, L)
        kin = sum(((torch.roll(x, -1, d) - x) ** 2).sum(dim=(1, 2, 3)) for d in (2, 3))
        return 0.5 * kin + (0.5 * m2 * x ** 2 + lam * x ** 4).sum(dim=(1, 2, 3))

    times = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        x, logq = fw.sample(args.batch)
        loss = (logq + action(x)).mean()
        fw.zero_grad()
        loss.backward()
        opt.step()
        if i >= args.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    print(json.dumps({"L": args.L, "dtype": args.dtype, "symmetry": args.symmetry, "batch": args.batch,
                      "median_ms_per_step": times[len(times) // 2], "min_ms_per_step": times[0]}))


if __name__ == "__main__":
    main()
