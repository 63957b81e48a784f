#!/usr/bin/env bash
# Side-by-side CPC training throughput, paper size (256-channel encoder, BatchNorm, GRU 256, K = 12,
# 128 negatives, batch 8 x 20480 samples, Adam), contra against the same model in PyTorch-Python
# (bench/python/cpc_reference.py on Debian's python3-torch: the same LibTorch 1.13 and OpenBLAS).
#   bench/compare_cpc.sh [steps]      (default 12 timed steps after 3 warm-up steps)
#   RUNS=3 THREADS="1 2" FULL=0 BF16=auto  (FULL=1 adds the CPC_audio-style formulation; BF16=1/0
#                                           forces the bfloat16 rows on/off, auto: on CPUs with
#                                           avx512_bf16 or amx_bf16)
# Protocol (bench/lib.sh): every configuration RUNS times, interleaved; medians and min–max; the
# sgemm peak of this machine measured in the same run; GFLOP/s = windows/s × GFLOP per window (47.0
# per 8-window step at the paper size: conv encoder 37.5, GRU 2.4, W_k 4.8, sampled scores 2.3) and
# its share of the peak; ratios against the best float32 Python formulation, withheld unless the
# machine was quiet (load average ≤ 1.0 before, other processes ≤ 0.25 cores during every run).
# contra runs as shipped (no environment variables; it sets its allocator itself); Python with the
# glibc tunables that keep freed memory in the process (its best case), and once without.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
STEPS=${1:-12}
WARMUP=3
RUNS=${RUNS:-3}
THREADS=${THREADS:-1 2}
FULL=${FULL:-0}
BF16=${BF16:-auto}
contra="$BUILD_DIR/bin/contra"
bench="$BUILD_DIR/bin/contra_cpc_bench"
source bench/lib.sh
py=$BENCH_PY
[[ -x "$contra" && -x "$bench" ]] || { echo "build first: ./run.sh bench" >&2; exit 2; }
[[ -x $py ]] && $py -c 'import torch' 2>/dev/null || { echo "needs python3-torch: scripts/install-deps.sh --bench" >&2; exit 2; }
"$contra" corpus speech --if-missing --out data/speech >/dev/null
if [[ $BF16 == auto ]]; then
  grep -q -w -E 'avx512_bf16|amx_bf16' /proc/cpuinfo && BF16=1 || BF16=0
fi
runs_dir=$(mktemp -d)
trap 'rm -rf "$runs_dir"' EXIT

# Model FLOPs per window at the paper size (forward + backward; see the header).
gflop_per_window=$($py - <<'EOF'
B, S, C, H, K, N = 8, 20480, 256, 256, 12, 128
kernels, strides, pads = [10, 8, 4, 4, 4], [5, 4, 2, 2, 2], [3, 2, 1, 1, 1]
L, cin, enc = S, 1, 0.0
for k, s, p in zip(kernels, strides, pads):
    L = (L + 2 * p - k) // s + 1
    fwd = 2 * B * L * C * cin * k
    enc += fwd * (2 if cin == 1 else 3)  # no input gradient for the audio
    cin = C
T = L
gru = 3 * 2 * B * T * 3 * H * (C + H)
wk = 3 * 2 * B * T * H * K * C
R = sum(B * (T - k) for k in range(1, K + 1))
scores = 3 * 2 * R * (1 + N) * C
print((enc + gru + wk + scores) / 1e9 / B)
EOF
)

contra_train() {  # threads precision: windows/s of the timed steps (metrics.jsonl rows)
  local t=$1 prec=$2 run="$runs_dir/run-$1-$2-$RANDOM"
  "$contra" train --config configs/cpc_speech.yaml --run "$run" --set train.steps=$((STEPS + WARMUP)) \
    --set train.threads="$t" --set train.log_every=1 --set train.checkpoint_every=0 \
    --set train.max_seconds=0 --set method.loss.precision="$prec" >/dev/null
  tail -n "$STEPS" "$run/metrics.jsonl" | $py -c 'import json,sys
rows=[json.loads(l) for l in sys.stdin]
print(8 * len(rows) / sum(r["ms_per_batch"] / 1000 for r in rows))'
  rm -rf "$run"
}
contra_step() {  # threads: windows/s of contra_cpc_bench's TrainStep (no data loading, no trainer)
  "$bench" --threads="$1" --benchmark_filter="^BM_TrainStep/0/$2/" --benchmark_min_time=2 \
    --benchmark_format=json | $py -c 'import json,sys
b=json.load(sys.stdin)["benchmarks"][0]; print(b["windows/s"])'
}
python_ref() {  # threads formulation malloc(tuned|default) [--bf16]
  local t=$1 f=$2 env=()
  [[ $3 == tuned ]] && env=(GLIBC_TUNABLES=$BENCH_TUNABLES)
  env "${env[@]}" OMP_NUM_THREADS="$t" $py bench/python/cpc_reference.py --threads "$t" --steps "$STEPS" \
    --warmup "$WARMUP" --formulation "$f" ${4:-} | $py -c 'import json,sys; print(json.load(sys.stdin)["windows_per_s"])'
}

bench_begin "CPC training step, paper size (B=8 x 20480 samples, C=256, BatchNorm, GRU 256, K=12, 128 negatives, Adam); $STEPS timed steps after $WARMUP, $RUNS interleaved runs"
for t in $THREADS; do bench_peak "$t"; done
for t in $THREADS; do
  for ((r = 0; r < RUNS; r++)); do
    bench_run "$t" "Python, float32, best: a product per step + gather (tuned malloc)" python_ref "$t" best tuned
    bench_run "$t" "contra train, float32" contra_train "$t" float32
    bench_run "$t" "Python, float32, fused: one product for all steps + gather (tuned malloc)" python_ref "$t" fused tuned
    bench_run "$t" "contra step alone (contra_cpc_bench TrainStep), float32" contra_step "$t" 0
    bench_run "$t" "Python, float32, best (default malloc)" python_ref "$t" best default
    if [[ $FULL == 1 ]]; then
      bench_run "$t" "Python, float32, CPC_audio style: candidates materialised (tuned malloc)" python_ref "$t" cpc_audio tuned
    fi
    if [[ $BF16 == 1 ]]; then
      bench_run "$t" "bf16 W_k + scoring: Python fused (tuned malloc)" python_ref "$t" fused tuned --bf16
      bench_run "$t" "bf16 W_k + scoring: contra train (what precision auto picks here)" contra_train "$t" bfloat16
    fi
  done
done
bench_end --gflop-per-unit "$gflop_per_window" --unit windows/s --baseline-prefix "Python, float32"
