#!/usr/bin/env bash
# Alternating Go / PyTorch timings of one reverse-KL step (no optimiser update) of the ode-gerdes flow at
# L=16, batch 256, 8 RK4 steps: BenchmarkODEGerdesReverseKLStep (the fused engine) in models/ode_bench_test.go
# against bench/ode_torch.py in both of its forms (the dense circulant matrix on the GEMM, and the circulant
# product by torch.fft), one thread on each side, float64 and float32. ROUNDS rounds; prints the medians of
# the per-run medians (wall and process CPU time) and the ratio of PyTorch's faster form to Go (> 1: Go is
# faster). Needs Debian's python3-torch. Usage: bench/ode_compare.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/models.test" ./models
py=${RGFLOW_PYTHON:-/usr/bin/python3}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { awk -v f="$1" '{for (i = 2; i <= NF; i++) if ($i == f) print $(i-1)}'; }
uptime
for dt in float64 float32; do
  gw=(); gc=(); mw=(); mc=(); fw=(); fc=()
  for r in $(seq "$rounds"); do
    out=$(GOMAXPROCS=1 "$tmp/models.test" -test.run '^$' -test.bench "^BenchmarkODEGerdesReverseKLStep\$/^L=16/fused/${dt}\$" \
      -test.benchtime 5x | grep '^BenchmarkODEGerdesReverseKLStep')
    gw+=("$(echo "$out" | field ns/op | awk '{print $1 / 1e6}')")
    gc+=("$(echo "$out" | field cpu-ns/op | awk '{print $1 / 1e6}')")
    o=$("$py" bench/ode_torch.py --dtype "$dt" --reps 5)
    mw+=("$(echo "$o" | sed 's/.*median \([0-9.]*\) ms\/step wall.*/\1/')")
    mc+=("$(echo "$o" | sed 's/.*wall, \([0-9.]*\) ms\/step CPU.*/\1/')")
    o=$("$py" bench/ode_torch.py --dtype "$dt" --reps 5 --fft)
    fw+=("$(echo "$o" | sed 's/.*median \([0-9.]*\) ms\/step wall.*/\1/')")
    fc+=("$(echo "$o" | sed 's/.*wall, \([0-9.]*\) ms\/step CPU.*/\1/')")
  done
  m() { printf '%s\n' "$@" | median; }
  awk -v dt="$dt" -v gw="$(m "${gw[@]}")" -v gc="$(m "${gc[@]}")" -v mw="$(m "${mw[@]}")" -v mc="$(m "${mc[@]}")" \
    -v fw="$(m "${fw[@]}")" -v fc="$(m "${fc[@]}")" 'BEGIN {
    bw = (mw < fw) ? mw : fw; bc = (mc < fc) ? mc : fc
    printf "ode-gerdes L=16 B=256 %s: wall Go %.1f  PyTorch GEMM %.1f  FFT %.1f ms  ratio %.2f | CPU Go %.1f  GEMM %.1f  FFT %.1f ms  ratio %.2f\n",
      dt, gw, mw, fw, bw / gw, gc, mc, fc, bc / gc }'
  echo "    (Go wall ${gw[*]}; CPU ${gc[*]} | GEMM wall ${mw[*]}; CPU ${mc[*]} | FFT wall ${fw[*]}; CPU ${fc[*]})"
done
uptime
