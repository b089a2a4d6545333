#!/usr/bin/env python3
"""Same-model PyTorch timing of one maximum-likelihood training step of rgflow's `rgflow-small` image model.

The model is what `rgflow train images --preset rgflow-small --input-actnorm [--width W]` trains on 32×32 grey
images: a per-site input ActNorm, then RG-Flow's hierarchy (4×4 blocks, a disentangler at offset 0 and a
decimator at offset 2·2^l per level, levels 0…3) whose block bijectors are RealNVP stacks with a checkerboard
split, 4, 4, 2, 2 couplings per level, one weight-normalised residual-MLP conditioner per coupling (width W, one
residual block, swish) giving s and t, s = scale·tanh(·); Laplace prior (b = 1/√2). One step: uniform
dequantisation, logit(0.05 + 0.9 x̃) with its log-Jacobian, forward pass, −mean log p, backward, Adam. Random
pixels (speed only). One thread. Prints one JSON line with the median wall-clock and CPU milliseconds per step
(the CPU time, user + system of the process, excludes the waits for a core on a loaded machine).

Optional: needs Debian's python3-torch; not part of the tests.
Usage: python3 bench/rgflow_torch.py --width 64 --steps 20
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def blocks(L, k, level, decimator):
    d = 1 << level
    stride = k * d
    off = (k // 2) * d if decimator else 0
    nb = L // stride
    return [[((off + bi * stride + a * d) % L) * L + (off + bj * stride + b * d) % L
             for a in range(k) for b in range(k)] for bi in range(nb) for bj in range(nb)]


class WNLinear(nn.Module):
    def __init__(self, i, o, zero=False):
        super().__init__()
        self.v = nn.Parameter(torch.empty(o, i).uniform_(-math.sqrt(6 / (i + o)), math.sqrt(6 / (i + o))))
        self.g = nn.Parameter(torch.zeros(o) if zero else torch.ones(o))
        self.b = nn.Parameter(torch.zeros(o))

    def forward(self, x):
        w = self.v * (self.g / self.v.norm(dim=1)).unsqueeze(1)
        return F.linear(x, w, self.b)


class ResMLP(nn.Module):
    def __init__(self, i, o, width, blocks=1):
        super().__init__()
        self.inp = WNLinear(i, width)
        self.res = nn.ModuleList([nn.ModuleList([WNLinear(width, width), WNLinear(width, width)]) for _ in range(blocks)])
        self.out = WNLinear(width, o, zero=True)

    def forward(self, x):
        h = self.inp(x)
        for l0, l1 in self.res:
            h = (h + l1(F.silu(l0(F.silu(h))))) / math.sqrt(2)
        return self.out(F.silu(h))


class RealNVP(nn.Module):
    def __init__(self, depth, width):
        super().__init__()
        a = [i * 4 + j for i in range(4) for j in range(4) if (i + j) % 2 == 0]
        b = [i * 4 + j for i in range(4) for j in range(4) if (i + j) % 2 == 1]
        self.a, self.b = a, b
        self.nets = nn.ModuleList([ResMLP(8, 16, width) for _ in range(depth)])
        self.scale = nn.ParameterList([nn.Parameter(torch.zeros(8)) for _ in range(depth)])

    def forward(self, x):  # (N, 16), inference direction
        xa, xb = x[:, self.a], x[:, self.b]
        ld = torch.zeros(x.shape[0])
        for c, net in enumerate(self.nets):
            v, u = (xa, xb) if c % 2 == 0 else (xb, xa)
            st = net(v)
            s = self.scale[c] * torch.tanh(st[:, :8])
            u = u * torch.exp(s) + st[:, 8:]
            ld = ld + s.sum(1)
            if c % 2 == 0:
                xb = u
            else:
                xa = u
        out = torch.empty_like(x)
        out[:, self.a] = xa
        out[:, self.b] = xb
        return out, ld


class RGFlow(nn.Module):
    def __init__(self, L=32, width=64, depths=(4, 4, 2, 2)):
        super().__init__()
        self.L = L
        self.bias = nn.Parameter(torch.zeros(L * L))
        self.logs = nn.Parameter(torch.zeros(L * L))
        self.idx, self.nvp = [], nn.ModuleList()
        for l, d in enumerate(depths):
            for dec in (False, True):
                self.idx.append(torch.tensor(blocks(L, 4, l, dec)))
                self.nvp.append(RealNVP(d, width))

    def forward(self, y):  # (B, L*L)
        B = y.shape[0]
        x = (y + self.bias) * torch.exp(self.logs)
        ld = self.logs.sum().expand(B)
        for idx, nvp in zip(self.idx, self.nvp):
            nb = idx.shape[0]
            rows = x[:, idx].reshape(B * nb, 16)
            z, l = nvp(rows)
            x = x.clone()
            x[:, idx] = z.reshape(B, nb, 16)
            ld = ld + l.reshape(B, nb).sum(1)
        return x, ld


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(1)
    L, D = 32, 32 * 32
    model = RGFlow(L, a.width)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    b = 1 / math.sqrt(2)
    times, cpu = [], []
    for step in range(a.warmup + a.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        pix = torch.randint(0, 256, (a.batch, D)).float()
        xt = (pix + torch.rand(a.batch, D)) / 256
        p_ = 0.05 + 0.9 * xt
        y = torch.log(p_) - torch.log1p(-p_)
        ldpre = (math.log(0.9) - torch.log(p_) - torch.log1p(-p_)).sum(1)
        z, ld = model(y)
        logp = (-z.abs() / b - math.log(2 * b)).sum(1) + ld + ldpre
        loss = -logp.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    times.sort()
    cpu.sort()
    print(json.dumps({"impl": "pytorch " + torch.__version__, "width": a.width, "batch": a.batch,
                      "params": sum(q.numel() for q in model.parameters()), "steps": len(times),
                      "median_ms_per_step": 1000 * times[len(times) // 2],
                      "median_cpu_ms_per_step": 1000 * cpu[len(cpu) // 2]}))


if __name__ == "__main__":
    main()
