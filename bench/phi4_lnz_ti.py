#!/usr/bin/env python3
"""ln Z of lattice phi^4 by thermodynamic integration in m^2, with HMC from `rgflow mcmc`.

S = sum_x [ 1/2 sum_mu (phi_{x+mu} - phi_x)^2 + 1/2 m^2 phi_x^2 + lam phi_x^4 ]  (standard convention),
Z = int exp(-S) dphi.  d lnZ / d m^2 = -V <phi^2>/2, so

    lnZ(m2) = lnZ(M) + V/2 * int_{m2}^{M} <phi^2>(m'^2) dm'^2,

with <phi^2> (rgflow's "phi2", per site) measured by HMC on a grid, and at a large M the quartic term
treated to second order around the free field (Wick contractions of the exact lattice propagator):
lnZ(M) = lnZ_free(M) - lam <sum phi^4>_0 + lam^2/2 Var_0(sum phi^4) + O(lam^3 G^6 V).
Quadrature: Simpson on [m2, 0] in m^2 and on [0, M] in u = ln(m^2 + 8); the result with half the
points is printed too, as the quadrature's error estimate.

usage: phi4_lnz_ti.py RGFLOW L M2 LAMBDA [--chains 16] [--traj 10000] [--n0 16] [--n1 16] [--M 100]
"""
import argparse, json, math, subprocess, sys
import numpy as np


def free_parts(L, M, lam):
    k = 2 * np.pi * np.arange(L) / L
    p2 = (4 * np.sin(k / 2) ** 2)[:, None] + (4 * np.sin(k / 2) ** 2)[None, :]
    V = L * L
    lnz_free = V / 2 * math.log(2 * math.pi) - 0.5 * np.sum(np.log(p2 + M))
    G = np.real(np.fft.ifft2(1 / (p2 + M)))  # G(x - y), G[0,0] = <phi^2>_0
    G0 = G[0, 0]
    mean4 = V * 3 * G0 ** 2
    var4 = V * np.sum(24 * G ** 4 + 72 * G0 ** 2 * G ** 2)
    return lnz_free - lam * mean4 + lam ** 2 / 2 * var4, lam ** 2 / 2 * var4


def phi2(rg, L, m2, lam, chains, traj, seed):
    out = subprocess.run([rg, "mcmc", "--action", "phi4", "--L", str(L), "--m2", repr(m2), "--lambda", repr(lam),
                          "--chains", str(chains), "--trajectories", str(traj), "--thermalize", "500",
                          "--seed", str(seed), "--json"], check=True, capture_output=True, text=True).stdout
    v, e = json.loads(out)["observables"]["phi2"]
    return v, e


def simpson(y, h):
    return h / 3 * (y[0] + y[-1] + 4 * np.sum(y[1:-1:2]) + 2 * np.sum(y[2:-1:2]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rgflow"); ap.add_argument("L", type=int); ap.add_argument("m2", type=float); ap.add_argument("lam", type=float)
    ap.add_argument("--chains", type=int, default=16); ap.add_argument("--traj", type=int, default=10000)
    ap.add_argument("--n0", type=int, default=16); ap.add_argument("--n1", type=int, default=16)
    ap.add_argument("--M", type=float, default=100.0)
    a = ap.parse_args()
    V = a.L * a.L
    m0 = np.linspace(a.m2, 0, a.n0 + 1)
    u = np.linspace(math.log(8), math.log(a.M + 8), a.n1 + 1)
    m1 = np.exp(u) - 8
    seed = 1
    def grid(ms):
        nonlocal seed
        vals, errs = [], []
        for m in ms:
            seed += 1
            v, e = phi2(a.rgflow, a.L, float(m), a.lam, a.chains, a.traj, seed)
            vals.append(v); errs.append(e)
            print(f"m2 {m:9.4f}  phi2 {v:.6f} ± {e:.6f}", file=sys.stderr, flush=True)
        return np.array(vals), np.array(errs)
    y0, e0 = grid(m0)
    y1, e1 = grid(m1)
    j1 = np.exp(u)  # dm^2/du
    h0, h1 = (0 - a.m2) / a.n0, (u[-1] - u[0]) / a.n1
    I = simpson(y0, h0) + simpson(y1 * j1, h1)
    Ihalf = simpson(y0[::2], 2 * h0) + simpson((y1 * j1)[::2], 2 * h1)
    # statistical error: Simpson weights times the independent errors of the points
    w0 = np.full(a.n0 + 1, 2.0); w0[1::2] = 4; w0[0] = w0[-1] = 1; w0 *= h0 / 3
    w1 = np.full(a.n1 + 1, 2.0); w1[1::2] = 4; w1[0] = w1[-1] = 1; w1 *= h1 / 3
    # m2 = 0 appears in both grids: its two measurements are independent, so the sum is fine
    stat = V / 2 * math.sqrt(np.sum((w0 * e0) ** 2) + np.sum((w1 * j1 * e1) ** 2))
    lnzM, second = free_parts(a.L, a.M, a.lam)
    lnz = lnzM + V / 2 * I
    print(json.dumps({"L": a.L, "m2": a.m2, "lambda": a.lam, "M": a.M, "lnZ": lnz, "stat_err": stat,
                      "quadrature_half_points": lnzM + V / 2 * Ihalf, "lnZ_at_M": lnzM, "second_order_term": second}))


if __name__ == "__main__":
    main()
