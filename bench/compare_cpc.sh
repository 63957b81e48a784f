#!/usr/bin/env bash
# Side-by-side CPC training throughput: contra as shipped (the real `contra train` loop: data loading,
# trainer, checkpointing off) against the same model in PyTorch-Python (Debian's python3-torch, same
# OpenBLAS, same thread count), paper size: 256-channel encoder, GRU 256, 12 steps, 128 negatives,
# batch 8 x 20480 samples, Adam. Prints windows/s, the ratios and peak memory (max RSS).
#   bench/compare_cpc.sh [steps]          (default 12 timed steps after 3 warm-up steps)
# Python runs twice: with the glibc tunables that keep freed memory in the process (its best case on
# these VMs) and with the default allocator. contra runs with no environment variables at all.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
STEPS=${1:-12}
WARMUP=3
contra="$BUILD_DIR/bin/contra"
py=/usr/bin/python3
tunables='glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=17179869184:glibc.malloc.top_pad=1073741824'
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
[[ -x "$contra" ]] || { echo "build first: ./run.sh build" >&2; exit 2; }
[[ -x $py ]] && $py -c 'import torch' 2>/dev/null || { echo "needs python3-torch: scripts/install-deps.sh --bench" >&2; exit 2; }
"$contra" corpus speech --if-missing --out data/speech >/dev/null

blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3)
echo "CPC training step, paper size (B=8 x 20480, C=256, GRU 256, K=12, 128 negatives, Adam)"
echo "BLAS: $blas; $(nproc) cores; $(date -u +%F)"
printf '\n| threads | implementation | windows/s | ms/step | peak RSS (MB) | vs best Python |\n|---|---|---|---|---|---|\n'

# contra: windows/s from metrics.jsonl rows after the warm-up (one row per step).
run_contra() {  # threads precision -> "windows_per_s peak_mb"
  local t=$1 prec=$2
  local run="$out/run-$t-$prec"
  /usr/bin/time -f '%M' -o "$out/mem" "$contra" train --config configs/cpc_speech.yaml --run "$run" \
    --set train.steps=$((STEPS + WARMUP)) --set train.threads="$t" --set train.log_every=1 \
    --set train.checkpoint_every=0 --set method.loss.precision="$prec" >/dev/null 2>"$out/err" ||
    { cat "$out/err" >&2; exit 1; }
  local wps
  wps=$(tail -n "$STEPS" "$run/metrics.jsonl" | $py -c 'import json,sys
rows=[json.loads(l) for l in sys.stdin]
print(sum(r["items_per_s"] for r in rows)/len(rows))')
  echo "$wps $(( $(cat "$out/mem") / 1024 ))"
}
run_python() {  # threads formulation env [--bf16] -> "windows_per_s peak_mb"
  local t=$1 f=$2 env=$3
  env $env $py bench/python/cpc_reference.py --threads "$t" --steps "$STEPS" --warmup "$WARMUP" \
    --formulation "$f" ${4:-} 2>/dev/null | $py -c 'import json,sys; d=json.load(sys.stdin); print(d["windows_per_s"], int(d["peak_rss_mb"]))'
}
row() {  # threads name windows/s peak_mb best_windows/s
  $py -c 'import sys; t,n,w,m,b=sys.argv[1:]; w=float(w); print(f"| {t} | {n} | {w:.2f} | {8000/w:.0f} | {m} | {w/float(b):.2f}x |")' "$@"
}

for t in 1 2; do
  read -r best best_mem < <(run_python "$t" best "GLIBC_TUNABLES=$tunables")
  read -r style style_mem < <(run_python "$t" cpc_audio "GLIBC_TUNABLES=$tunables")
  read -r plain plain_mem < <(run_python "$t" best "")
  read -r pb16 pb16_mem < <(run_python "$t" best "GLIBC_TUNABLES=$tunables" --bf16)
  read -r c32 c32_mem < <(run_contra "$t" float32)
  read -r c16 c16_mem < <(run_contra "$t" bfloat16)
  row "$t" "Python, CPC_audio style (tuned malloc)" "$style" "$style_mem" "$best"
  row "$t" "Python, best formulation (tuned malloc)" "$best" "$best_mem" "$best"
  row "$t" "Python, best formulation (default malloc)" "$plain" "$plain_mem" "$best"
  row "$t" "contra train (loss.precision float32)" "$c32" "$c32_mem" "$best"
  row "$t" "Python, best formulation, bf16 W_k + scoring (tuned malloc)" "$pb16" "$pb16_mem" "$best"
  row "$t" "contra train (bfloat16; what precision auto picks on AMX CPUs)" "$c16" "$c16_mem" "$best"
  row "$t" "contra bf16 vs Python bf16" "$c16" "$c16_mem" "$pb16"
done
