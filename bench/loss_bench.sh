#!/usr/bin/env bash
# Loss benchmark: contra (bench/loss_bench.cpp, Google Benchmark) against the PyTorch-Python
# reference (bench/python/loss_bench.py → scripts/loss_reference.py), forward + backward, float32,
# same inputs, one thread on both sides. Prints a markdown table; ratio = Python time / contra time
# (> 1: contra is faster).
#
# - Python runs twice: with glibc's default malloc and with the allocator tunables that contra applies
#   to itself (shared/notes/platform-facts.md, "Memory allocation").
# - Both sides flush denormals to zero (torch.set_flush_denormal / setFlushDenormal): float softmax
#   gradients below 1e-38 otherwise slow every matrix product they reach by 10× or more.
# - The machine may be shared: times are CPU time per iteration, the three runs of a loss follow each
#   other (so they see the same load), ROUNDS times (default 3), and each side keeps its best.
#
#   bench/loss_bench.sh [build-dir]          ROUNDS=3 MIN_TIME=0.2 FILTER=<regex> (all by default)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
rounds=${ROUNDS:-3}
min_time=${MIN_TIME:-0.2}
py=/usr/bin/python3
tuned=glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=17179869184:glibc.malloc.top_pad=1073741824
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

bench="$build/bin/contra_loss_bench"
names=$("$bench" --benchmark_list_tests=true --benchmark_filter="${FILTER:-.}")
python_names=" $("$py" "$here/python/loss_bench.py" --list | tr '\n' ' ') "
echo "$names" >"$out/order"
for round in $(seq "$rounds"); do
  for name in $names; do
    CONTRA_THREADS=1 "$bench" --benchmark_filter="^${name}\$" --benchmark_format=json \
      --benchmark_repetitions=3 --benchmark_min_time="$min_time" >"$out/contra.$name.$round.json"
    if [[ $python_names == *" $name "* ]]; then
      env -u GLIBC_TUNABLES OMP_NUM_THREADS=1 "$py" "$here/python/loss_bench.py" --only "$name" \
        --min-time "$min_time" >"$out/python.$name.$round.json"
      GLIBC_TUNABLES=$tuned OMP_NUM_THREADS=1 "$py" "$here/python/loss_bench.py" --only "$name" \
        --min-time "$min_time" >"$out/tuned.$name.$round.json"
    fi
  done
done

"$py" - "$out" <<'PY'
import glob, json, os, sys
d = sys.argv[1]
best = {"contra": {}, "python": {}, "tuned": {}}
ctx = None
order = open(f"{d}/order").read().split()
for path in glob.glob(f"{d}/*.json"):
    side, name = os.path.basename(path).split(".")[:2]
    doc = json.load(open(path))
    if side == "contra":
        ctx = doc["context"]
        times = [b["cpu_time"] for b in doc["benchmarks"] if b.get("run_type") == "iteration"]
    else:
        times = [doc[name]]
    best[side][name] = min(best[side].get(name, float("inf")), *times)
print(f"threads 1, BLAS {ctx.get('blas')} ({float(ctx.get('matmul_gflops', 0)):.0f} GFLOP/s), "
      f"torch {ctx.get('torch')}, contra allocator tuned: {ctx.get('allocator_tuned')}; "
      "CPU ms per forward + backward, best of all rounds, denormals flushed\n")
print("| loss | contra ms | Python ms | ratio | Python (tuned malloc) ms | ratio |")
print("|---|---:|---:|---:|---:|---:|")
lowest = None
for name in order:
    ms = best["contra"][name]
    p, t = best["python"].get(name), best["tuned"].get(name)
    if p is None:
        print(f"| {name} | {ms:.3f} | — | — | — | — |")
        continue
    r, rt = p / ms, t / ms
    lowest = min(lowest or r, r, rt)
    print(f"| {name} | {ms:.3f} | {p:.3f} | {r:.2f} | {t:.3f} | {rt:.2f} |")
print(f"\nlowest ratio: {lowest:.2f}" + ("" if lowest >= 1 else "  <-- contra slower than Python"))
PY
