"""PyTorch counterpart of rgflow's BenchmarkConv (layers/conv_bench_test.go): forward + backward (input and
weight gradients) of one 3×3 convolution, one thread. Prints one JSON line with the median ms per step.

  (a) --case periodic: B=128, 32→32 channels, 16×16, circular padding (F.pad(mode='circular'))
  (b) --case zero:     B=32,  64→64 channels, 32×32, zero padding 1

Usage: /usr/bin/python3 bench/conv_torch.py --case periodic --dtype float32 [--steps 20]
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--case", choices=["periodic", "zero"], required=True)
ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
ap.add_argument("--steps", type=int, default=20)
args = ap.parse_args()

torch.set_num_threads(1)
torch.manual_seed(0)
dt = getattr(torch, args.dtype)
if args.case == "periodic":
    B, C, Co, H = 128, 32, 32, 16
else:
    B, C, Co, H = 32, 64, 64, 32
x = (torch.rand(B, C, H, H, dtype=dt) * 2 - 1).requires_grad_()
w = (torch.rand(Co, C, 3, 3, dtype=dt) * 2 - 1).requires_grad_()
g = torch.rand(B, Co, H, H, dtype=dt) * 2 - 1


def step():
    x.grad = None
    w.grad = None
    if args.case == "periodic":
        y = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="circular"), w)
    else:
        y = F.conv2d(x, w, padding=1)
    y.backward(g)  # the gradient of sum(y * g): input and weight gradients


for _ in range(3):
    step()
times, cpu = [], []
for _ in range(args.steps):
    t0, c0 = time.perf_counter(), time.process_time()
    step()
    times.append((time.perf_counter() - t0) * 1e3)
    cpu.append((time.process_time() - c0) * 1e3)
flops = 3 * 2 * B * Co * C * 9 * H * H
med, cmed = statistics.median(times), statistics.median(cpu)
# process_time is the CPU time of the process: on a loaded machine it leaves out the time spent waiting
# for a core (the Go benchmark reports the same measure as cpu-ms/op).
print(json.dumps({"case": args.case, "dtype": args.dtype, "median_ms": round(med, 3), "median_cpu_ms": round(cmed, 3),
                  "gflops": round(flops / med / 1e6, 2), "torch": torch.__version__,
                  "mkldnn": torch.backends.mkldnn.is_available()}))
