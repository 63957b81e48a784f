#!/usr/bin/env bash
# contra's one entry point for people and CI. Each command installs what is missing (Debian packages via
# scripts/install-deps.sh), configures and builds what it needs, then acts.
#
#   ./run.sh demo      the main job: built-in corpus -> CPC training -> probes table -> figures (README)
#                      extra arguments go to `contra train` (e.g. --set train.steps=3000)
#   ./run.sh test      build and run the test suite (unit + integration; not slow/cuda)
#   ./run.sh build     configure and build everything but the benchmarks
#   ./run.sh bench     build the benchmarks and run the side-by-side comparisons (bench/README.md)
#
# Environment: BUILD_DIR (default build), JOBS (default: all cores), DATA_DIR (default data).
set -euo pipefail
cd "$(dirname "$0")"
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
DATA_DIR=${DATA_DIR:-data}

deps() { bash scripts/install-deps.sh "$@"; }

configure() {
  if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
}

build() {
  configure
  local start=$SECONDS
  cmake --build "$BUILD_DIR" -j "$JOBS" "$@"
  echo "run.sh: build finished in $((SECONDS - start)) s" >&2
}

cmd=${1:-}
shift || true
case "$cmd" in
  demo)
    deps
    build --target contra_cli contra_speechgen
    bin="$BUILD_DIR/bin/contra"
    "$bin" env >&2
    echo "== built-in speech corpus ($DATA_DIR/speech) ==" >&2
    "$bin" corpus speech --if-missing --out "$DATA_DIR/speech"
    echo "== CPC training (configs/cpc_speech.yaml; resumes a stopped run) ==" >&2
    "$bin" train --config configs/cpc_speech.yaml --resume --set data.root="$DATA_DIR/speech" "$@"
    echo "== phone and speaker probes: CPC vs random init vs MFCC ==" >&2
    "$bin" probe --checkpoint runs/cpc_speech
    echo "== figures (gnuplot): loss and accuracy curves, PCA / t-SNE maps of the features ==" >&2
    "$bin" plot runs/cpc_speech
    ;;
  test)
    deps --test
    build
    # Benchmarks are built (so they keep compiling) but not run here.
    cmake --build "$BUILD_DIR" -j "$JOBS" --target contra_benchmarks
    ctest --test-dir "$BUILD_DIR" -LE 'slow|cuda' -j "$JOBS" --output-on-failure "$@"
    ;;
  build)
    deps
    build "$@"
    ;;
  bench)
    deps --bench
    build
    cmake --build "$BUILD_DIR" -j "$JOBS" --target contra_benchmarks
    bash bench/run.sh "$@"
    ;;
  *)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    [[ -z "$cmd" ]] && exit 2
    echo "run.sh: unknown command '$cmd'" >&2
    exit 2
    ;;
esac
