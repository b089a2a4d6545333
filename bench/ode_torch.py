"""One reverse-KL step of the ode-gerdes flow in PyTorch, for comparison with
   go test ./models -run XXX -bench ODEGerdesReverseKLStep

Same model as rgflow's ode-gerdes preset: v_x(phi, t) = sum_y W(x - y, t) h(phi_y) with odd features
h = (phi, sin(w phi), w = 1..4), kernels over the whole periodic lattice parametrised on D4 orbits of the
offset, W(t) = sum_k P_k(2t - 1) W_k (3 Legendre polynomials), exact divergence
sum_x sum_f W_f(0, t) h_f'(phi_x); generation integrates from t = 1 to 0 with RK4; loss = mean[log q + S],
phi^4 S = sum[1/2 (d phi)^2 + 1/2 m2 phi^2 + lam phi^4]. Forward + backward, no optimiser update.

usage: OMP_NUM_THREADS=1 /usr/bin/python3 bench/ode_torch.py --L 16 --batch 256 --steps 8 --reps 5 [--dtype float64]
"""
import argparse
import math
import time

import torch


def orbits(L):
    pid = [-1] * (L * L)
    n = 0
    for p in range(L * L):
        if pid[p] >= 0:
            continue
        a0, b0 = p // L, p % L
        for flip in (0, 1):
            a, b = a0, (-b0 if flip else b0)
            for _ in range(4):
                pid[(a % L) * L + (b % L)] = n
                a, b = -b, a
        n += 1
    return pid, n


def legendre(K, t):
    s = 2 * t - 1
    b = []
    for k in range(K):
        if k == 0:
            b.append(1.0)
        elif k == 1:
            b.append(s)
        else:
            b.append(((2 * k - 1) * s * b[k - 1] - (k - 1) * b[k - 2]) / k)
    return b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--L", type=int, default=16)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--dtype", default="float64")
    ap.add_argument("--m2", type=float, default=-4.0)
    ap.add_argument("--lam", type=float, default=1.2)
    ap.add_argument("--fft", action="store_true",
                    help="the circulant product by real 2-D FFTs (torch.fft) instead of the dense circulant matrix")
    a = ap.parse_args()
    torch.set_num_threads(1)
    dt = getattr(torch, a.dtype)
    L, B, V = a.L, a.batch, a.L * a.L
    freqs = [1.0, 2.0, 3.0, 4.0]
    F, K = 1 + len(freqs), 3
    pid, P = orbits(L)
    # circulant gather: M[(f, y), x] = W_f(orbit(x - y))
    idx = torch.empty(F * V * V, dtype=torch.long)
    for f in range(F):
        for y in range(V):
            yi, yj = divmod(y, L)
            for x in range(V):
                xi, xj = divmod(x, L)
                idx[(f * V + y) * V + x] = f * P + pid[((xi - yi) % L) * L + (xj - yj) % L]
    idx0 = torch.tensor([f * P + pid[0] for f in range(F)])
    # the kernel as an (F, L, L) array of offsets d = x - y, for the FFT form
    kidx = torch.tensor([f * P + pid[d] for f in range(F) for d in range(V)])
    g = torch.Generator().manual_seed(1)
    W = (0.01 * torch.randn(K, F * P, generator=g, dtype=dt)).requires_grad_()
    w = torch.tensor(freqs, dtype=dt).view(1, -1, 1)

    def field(x, t):  # x (B, V)
        wt = torch.tensor(legendre(K, t), dtype=dt) @ W  # (F*P)
        M = wt[idx].view(F * V, V)
        xs = x.unsqueeze(1)
        h = torch.cat([xs, torch.sin(w * xs)], 1)  # (B, F, V)
        dh = torch.cat([torch.ones_like(xs), w * torch.cos(w * xs)], 1).sum(2)  # (B, F)
        v = h.reshape(B, F * V) @ M
        div = dh @ wt[idx0]
        return v, div

    def field_fft(x, t):  # the same field, v = sum_f W_f * h_f by the convolution theorem
        wt = torch.tensor(legendre(K, t), dtype=dt) @ W
        Wk = torch.fft.rfft2(wt[kidx].view(F, L, L))  # (F, L, L/2+1)
        xs = x.unsqueeze(1)
        h = torch.cat([xs, torch.sin(w * xs)], 1)  # (B, F, V)
        dh = torch.cat([torch.ones_like(xs), w * torch.cos(w * xs)], 1).sum(2)
        v = torch.fft.irfft2((torch.fft.rfft2(h.view(B, F, L, L)) * Wk).sum(1), s=(L, L)).reshape(B, V)
        div = dh @ wt[idx0]
        return v, div

    if a.fft:
        field = field_fft

    def generate(z):
        x, ld = z, torch.zeros(B, dtype=dt)
        h = -1.0 / a.steps
        for n in range(a.steps):
            t = 1.0 + n * h
            k1, d1 = field(x, t)
            k2, d2 = field(x + 0.5 * h * k1, t + 0.5 * h)
            k3, d3 = field(x + 0.5 * h * k2, t + 0.5 * h)
            k4, d4 = field(x + h * k3, t + h)
            x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            ld = ld + h / 6 * (d1 + 2 * d2 + 2 * d3 + d4)
        return x, ld

    def action(x):
        phi = x.view(B, L, L)
        kin = ((torch.roll(phi, -1, 1) - phi) ** 2 + (torch.roll(phi, -1, 2) - phi) ** 2).sum((1, 2))
        return 0.5 * kin + (0.5 * a.m2 * phi ** 2 + a.lam * phi ** 4).sum((1, 2))

    def step():
        z = torch.randn(B, V, dtype=dt)
        x, ld = generate(z)
        logq = -0.5 * (z ** 2).sum(1) - 0.5 * V * math.log(2 * math.pi) - ld
        loss = (logq + action(x)).mean()
        W.grad = None
        loss.backward()
        return loss.item()

    step()  # warm-up
    times, cpus = [], []
    for _ in range(a.reps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    times.sort()
    cpus.sort()
    print(f"pytorch {torch.__version__} ode-gerdes L={L} batch={B} rk4 steps={a.steps} {a.dtype}{' fft' if a.fft else ''}: "
          f"median {1000 * times[len(times) // 2]:.1f} ms/step wall, {1000 * cpus[len(cpus) // 2]:.1f} ms/step CPU, "
          f"min {1000 * times[0]:.1f} ms wall (threads {torch.get_num_threads()})")


if __name__ == "__main__":
    main()
