#!/usr/bin/env bash
# Data-parallel speed-up: alternating runs of `rgflow bench` with 1 and N workers (same global batch) for the
# neuralrg reverse-KL step at L=16 (batch 256) and the rgflow-small image NLL step (32×32 grey, batch 32),
# ROUNDS rounds each; prints the medians of the per-run medians and the speed-up. Every worker is a
# goroutine, so N workers need N idle cores: check the load (uptime) first. On a loaded machine measure the
# work instead: go test ./losses -run X -bench 'ReverseKLStep|NLLStep' -benchtime 12x (cpu-ms/op, 1 and 2
# workers; two workers should cost no more CPU than one).
# Usage: bench/workers.sh [ROUNDS] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
n=${2:-2}
go build -o /tmp/rgflow-bench ./cmd/rgflow
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
uptime
for cfg in "reversekl neuralrg 16 256 float32" "nll rgflow-small 32 32 float32"; do
  set -- $cfg
  one=(); many=()
  for r in $(seq "$rounds"); do
    for w in 1 "$n"; do
      ms=$(/tmp/rgflow-bench bench --objective "$1" --preset "$2" --L "$3" --batch "$4" --dtype "$5" --steps 15 --warmup 3 \
        --workers "$w" --json | sed 's/.*"median_ms_per_step":\([0-9.]*\).*/\1/')
      if [ "$w" = 1 ]; then one+=("$ms"); else many+=("$ms"); fi
    done
  done
  a=$(printf '%s\n' "${one[@]}" | median); b=$(printf '%s\n' "${many[@]}" | median)
  printf '%-9s %-12s L=%-3s batch %-4s 1 worker %8.1f ms/step   %s workers %8.1f ms/step   speed-up %5.2f   (runs: %s | %s)\n' \
    "$1" "$2" "$3" "$4" "$a" "$n" "$b" "$(echo "$a / $b" | bc -l)" "${one[*]}" "${many[*]}"
done
uptime
