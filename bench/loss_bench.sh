#!/usr/bin/env bash
# Loss benchmark: contra (bench/loss_bench.cpp, Google Benchmark) against the PyTorch-Python
# reference (bench/python/loss_bench.py → scripts/loss_reference.py), forward + backward, float32,
# same inputs and thread count. Prints a markdown table; ratio = Python time / contra time (> 1: contra
# is faster). Python runs twice: with glibc's default malloc and with the allocator tunables that
# contra applies to itself (docs: shared/notes/platform-facts.md, "Memory allocation"). Both sides
# flush denormals to zero (torch.set_flush_denormal / at::globalContext().setFlushDenormal): float
# softmax gradients below 1e-38 otherwise slow every matrix product they reach by 10× or more.
# The machine is shared: each side reports the best of 5 repetitions.
#
#   bench/loss_bench.sh [build-dir]          THREADS=1 MIN_TIME=0.5 by default
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
threads=${THREADS:-1}
min_time=${MIN_TIME:-0.5}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

CONTRA_THREADS=$threads "$build/bin/contra_loss_bench" --benchmark_format=json \
  --benchmark_repetitions=5 \
  --benchmark_min_time="$min_time" >"$tmp/contra.json"
env -u GLIBC_TUNABLES OMP_NUM_THREADS=$threads "$py" "$here/python/loss_bench.py" \
  --threads "$threads" --min-time "$min_time" >"$tmp/python.json"
GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=17179869184:glibc.malloc.top_pad=1073741824 \
  OMP_NUM_THREADS=$threads "$py" "$here/python/loss_bench.py" --threads "$threads" \
  --min-time "$min_time" >"$tmp/python_tuned.json"

"$py" - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
c = json.load(open(f"{d}/contra.json"))
py = json.load(open(f"{d}/python.json"))
tuned = json.load(open(f"{d}/python_tuned.json"))
ctx = c["context"]
print(f"threads {ctx.get('threads')}, BLAS {ctx.get('blas')} ({float(ctx.get('matmul_gflops', 0)):.0f} GFLOP/s), "
      f"torch {ctx.get('torch')}, contra allocator tuned: {ctx.get('allocator_tuned')}; "
      f"best of 5 repetitions, ms per forward + backward, denormals flushed\n")
contra = {}
for b in c["benchmarks"]:
    if b.get("run_type") == "iteration":
        contra[b["run_name"]] = min(contra.get(b["run_name"], float("inf")), b["real_time"])
print("| loss | contra ms | Python ms | ratio | Python (tuned malloc) ms | ratio |")
print("|---|---:|---:|---:|---:|---:|")
worst = None
for name, ms in contra.items():
    p, t = py.get(name), tuned.get(name)
    if p is None:
        print(f"| {name} | {ms:.3f} | — | — | — | — |")
        continue
    r, rt = p / ms, t / ms
    worst = min(worst or r, r, rt)
    print(f"| {name} | {ms:.3f} | {p:.3f} | {r:.2f} | {t:.3f} | {rt:.2f} |")
print(f"\nlowest ratio: {worst:.2f}" + ("" if worst >= 1 else "  <-- contra slower than Python"))
PY
