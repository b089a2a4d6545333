#!/usr/bin/env bash
# Alternating Go / PyTorch timings of one DSM training step of the U-Net (draw t, ε and the dequantisation,
# forward, loss, backward, Adam) at batch 32 on 3×32×32 images, one thread each: BenchmarkImageDSMStep
# (losses/imgdsm_bench_test.go) against bench/unet_torch.py (the same network, loss and optimiser).
# ROUNDS rounds; prints the medians of the per-run wall and process-CPU times per step (CPU time leaves out
# waiting for a core on a loaded machine) and the PyTorch/Go ratio (> 1: Go is faster).
# Needs PyTorch for /usr/bin/python3 (or RGFLOW_PYTHON). Usage: bench/unet_compare.sh [ROUNDS] [PRESET] [DTYPE]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
preset=${2:-unet-tiny}
dt=${3:-float32}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/losses.test" ./losses
py=${RGFLOW_PYTHON:-/usr/bin/python3}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { awk -v f="$1" '{for (i = 2; i <= NF; i++) if ($i == f) print $(i-1)}'; }
gw=(); gc=(); pw=(); pc=()
for r in $(seq "$rounds"); do
  out=$(GOMAXPROCS=1 "$tmp/losses.test" -test.run '^$' -test.bench "^BenchmarkImageDSMStep\$/^$preset/$dt\$" -test.cpu 1 -test.benchtime 5x | grep "^BenchmarkImageDSMStep/")
  gw+=("$(echo "$out" | field ns/op | awk '{print $1 / 1e6}')")
  gc+=("$(echo "$out" | field cpu-ms/op)")
  js=$("$py" bench/unet_torch.py --preset "$preset" --dtype "$dt" --steps 5)
  pw+=("$(echo "$js" | sed 's/.*"median_ms": \([0-9.]*\).*/\1/')")
  pc+=("$(echo "$js" | sed 's/.*"median_cpu_ms": \([0-9.]*\).*/\1/')")
done
a=$(printf '%s\n' "${gw[@]}" | median); b=$(printf '%s\n' "${pw[@]}" | median)
c=$(printf '%s\n' "${gc[@]}" | median); d=$(printf '%s\n' "${pc[@]}" | median)
awk -v n="$preset" -v t="$dt" -v a="$a" -v b="$b" -v c="$c" -v d="$d" 'BEGIN {
  printf "%s %s DSM step, batch 32, 3x32x32: wall Go %.1f ms, PyTorch %.1f ms (ratio %.2f) | CPU Go %.1f ms, PyTorch %.1f ms (ratio %.2f)\n",
    n, t, a, b, b / a, c, d, d / c }'
echo "  Go wall: ${gw[*]}; Go CPU: ${gc[*]}"
echo "  PyTorch wall: ${pw[*]}; PyTorch CPU: ${pc[*]}"
