#!/usr/bin/env bash
# Alternating Go / PyTorch timings of one denoising score matching training step of the lattice CNN score
# (BenchmarkDSMStepL16 in losses/dsm_bench_test.go against bench/dsm_torch.py): L=16, width 32, four 3×3
# periodic convolutions, FiLM time conditioning, elu, batch 128, float32, Carosso heat flow, Adam, one
# thread on each side. ROUNDS rounds; prints the medians of the per-run medians (wall and process CPU
# time; the CPU time leaves out waiting for a core on a loaded machine) and the PyTorch/Go ratio (> 1: Go
# is faster). Needs Debian's python3-torch. Usage: bench/dsm_compare.sh [ROUNDS] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
steps=${2:-20}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/losses.test" ./losses
py=${RGFLOW_PYTHON:-/usr/bin/python3}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { awk -v f="$1" '{for (i = 2; i <= NF; i++) if ($i == f) print $(i-1)}'; }
gw=(); gc=(); pw=(); pc=()
for r in $(seq "$rounds"); do
  out=$(GOMAXPROCS=1 "$tmp/losses.test" -test.run '^$' -test.bench '^BenchmarkDSMStepL16$' -test.cpu 1 \
    -test.benchtime "${steps}x" | grep '^BenchmarkDSMStepL16')
  gw+=("$(echo "$out" | field ns/op | awk '{print $1 / 1e6}')")
  gc+=("$(echo "$out" | field cpu-ms/op)")
  js=$("$py" bench/dsm_torch.py --steps "$steps")
  pw+=("$(echo "$js" | sed 's/.*"median_ms": \([0-9.]*\).*/\1/')")
  pc+=("$(echo "$js" | sed 's/.*"median_cpu_ms": \([0-9.]*\).*/\1/')")
done
a=$(printf '%s\n' "${gw[@]}" | median); b=$(printf '%s\n' "${pw[@]}" | median)
c=$(printf '%s\n' "${gc[@]}" | median); d=$(printf '%s\n' "${pc[@]}" | median)
awk -v a="$a" -v b="$b" -v c="$c" -v d="$d" 'BEGIN {
  printf "DSM step L=16 B=128 float32: wall Go %.1f ms  PyTorch %.1f ms  ratio %.2f | CPU Go %.1f ms  PyTorch %.1f ms  ratio %.2f\n",
    a, b, b / a, c, d, d / c }'
echo "    (Go wall: ${gw[*]}; Go CPU: ${gc[*]}; PyTorch wall: ${pw[*]}; PyTorch CPU: ${pc[*]})"
