#!/usr/bin/env bash
# Side-by-side SimCLR training throughput on the real MNIST digits: contra as shipped (the real
# `contra train --config configs/simclr_mnist.yaml` loop: one loader thread building batches ahead,
# batched augmentation, trainer, Adam; online probe off, checkpoints off) against the same model and
# step in PyTorch-Python (bench/python/simclr_reference.py: per-image torchvision-style views in a
# DataLoader with 1 worker; Debian's python3-torch, same OpenBLAS), same intra-op thread count on both
# sides (train.threads / torch.set_num_threads, OMP_NUM_THREADS for both). Batch 256.
#   bench/compare_simclr.sh [steps] [threads...]     (default: 20 timed steps, threads 1 2)
#   AUGMENT=0 bench/compare_simclr.sh ...             (skip the augmentation-alone table)
# Both sides run WARMUP=3 untimed steps first; images/s = 256 x timed steps / their wall time (contra's
# items_per_s definition), contra's from its per-step metrics.jsonl rows (log_every=1) after the warm-up.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
STEPS=${1:-20}
shift || true
THREADS=("$@")
[[ ${#THREADS[@]} -gt 0 ]] || THREADS=(1 2)
WARMUP=${WARMUP:-3}
BATCH=${BATCH:-256}  # (smaller only for smoke checks)
contra="$BUILD_DIR/bin/contra"
py=/usr/bin/python3
# Python runs with the same allocator setting contra makes at start-up (freed memory kept in the process).
tunables='glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=17179869184:glibc.malloc.top_pad=1073741824'
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
[[ -x "$contra" ]] || { echo "build first: ./run.sh build" >&2; exit 2; }
[[ -x $py ]] && $py -c 'import torch' 2>/dev/null || { echo "needs python3-torch: scripts/install-deps.sh --bench" >&2; exit 2; }
[[ -f data/mnist/train-images-idx3-ubyte ]] || { echo "needs data/mnist: run contra train --config configs/simclr_mnist.yaml once (data.generate fetches it)" >&2; exit 2; }

blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 || echo unknown)
echo "SimCLR training step, MNIST 28x28x1, batch $BATCH (2 x $BATCH views), SmallCnn w32 + MLP head 256-64, NT-Xent, Adam"
echo "BLAS: $blas; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%F)"
echo "$WARMUP warm-up steps, then $STEPS timed steps on both sides"
printf '\n| threads | contra img/s | python img/s | contra / python | contra loader wait s | python loader wait s |\n|---|---|---|---|---|---|\n'

run_contra() {  # threads -> "images_per_s loader_wait_s"
  local t=$1 run="$out/run-$1"
  OMP_NUM_THREADS=$t "$contra" train --config configs/simclr_mnist.yaml --run "$run" \
    --set train.steps=$((STEPS + WARMUP)) --set train.batch_size="$BATCH" --set train.threads="$t" --set train.log_every=1 \
    --set train.checkpoint_every=0 --set method.online_probe_classes=0 --set augment.affine_p=0 --json >"$out/summary" 2>"$out/err" ||
    { cat "$out/err" >&2; exit 1; }
  # One row per step: its seconds = batch / items_per_s; sum them over the timed steps.
  tail -n "$STEPS" "$run/metrics.jsonl" | $py -c 'import json,sys
rows=[json.loads(l) for l in sys.stdin]
assert len(rows)=='"$STEPS"' and rows[0]["step"]=='"$((WARMUP + 1))"', "unexpected metrics rows"
secs=sum('"$BATCH"'/r["items_per_s"] for r in rows)
print('"$BATCH"'*len(rows)/secs, sum(r["loader_wait_s"] for r in rows))'
}
run_python() {  # threads -> "images_per_s loader_wait_s"
  local t=$1
  GLIBC_TUNABLES=$tunables OMP_NUM_THREADS=$t $py bench/python/simclr_reference.py --threads "$t" --steps "$STEPS" \
    --warmup "$WARMUP" --batch "$BATCH" --workers 1 2>"$out/perr" |
    $py -c 'import json,sys; d=json.load(sys.stdin); print(d["images_per_s"], d["loader_wait_s"])' ||
    { cat "$out/perr" >&2; exit 1; }
}

for t in "${THREADS[@]}"; do
  read -r c cw < <(run_contra "$t")
  read -r p pw < <(run_python "$t")
  $py -c 'import sys; t,c,p,cw,pw=sys.argv[1:]; c,p=float(c),float(p)
print(f"| {t} | {c:.0f} | {p:.0f} | {c/p:.2f}x | {float(cw):.2f} | {float(pw):.2f} |")' "$t" "$c" "$p" "$cw" "$pw"
done

# The augmentation alone (no model): contra's batched chain vs the per-image loop, 1 thread.
# contra_image_augment_bench's simclr_mnist chain is the simclr PRESET (crop scale 0.08-1, flip,
# jitter 0.8, blur sigma 0.1-2), so it is paired with augment_reference.py (same preset); the
# recipe's own chain per image (scale 0.5-1, jitter 0.4, blur sigma 0.1-1, normalise) is added as a
# Python-only row.
if [[ ${AUGMENT:-1} != 0 && -x "$BUILD_DIR/bin/contra_image_augment_bench" ]]; then
  printf '\n| augmentation alone, 1 thread, batch 256 | images/s |\n|---|---|\n'
  CONTRA_THREADS=1 OMP_NUM_THREADS=1 "$BUILD_DIR/bin/contra_image_augment_bench" \
    --benchmark_filter='^simclr_mnist_28x28x1' --benchmark_min_time=1 --benchmark_format=json 2>/dev/null |
    $py -c 'import json,sys; b=json.load(sys.stdin)["benchmarks"][0]
print("| contra batched, simclr preset (contra_image_augment_bench) | %.0f |" % b["items_per_second"])'
  OMP_NUM_THREADS=1 $py bench/python/augment_reference.py --threads 1 --batch 256 --side 28 --channels 1 --batches 10 |
    $py -c 'import json,sys; print("| Python per image, simclr preset (augment_reference.py) | %.0f |" % json.load(sys.stdin)["images_per_s"])'
  OMP_NUM_THREADS=1 $py bench/python/simclr_reference.py --threads 1 --augment-only 10 |
    $py -c 'import json,sys; print("| Python per image, the recipe chain + normalise (simclr_reference.py --augment-only) | %.0f |" % json.load(sys.stdin)["images_per_s"])'
fi
