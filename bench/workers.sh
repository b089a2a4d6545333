#!/usr/bin/env bash
# Data-parallel speed-up: alternating runs of `rgflow bench` with 1 and N workers (same global batch) for the
# neuralrg reverse-KL step at L=16 (batch 256) and the rgflow-small image NLL step (32×32 grey, batch 32),
# ROUNDS rounds each; prints the medians of the per-run medians and the speed-up, and the same for the CPU
# time per step (all threads): N workers need N idle cores for the wall-clock speed-up (check the load with
# uptime first), while the CPU ratio (N workers over 1) measures the work the split adds even on a loaded
# machine, and bounds the speed-up idle cores can give at N / ratio. `rgflow bench` itself also says where a
# step's time went (workers, reduce, update; per worker sync, feed, run; "phases" in its --json output).
# Each run times STEPS steps (default 60) after 5 warm-up steps: with 15 steps of ~20 ms the run-to-run spread
# was larger than the differences being measured.
# Usage: bench/workers.sh [ROUNDS] [N] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
n=${2:-2}
steps=${3:-60}
go build -o /tmp/rgflow-bench ./cmd/rgflow
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { sed "s/.*\"$1\":\([0-9.]*\).*/\1/"; }
uptime
for cfg in "reversekl neuralrg 16 256 float32" "nll rgflow-small 32 32 float32"; do
  set -- $cfg
  one=(); many=(); cone=(); cmany=()
  for r in $(seq "$rounds"); do
    for w in 1 "$n"; do
      js=$(/tmp/rgflow-bench bench --objective "$1" --preset "$2" --L "$3" --batch "$4" --dtype "$5" --steps "$steps" --warmup 5 \
        --workers "$w" --json)
      ms=$(echo "$js" | field median_ms_per_step); cpu=$(echo "$js" | field cpu_ms_per_step)
      if [ "$w" = 1 ]; then one+=("$ms"); cone+=("$cpu"); else many+=("$ms"); cmany+=("$cpu"); fi
    done
  done
  a=$(printf '%s\n' "${one[@]}" | median); b=$(printf '%s\n' "${many[@]}" | median)
  ca=$(printf '%s\n' "${cone[@]}" | median); cb=$(printf '%s\n' "${cmany[@]}" | median)
  printf '%-9s %-12s L=%-3s batch %-4s 1 worker %8.1f ms/step   %s workers %8.1f ms/step   speed-up %5.2f   (runs: %s | %s)\n' \
    "$1" "$2" "$3" "$4" "$a" "$n" "$b" "$(echo "$a / $b" | bc -l)" "${one[*]}" "${many[*]}"
  printf '%-9s %-12s       CPU per step: 1 worker %6.1f ms   %s workers %6.1f ms   ratio %5.2f   (runs: %s | %s)\n' \
    "" "" "$ca" "$n" "$cb" "$(echo "$cb / $ca" | bc -l)" "${cone[*]}" "${cmany[*]}"
done
uptime
