"""PyTorch counterpart of rgflow's BenchmarkDSMStepL16 (losses/dsm_bench_test.go): one denoising score
matching training step of the lattice CNN score, on one thread. Prints one JSON line with the median wall
and CPU milliseconds per step.

The step, as rgflow's losses.DSM with diffusion.CNNScore does it:
  data:  a batch of Gaussian free fields (m² = 0.5) drawn in order from a fixed set of 1024;
  noise: t uniform in [t_min, T], the exact Carosso heat-flow transition per mode coordinate u = F x (F the
         real orthonormal Fourier basis; rate p̂² = Σ 4 sin²(πk/L), the zero mode at rate μ²),
         u_t = m u_0 + √q ε, x_t = Fᵀ u_t, scaled by c(t) = 1/√(mean_j v_j(t));
  net:   input (x_t c, its lattice mean) → [3×3 periodic conv + bias → FiLM(emb(t)) → elu] × depth
         → 3×3 periodic conv to 1 channel; emb(t) the 32-dimensional sinusoidal embedding of t·1000/T,
         FiLM h·(1+γ)+β with [γ; β] a linear map of the embedding;
  loss:  Σ_j (√q_j c s̃_j + ε_j)² / B with s̃ = F f (the variance weighting), backward, gradient norm
         clipped to 100, Adam.

Usage: /usr/bin/python3 bench/dsm_torch.py [--L 16] [--batch 128] [--width 32] [--depth 3] [--steps 20]
       [--dtype float32]   (set OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 too)
"""
import argparse
import json
import math
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--L", type=int, default=16)
ap.add_argument("--batch", type=int, default=128)
ap.add_argument("--width", type=int, default=32)
ap.add_argument("--depth", type=int, default=3)
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
args = ap.parse_args()

torch.set_num_threads(1)
torch.manual_seed(0)
dt = getattr(torch, args.dtype)
L, B, V = args.L, args.batch, args.L * args.L
omega, mu2, T, tmin, m2 = 1.0, 1.0, 4.0, 0.02, 0.5


def mode_basis(L):
    """Rows: the real orthonormal Fourier basis (cos/sin pairs, self-conjugate modes alone); the p̂² of each."""
    xs = np.stack(np.meshgrid(np.arange(L), np.arange(L), indexing="ij"), -1).reshape(-1, 2)
    rows, p2, seen = [], [], set()
    for k0 in range(L):
        for k1 in range(L):
            if (k0, k1) in seen:
                continue
            mk = ((-k0) % L, (-k1) % L)
            seen.update({(k0, k1), mk})
            ph = 2 * np.pi * (xs[:, 0] * k0 + xs[:, 1] * k1) / L
            q = 4 * np.sin(np.pi * k0 / L) ** 2 + 4 * np.sin(np.pi * k1 / L) ** 2
            if mk == (k0, k1):
                rows.append(np.cos(ph) / np.sqrt(L * L)); p2.append(q)
            else:
                rows.append(np.sqrt(2) * np.cos(ph) / np.sqrt(L * L)); p2.append(q)
                rows.append(np.sqrt(2) * np.sin(ph) / np.sqrt(L * L)); p2.append(q)
    return np.array(rows), np.array(p2)


Fm, p2 = mode_basis(L)
assert np.allclose(Fm @ Fm.T, np.eye(V), atol=1e-10)
rate = p2.copy()
rate[0] = mu2  # the zero mode
v0 = 1 / (p2 + m2)
Fm_t = torch.tensor(Fm, dtype=dt)
FmT_t = Fm_t.t().contiguous()
rate_t, v0_t = torch.tensor(rate, dtype=dt), torch.tensor(v0, dtype=dt)
gen = torch.Generator().manual_seed(1)
data = (torch.randn(1024, V, generator=gen, dtype=dt) * v0_t.sqrt()) @ Fm_t  # x = Fᵀ u, rows


class Net(torch.nn.Module):
    def __init__(self, cin, width, depth, emb=32):
        super().__init__()
        self.convs = torch.nn.ModuleList()
        self.films = torch.nn.ModuleList()
        c = cin
        for _ in range(depth):
            self.convs.append(torch.nn.Conv2d(c, width, 3))
            film = torch.nn.Linear(emb, 2 * width)
            torch.nn.init.zeros_(film.weight); torch.nn.init.zeros_(film.bias)
            self.films.append(film)
            c = width
        self.out = torch.nn.Conv2d(c, 1, 3)
        torch.nn.init.zeros_(self.out.weight); torch.nn.init.zeros_(self.out.bias)
        half = emb // 2
        self.register_buffer("freq", (1000 / T) * torch.exp(-math.log(10000) * torch.arange(half, dtype=dt) / half))

    def forward(self, x, t):
        a = t[:, None] * self.freq[None, :]
        e = torch.cat([torch.cos(a), torch.sin(a)], 1)
        h = x
        for conv, film in zip(self.convs, self.films):
            h = conv(F.pad(h, (1, 1, 1, 1), mode="circular"))
            g, b = film(e).chunk(2, 1)
            h = F.elu(h * (1 + g[:, :, None, None]) + b[:, :, None, None])
        return self.out(F.pad(h, (1, 1, 1, 1), mode="circular"))


net = Net(2, args.width, args.depth).to(dt)
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
pos = 0


def step():
    global pos
    with torch.no_grad():
        idx = torch.arange(pos, pos + B) % data.shape[0]
        pos += B
        x0 = data[idx]
        t = tmin + (T - tmin) * torch.rand(B, dtype=dt)
        m = torch.exp(-rate_t[None, :] * t[:, None])
        q = omega * (1 - m * m) / (2 * rate_t[None, :])
        eps = torch.randn(B, V, dtype=dt)
        ut = m * (x0 @ FmT_t) + q.sqrt() * eps
        c = 1 / (m * m * v0_t[None, :] + q).mean(1).sqrt()
        xt = (ut @ Fm_t) * c[:, None]
        xin = torch.stack([xt, xt.mean(1, keepdim=True).expand(B, V)], 1).reshape(B, 2, L, L)
        w = q.sqrt() * c[:, None]
    opt.zero_grad(set_to_none=True)
    f = net(xin, t).reshape(B, V)
    loss = ((f @ FmT_t) * w + eps).square().sum() / B
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 100)
    opt.step()
    return loss


for _ in range(3):
    step()
times, cpu = [], []
for _ in range(args.steps):
    t0, c0 = time.perf_counter(), time.process_time()
    step()
    times.append((time.perf_counter() - t0) * 1e3)
    cpu.append((time.process_time() - c0) * 1e3)
print(json.dumps({"L": L, "batch": B, "width": args.width, "depth": args.depth, "dtype": args.dtype,
                  "median_ms": round(statistics.median(times), 3), "median_cpu_ms": round(statistics.median(cpu), 3),
                  "torch": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available()}))
