#!/usr/bin/env bash
# Runs every built Google Benchmark binary (build/bin/contra_*_bench) and every side-by-side comparison
# script bench/compare_*.sh (contra vs PyTorch-Python at equal thread counts). Results go to stdout and
# to bench/results/<name>.txt. Usage: bench/run.sh [name-filter]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
filter=${1:-}
mkdir -p bench/results
shopt -s nullglob
for bin in "$BUILD_DIR"/bin/contra_*_bench; do
  name=$(basename "$bin")
  [[ -n "$filter" && "$name" != *"$filter"* ]] && continue
  echo "== $name =="
  "$bin" --benchmark_counters_tabular=true | tee "bench/results/$name.txt"
done
for script in bench/compare_*.sh; do
  name=$(basename "$script" .sh)
  [[ -n "$filter" && "$name" != *"$filter"* ]] && continue
  echo "== $name =="
  bash "$script" | tee "bench/results/$name.txt"
done
