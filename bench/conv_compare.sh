#!/usr/bin/env bash
# Alternating Go / PyTorch timings of forward + backward (input and weight gradients) of one 3×3
# convolution, one thread each (BenchmarkConv in layers/conv_bench_test.go against bench/conv_torch.py):
#   (a) periodic, B=128, 32→32 channels, 16×16;  (b) zero padding, B=32, 64→64 channels, 32×32;
# float32 and float64. ROUNDS rounds per configuration; prints the medians of the per-run times (wall and
# process CPU time, which leaves out waiting for a core on a loaded machine), the PyTorch/Go ratio
# (> 1: Go is faster), GFLOP/s (2·B·Cout·Cin·k²·H·W per pass, 3 passes) and the core's FMA peak
# (BenchmarkFMAPeak). Needs Debian's python3-torch. Usage: bench/conv_compare.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/layers.test" ./layers
py=${RGFLOW_PYTHON:-/usr/bin/python3}
# One thread on the PyTorch side too: torch.set_num_threads(1) does not reach the BLAS library's own pool
# (with Debian's OpenBLAS installed, float64 convolutions otherwise run on every core).
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# gobench PATTERN FIELD: one run of the Go benchmark; prints the value before FIELD (ns/op → ms).
gorun() { GOMAXPROCS=1 "$tmp/layers.test" -test.run '^$' -test.bench "$1" -test.cpu 1 -test.benchtime "${2:-10x}"; }
field() { awk -v f="$1" '{for (i = 2; i <= NF; i++) if ($i == f) print $(i-1)}'; }

peak32=(); peak64=()
for r in $(seq "$rounds"); do
  out=$(gorun 'FMAPeak' 20x)
  peak32+=("$(echo "$out" | grep 'float32' | field cpu-GFLOP/s)")
  peak64+=("$(echo "$out" | grep 'float64' | field cpu-GFLOP/s)")
done
p32=$(printf '%s\n' "${peak32[@]}" | median); p64=$(printf '%s\n' "${peak64[@]}" | median)
printf 'FMA peak (BenchmarkFMAPeak, CPU time): float32 %.0f GFLOP/s, float64 %.0f GFLOP/s\n' "$p32" "$p64"

for cfg in "periodic-B128-C32-16x16 periodic 128 32 16" "zero-B32-C64-32x32 zero 32 64 32"; do
  set -- $cfg
  name=$1 case=$2
  flops=$((3 * 2 * $3 * $4 * $4 * 9 * $5 * $5))
  for dt in float32 float64; do
    gw=(); gc=(); pw=(); pc=()
    steps=10; [ "$dt" = float64 ] && [ "$case" = zero ] && steps=3 # PyTorch float64 takes seconds per step
    for r in $(seq "$rounds"); do
      out=$(gorun "^BenchmarkConv\$/^$name-$dt\$" 10x | grep "^BenchmarkConv/")
      gw+=("$(echo "$out" | field ns/op | awk '{print $1 / 1e6}')")
      gc+=("$(echo "$out" | field cpu-ms/op)")
      js=$("$py" bench/conv_torch.py --case "$case" --dtype "$dt" --steps "$steps")
      pw+=("$(echo "$js" | sed 's/.*"median_ms": \([0-9.]*\).*/\1/')")
      pc+=("$(echo "$js" | sed 's/.*"median_cpu_ms": \([0-9.]*\).*/\1/')")
    done
    a=$(printf '%s\n' "${gw[@]}" | median); b=$(printf '%s\n' "${pw[@]}" | median)
    c=$(printf '%s\n' "${gc[@]}" | median); d=$(printf '%s\n' "${pc[@]}" | median)
    peak=$p32; [ "$dt" = float64 ] && peak=$p64
    awk -v n="$name" -v t="$dt" -v a="$a" -v b="$b" -v c="$c" -v d="$d" -v f="$flops" -v p="$peak" 'BEGIN {
      printf "%-24s %-8s wall: Go %8.1f ms  PyTorch %8.1f ms  ratio %5.2f | CPU: Go %8.1f ms (%5.1f GFLOP/s, %3.0f%% of peak)  PyTorch %8.1f ms (%5.1f GFLOP/s)  ratio %5.2f\n",
        n, t, a, b, b / a, c, f / c / 1e6, 100 * f / c / 1e6 / p, d, f / d / 1e6, d / c }'
    echo "    (Go wall runs: ${gw[*]}; PyTorch wall runs: ${pw[*]})"
  done
done
