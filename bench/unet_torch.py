#!/usr/bin/env python3
"""One DSM training step of rgflow's U-Net presets in PyTorch (the comparison side of
BenchmarkImageDSMStep): the same network (layers.UNet), the same ε-prediction loss (mean over pixels of
(ε̂ − ε)² under the VP cosine process, dequantised uint8 data) and Adam. One thread.
Prints a JSON line with the median time per step. Usage:
  unet_torch.py --preset unet-tiny --dtype float32 --batch 32 --size 32 --channels 3 --steps 10
"""
import argparse, json, math, time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    "unet-tiny": dict(ch=16, mults=(1, 2, 2), nres=1, groups=4),
    "unet-small": dict(ch=32, mults=(1, 2, 2), nres=2, groups=8),
}


def groups_for(c, g):
    for k in range(g, 1, -1):
        if c % k == 0:
            return k
    return 1


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb, groups):
        super().__init__()
        self.norm0 = nn.GroupNorm(groups_for(cin, groups), cin)
        self.conv0 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm1 = nn.GroupNorm(groups, cout)
        self.film = nn.Linear(temb, 2 * cout)
        self.conv1 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None
        self.cout = cout

    def forward(self, x, temb):
        h = self.conv0(F.silu(self.norm0(x)))
        h = self.norm1(h)
        gb = self.film(temb)
        g, b = gb[:, : self.cout, None, None], gb[:, self.cout:, None, None]
        h = h * (1 + g) + b
        h = self.conv1(F.silu(h))
        return h + (self.skip(x) if self.skip is not None else x)


class UNet(nn.Module):
    def __init__(self, cin, ch, mults, nres, groups):
        super().__init__()
        self.ch, self.mults, self.nres = ch, mults, nres
        temb = 4 * ch
        self.dense0, self.dense1 = nn.Linear(ch, temb), nn.Linear(temb, temb)
        self.conv_in = nn.Conv2d(cin, ch, 3, padding=1)
        self.down = nn.ModuleList()
        skips, c = [ch], ch
        for l, m in enumerate(mults):
            for _ in range(nres):
                self.down.append(ResBlock(c, ch * m, temb, groups))
                c = ch * m
                skips.append(c)
            if l < len(mults) - 1:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid = nn.ModuleList([ResBlock(c, c, temb, groups), ResBlock(c, c, temb, groups)])
        self.up = nn.ModuleList()
        for l in reversed(range(len(mults))):
            for _ in range(nres + 1):
                self.up.append(ResBlock(c + skips.pop(), ch * mults[l], temb, groups))
                c = ch * mults[l]
            if l > 0:
                self.up.append(nn.Conv2d(c, c, 3, padding=1))
        self.norm_out = nn.GroupNorm(groups, c)
        self.conv_out = nn.Conv2d(c, cin, 3, padding=1)

    def embed(self, t):
        k = self.ch // 2
        w = 1000 * torch.exp(-math.log(10000) * torch.arange(k, dtype=t.dtype) / k)
        a = t[:, None] * w[None]
        return torch.cat([torch.cos(a), torch.sin(a)], 1)

    def forward(self, x, t):
        temb = F.silu(self.dense1(F.silu(self.dense0(self.embed(t)))))
        h = self.conv_in(x)
        hs = [h]
        for m in self.down:
            h = m(h, temb) if isinstance(m, ResBlock) else m(h)
            hs.append(h)
        for m in self.mid:
            h = m(h, temb)
        for m in self.up:
            if isinstance(m, ResBlock):
                h = m(torch.cat([h, hs.pop()], 1), temb)
            else:
                h = m(F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="unet-tiny")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dt = getattr(torch, a.dtype)
    torch.manual_seed(0)
    net = UNet(a.channels, **PRESETS[a.preset]).to(dt)
    opt = torch.optim.Adam(net.parameters(), lr=2e-4)
    pix = torch.randint(0, 256, (256, a.channels, a.size, a.size), dtype=torch.uint8)
    lmin, lmax = -12.0, 12.0
    B0 = math.atan(math.exp(-lmax / 2))
    A = math.atan(math.exp(-lmin / 2)) - B0
    times, cpus = [], []
    for step in range(a.steps + 1):
        w0, c0 = time.perf_counter(), time.process_time()
        idx = torch.randint(0, 256, (a.batch,))
        x0 = 2 * (pix[idx].to(dt) + torch.rand(a.batch, a.channels, a.size, a.size, dtype=dt)) / 256 - 1
        t = 1e-3 + (1 - 1e-3) * torch.rand(a.batch, dtype=dt)
        lam = -2 * torch.log(torch.tan(A * t + B0))
        alpha, sigma = torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()
        eps = torch.randn_like(x0)
        xt = alpha[:, None, None, None] * x0 + sigma[:, None, None, None] * eps
        loss = ((net(xt, t) - eps) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step > 0:  # the first step warms up allocators and oneDNN
            times.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
    times.sort(); cpus.sort()
    print(json.dumps({"preset": a.preset, "dtype": a.dtype, "params": sum(p.numel() for p in net.parameters()),
                      "median_ms": 1e3 * times[len(times) // 2], "median_cpu_ms": 1e3 * cpus[len(cpus) // 2]}))


if __name__ == "__main__":
    main()
