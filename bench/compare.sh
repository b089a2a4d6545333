#!/usr/bin/env bash
# Alternating Go / PyTorch timings of one reverse-KL training step of the neuralrg preset and of one
# maximum-likelihood step of the rgflow-small image model (same models, one
# thread each), ROUNDS rounds per configuration; prints the medians of the per-run medians and their ratio.
# Needs Debian's python3-torch. Usage: bench/compare.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
go build -o /tmp/rgflow-bench ./cmd/rgflow
py=${RGFLOW_PYTHON:-/usr/bin/python3}
# One thread on the PyTorch side too: torch.set_num_threads(1) does not reach the BLAS library's own pool
# (with Debian's OpenBLAS installed, float64 convolutions otherwise run on every core).
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for cfg in "8 float32" "8 float64" "16 float32" "16 float64"; do
  set -- $cfg
  go_ms=(); py_ms=()
  for r in $(seq "$rounds"); do
    go_ms+=("$(GOMAXPROCS=1 /tmp/rgflow-bench bench --L "$1" --dtype "$2" --steps 20 --json | sed 's/.*"median_ms_per_step":\([0-9.]*\).*/\1/')")
    py_ms+=("$("$py" bench/neuralrg_torch.py --L "$1" --dtype "$2" --steps 20 | sed 's/.*"median_ms_per_step": \([0-9.]*\).*/\1/')")
  done
  g=$(printf '%s\n' "${go_ms[@]}" | median); p=$(printf '%s\n' "${py_ms[@]}" | median)
  printf 'L=%-3s %-8s Go %8.1f ms/step   PyTorch %8.1f ms/step   PyTorch/Go %5.2f   (Go runs: %s; PyTorch runs: %s)\n' \
    "$1" "$2" "$g" "$p" "$(echo "$p / $g" | bc -l)" "${go_ms[*]}" "${py_ms[*]}"
done

# The rgflow-small image model (batch 32, 32×32 grey, input ActNorm): one maximum-likelihood step.
for width in 64 96; do
  go_ms=(); py_ms=()
  for r in $(seq "$rounds"); do
    dir=$(mktemp -d)
    go_ms+=("$(GOMAXPROCS=1 /tmp/rgflow-bench train images --data synthetic:256 --channels 1 --size 32 --preset rgflow-small \
      --input-actnorm --width "$width" --workers 1 --steps 23 --eval-n 0 --log-every 1000 --out "$dir/run" 2>/dev/null |
      sed -n 's/.*(\([0-9.]*\) ms\/step).*/\1/p')")
    rm -rf "$dir"
    py_ms+=("$("$py" bench/rgflow_torch.py --width "$width" --steps 20 | sed 's/.*"median_ms_per_step": \([0-9.]*\).*/\1/')")
  done
  g=$(printf '%s\n' "${go_ms[@]}" | median); p=$(printf '%s\n' "${py_ms[@]}" | median)
  printf 'images width %-3s Go %8.1f ms/step   PyTorch %8.1f ms/step   PyTorch/Go %5.2f   (Go runs: %s; PyTorch runs: %s)\n' \
    "$width" "$g" "$p" "$(echo "$p / $g" | bc -l)" "${go_ms[*]}" "${py_ms[*]}"
done
