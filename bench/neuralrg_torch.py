#!/usr/bin/env python3
"""Same-model PyTorch timing of one reverse-KL training step of rgflow's `neuralrg` preset.

The model is the one `rgflow bench` trains: NeuralRG's hierarchy on an L×L lattice with 2×2 blocks, a
disentangler (offset 0) and a decimator (offset 2^l) per level, 10 affine couplings per block with
separate MLP 2→10→10→10→2 (ELU) conditioners for s and t, s = scale·tanh(net), the two halves kept as
separate tensors, a standard normal prior; the target is real φ⁴ in the standard convention at m² = −4,
λ = 1.502. One step: draw z, generate x (inverse direction), log q, S(x), loss = mean(log q + S),
backward, Adam. One thread. Prints one JSON line with the median ms/step.

Optional: needs Debian's python3-torch (apt-get install python3-torch); not part of the tests.
Usage: python3 bench/neuralrg_torch.py --L 8 --dtype float32 --steps 30
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn


def blocks(L, k, level, decimator):
    d = 1 << level
    stride = k * d
    off = (k // 2) * d if decimator else 0
    nb = L // stride
    out = []
    for bi in range(nb):
        for bj in range(nb):
            out.append([((off + bi * stride + a * d) % L) * L + (off + bj * stride + b * d) % L
                        for a in range(k) for b in range(k)])
    return out


def mlp(i, o, hidden):
    layers, w = [], [i] + hidden + [o]
    for a in range(len(w) - 1):
        layers.append(nn.Linear(w[a], w[a + 1]))
        if a + 2 < len(w):
            layers.append(nn.ELU())
    return nn.Sequential(*layers)


class RealNVP(nn.Module):
    def __init__(self, dim, couplings, hidden, gen):
        super().__init__()
        self.splits = []
        for _ in range((couplings + 1) // 2):
            perm = torch.randperm(dim, generator=gen).tolist()
            self.splits.append((sorted(perm[: dim // 2]), sorted(perm[dim // 2:])))
        self.s = nn.ModuleList()
        self.t = nn.ModuleList()
        self.scale = nn.ParameterList()
        for c in range(couplings):
            a, b = self.splits[c // 2]
            v, u = (a, b) if c % 2 == 0 else (b, a)
            self.s.append(mlp(len(v), len(u), hidden))
            t = mlp(len(v), len(u), hidden)
            nn.init.zeros_(t[-1].weight)
            nn.init.zeros_(t[-1].bias)
            self.t.append(t)
            self.scale.append(nn.Parameter(torch.zeros(len(u))))
        self.n = couplings

    def inverse(self, x):  # x: (N, dim); generation direction
        ld = torch.zeros(x.shape[0], dtype=x.dtype)
        for si in reversed(range(len(self.splits))):
            a, b = self.splits[si]
            xa, xb = x[:, a], x[:, b]
            for c in reversed(range(2 * si, min(2 * si + 2, self.n))):
                if c % 2 == 0:
                    v, u = xa, xb
                else:
                    v, u = xb, xa
                s = self.scale[c] * torch.tanh(self.s[c](v))
                u = (u - self.t[c](v)) * torch.exp(-s)
                ld = ld - s.sum(1)
                if c % 2 == 0:
                    xb = u
                else:
                    xa = u
            out = torch.empty_like(x)
            out[:, a] = xa
            out[:, b] = xb
            x = out
        return x, ld


class NeuralRG(nn.Module):
    def __init__(self, L, couplings=10, hidden=(10, 10, 10), seed=1):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        levels = int(math.log2(L))
        self.L = L
        self.idx, self.nvp = [], nn.ModuleList()
        for l in range(levels):
            for dec in (False, True):
                self.idx.append(torch.tensor(blocks(L, 2, l, dec)))
                self.nvp.append(RealNVP(4, couplings, list(hidden), gen))

    def generate(self, z):  # z: (B, L*L)
        B = z.shape[0]
        x, ld = z, torch.zeros(B, dtype=z.dtype)
        for idx, nvp in zip(reversed(self.idx), reversed(self.nvp)):
            nb = idx.shape[0]
            rows = x[:, idx].reshape(B * nb, 4)
            y, l = nvp.inverse(rows)
            x = x.clone()
            x[:, idx] = y.reshape(B, nb, 4)
            ld = ld + l.reshape(B, nb).sum(1)
        return x, ld


def phi4(x, L, m2, lam):
    f = x.reshape(-1, L, L)
    kin = ((torch.roll(f, -1, 1) - f) ** 2 + (torch.roll(f, -1, 2) - f) ** 2).sum((1, 2)) * 0.5
    return kin + (0.5 * m2 * f ** 2 + lam * f ** 4).sum((1, 2))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--L", type=int, default=8)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    dt = torch.float32 if a.dtype == "float32" else torch.float64
    torch.set_default_dtype(dt)
    torch.manual_seed(1)
    model = NeuralRG(a.L)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    V = a.L * a.L
    times = []
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        z = torch.randn(a.batch, V)
        x, ld = model.generate(z)
        logq = (-0.5 * z ** 2).sum(1) - 0.5 * V * math.log(2 * math.pi) - ld
        loss = (logq + phi4(x, a.L, -4.0, 1.502)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    print(json.dumps({"impl": "pytorch " + torch.__version__, "L": a.L, "batch": a.batch, "dtype": a.dtype,
                      "params": sum(q.numel() for q in model.parameters()), "steps": len(times),
                      "median_ms_per_step": 1000 * times[len(times) // 2], "min_ms_per_step": 1000 * times[0]}))


if __name__ == "__main__":
    main()
