#!/usr/bin/env bash
# Builds contra against LibTorch 2.x from PyPI's `torch` wheel, beside the default Debian (1.13) build.
#
#   scripts/build-torch2.sh [VENV [BUILD_DIR]] [-- CMAKE_ARGS...]
#
#   VENV       virtual environment that holds the wheel (default: $XDG_CACHE_HOME/contra/venv-torch2,
#              i.e. ~/.cache/contra/venv-torch2); created and filled only when `import torch` fails
#              there, so a second run needs no network
#   BUILD_DIR  CMake build folder (default: build-torch2); configured with the tests on
#
# Environment: TORCH_VERSION (default 2.15.0, the version this was verified with; the wheel is a
# CUDA build and pulls the CUDA runtime wheels, several GB), PYTHON (default python3), JOBS (default:
# all cores). The other libraries are Debian's (scripts/install-deps.sh). The binaries find the
# wheel's libraries through the build tree's RPATH: no LD_LIBRARY_PATH is needed, and on a machine
# without a GPU the CUDA libraries load and stay unused. No CUDA toolkit is needed: see README.md,
# "Building against LibTorch 2.x".
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${XDG_CACHE_HOME:-$HOME/.cache}/contra/venv-torch2
build_dir=build-torch2
if [[ $# -gt 0 && $1 != "--" ]]; then venv=$1; shift; fi
if [[ $# -gt 0 && $1 != "--" ]]; then build_dir=$1; shift; fi
if [[ $# -gt 0 && $1 == "--" ]]; then shift; fi
torch_version=${TORCH_VERSION:-2.15.0}
python=${PYTHON:-python3}
jobs=${JOBS:-$(nproc)}

bash scripts/install-deps.sh --torch2

# Prints the wheel's CMake prefix; fails when the venv has no importable torch. (Importing torch
# warns on stderr without numpy, which contra does not need.)
cmake_prefix() {
  "$venv/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null
}

if ! prefix=$(cmake_prefix); then
  echo "build-torch2: installing torch==$torch_version into $venv" >&2
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet "torch==$torch_version"
  prefix=$(cmake_prefix)
fi
version=$("$venv/bin/python" -c 'import torch; print(torch.__version__)' 2>/dev/null)
echo "build-torch2: torch $version, CMake prefix $prefix" >&2

cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONTRA_BUILD_TESTS=ON \
  -DCMAKE_PREFIX_PATH="$prefix" "$@"
cmake --build "$build_dir" -j "$jobs"
echo "build-torch2: built $build_dir against LibTorch $version" >&2
