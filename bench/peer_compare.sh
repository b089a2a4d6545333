#!/usr/bin/env bash
# Side by side with NeuralRG's own code: alternating runs of one reverse-KL training step of NeuralRG (its
# README network, its own training step, PyTorch on one thread: bench/neuralrg_peer.py) and of rgflow's
# neuralrg preset on one worker and on all cores (`rgflow bench`), real φ⁴ at m² = −4, λ = 1.502, batch 256,
# for L = 8, 16 and float32, float64. Prints medians of the per-run medians and the ratios.
# NeuralRG is not shipped with rgflow: pass the path of your checkout. Needs Debian's python3-torch,
# python3-h5py, python3-scipy and python3-torchvision (NeuralRG imports them).
# Usage: bench/peer_compare.sh PATH-TO-NeuralRG [ROUNDS] [--symmetry]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bench/peer_compare.sh PATH-TO-NeuralRG [ROUNDS] [--symmetry]" >&2; exit 2; }
peer=$1; rounds=${2:-3}; sym=${3:-}
cd "$(dirname "$0")/.."
go build -o /tmp/rgflow-bench ./cmd/rgflow
py=${RGFLOW_PYTHON:-/usr/bin/python3}
cores=$(getconf _NPROCESSORS_ONLN) # not nproc: it honours OMP_NUM_THREADS
# One thread on the PyTorch side too: torch.set_num_threads(1) does not reach the BLAS library's own pool
# (with Debian's OpenBLAS installed, float64 convolutions otherwise run on every core).
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
rsym=""; [ "$sym" = "--symmetry" ] && rsym="--symmetrize"
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { sed 's/.*"median_ms_per_step": *\([0-9.]*\).*/\1/'; }
uptime
for cfg in "8 float32" "8 float64" "16 float32" "16 float64"; do
  set -- $cfg
  one=(); all=(); nrg=()
  for r in $(seq "$rounds"); do
    one+=("$(/tmp/rgflow-bench bench --L "$1" --dtype "$2" --steps 20 --workers 1 $rsym --json | ms)")
    all+=("$(/tmp/rgflow-bench bench --L "$1" --dtype "$2" --steps 20 --workers "$cores" $rsym --json | ms)")
    nrg+=("$("$py" bench/neuralrg_peer.py --neuralrg "$peer" --L "$1" --dtype "$2" --steps 20 $sym 2>/dev/null | tail -1 | ms)")
  done
  a=$(printf '%s\n' "${one[@]}" | median); b=$(printf '%s\n' "${all[@]}" | median); p=$(printf '%s\n' "${nrg[@]}" | median)
  printf 'L=%-3s %-8s NeuralRG %8.1f ms   rgflow 1 worker %7.1f ms (%5.2f×)   %d workers %7.1f ms (%5.2f×)   (runs: %s | %s | %s)\n' \
    "$1" "$2" "$p" "$a" "$(echo "$p / $a" | bc -l)" "$cores" "$b" "$(echo "$p / $b" | bc -l)" "${nrg[*]}" "${one[*]}" "${all[*]}"
done
uptime
