#!/usr/bin/env bash
# Data-parallel scaling on one machine: the paper-size CPC model (configs/cpc_speech.yaml: 256-channel
# encoder, GRU 256, K = 12, 128 negatives) trained with a global batch of 16 windows as
#   1 process  × 2 threads × batch 16         (contra train)
#   2 processes × 1 thread × batch 8 per rank (contra launch --nproc 2, c10d Gloo on 127.0.0.1)
# and the same two layouts of the PyTorch-Python model (bench/python/cpc_reference.py, DDP under
# torchrun). Prints ms per step, windows/s, contra's gradient all-reduce time per step and the ratios.
#   bench/compare_dist.sh [steps]        (default 10 timed steps after 3 warm-up steps)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
STEPS=${1:-10}
WARMUP=3
contra="$BUILD_DIR/bin/contra"
py=/usr/bin/python3
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
[[ -x "$contra" ]] || { echo "build first: ./run.sh build" >&2; exit 2; }
have_py=1
[[ -x $py ]] && $py -c 'import torch' 2>/dev/null && [[ -x /usr/bin/torchrun ]] || have_py=0
"$contra" corpus speech --if-missing --out data/speech >/dev/null

common=(--config configs/cpc_speech.yaml --set train.steps=$((STEPS + WARMUP)) --set train.log_every=1
        --set train.checkpoint_every=0 --set train.max_seconds=0 --set method.loss.precision=float32)
# Mean of a metrics.jsonl field over the timed rows.
field() { tail -n "$STEPS" "$1" | $py -c "import json,sys
rows=[json.loads(l) for l in sys.stdin]
print('%.1f' % (sum(r.get('$2', 0) for r in rows)/len(rows)))"; }

echo "CPC training, global batch 16 windows x 20480 samples, $(nproc) cores, $(date -u +%F)"
"$contra" train "${common[@]}" --run "$out/one" --set train.threads=2 --set train.batch_size=16 \
  >/dev/null 2>"$out/err1" || { cat "$out/err1" >&2; exit 1; }
"$contra" launch --nproc 2 -- train "${common[@]}" --run "$out/two" --set train.threads=1 \
  --set train.batch_size=8 >/dev/null 2>"$out/err2" || { cat "$out/err2" >&2; exit 1; }
one_ms=$(field "$out/one/metrics.jsonl" ms_per_batch)
two_ms=$(field "$out/two/metrics.jsonl" ms_per_batch)
two_ar=$(field "$out/two/metrics.jsonl" allreduce_ms)
one_wps=$(field "$out/one/metrics.jsonl" items_per_s)
two_wps=$(field "$out/two/metrics.jsonl" items_per_s)

printf '\n| implementation | layout | ms/step | windows/s | gradient all-reduce ms/step |\n|---|---|---|---|---|\n'
printf '| contra | 1 process x 2 threads | %s | %s | - |\n' "$one_ms" "$one_wps"
printf '| contra | 2 processes x 1 thread | %s | %s | %s |\n' "$two_ms" "$two_wps" "$two_ar"
if [[ $have_py == 1 ]]; then
  ref=bench/python/cpc_reference.py
  # Python with the glibc tunables that keep freed memory in the process (its best case on these
  # VMs; contra configures its allocator itself). torchrun 1.13 under Python 3.11 needs
  # --redirects 1 --tee 1 (it cannot parse its own defaults); tee prefixes the lines.
  tunables='glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=17179869184:glibc.malloc.top_pad=1073741824'
  p1=$(GLIBC_TUNABLES=$tunables $py $ref --threads 2 --batch 16 --steps "$STEPS" --warmup $WARMUP \
       --formulation best)
  p2=$(GLIBC_TUNABLES=$tunables OMP_NUM_THREADS=1 /usr/bin/torchrun --nproc_per_node=2 \
       --redirects 1 --tee 1 --master_addr=127.0.0.1 --master_port=$((20000 + RANDOM % 20000)) \
       $ref --threads 1 --batch 8 --steps "$STEPS" --warmup $WARMUP --formulation best 2>/dev/null |
       grep -o '{.*}')
  get() { echo "$1" | $py -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }
  printf '| PyTorch-Python | 1 process x 2 threads | %s | %s | - |\n' "$(get "$p1" ms_per_step)" "$(get "$p1" windows_per_s)"
  printf '| PyTorch-Python DDP | 2 processes x 1 thread | %s | %s | (inside backward) |\n' "$(get "$p2" ms_per_step)" "$(get "$p2" windows_per_s)"
  $py - "$one_wps" "$two_wps" "$(get "$p1" windows_per_s)" "$(get "$p2" windows_per_s)" <<'PY'
import sys
c1, c2, p1, p2 = map(float, sys.argv[1:])
print(f"\ncontra 2x1 / 1x2: {c2 / c1:.2f}x   PyTorch 2x1 / 1x2: {p2 / p1:.2f}x")
print(f"contra / PyTorch: 1x2 {c1 / p1:.2f}x, 2x1 {c2 / p2:.2f}x")
PY
else
  echo "(PyTorch-Python rows skipped: scripts/install-deps.sh --bench installs python3-torch)"
fi
