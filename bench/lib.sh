# Shared protocol of the side-by-side comparisons (bench/compare_*.sh), sourced, not run:
#   - the machine and its state in the header: CPU, cores, BLAS, load average before the runs;
#   - the machine's sgemm peak measured in the same run (PyTorch 2048² matmul, same OpenBLAS);
#   - every configuration run RUNS times, interleaved (round 1: all configurations, round 2: ...);
#   - per run, the CPU time other processes took while it ran (busy time from /proc/stat minus the
#     run's own user + system time), so load from elsewhere is measured, not guessed;
#   - a table of medians and spreads, GFLOP/s and the share of the sgemm peak, and ratios against
#     the best Python configuration — withheld when the machine was not quiet.
# Usage in a script:
#   source bench/lib.sh; bench_begin "title" ; bench_peak 1 ; bench_run 1 "contra train" cmd... ;
#   bench_end --gflop-per-unit 5.875 --unit windows/s
BENCH_PY=${BENCH_PY:-/usr/bin/python3}
BENCH_TUNABLES='glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=17179869184:glibc.malloc.top_pad=1073741824'
BENCH_MAX_LOAD=${BENCH_MAX_LOAD:-1.0}          # 1-minute load average allowed before the runs
BENCH_MAX_FOREIGN=${BENCH_MAX_FOREIGN:-0.25}   # cores other processes may use during a run

bench_busy_jiffies() {  # total non-idle jiffies of all CPUs
  awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat
}

bench_begin() {  # title
  BENCH_DIR=$(mktemp -d)
  BENCH_RESULTS="$BENCH_DIR/results.tsv"
  : >"$BENCH_RESULTS"
  : >"$BENCH_DIR/peaks"
  BENCH_LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
  echo "$1"
  echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores," \
    "vector units $(grep -q -w avx512f /proc/cpuinfo && echo avx512f || (grep -q -w avx2 /proc/cpuinfo && echo avx2 || echo baseline))$(grep -q -w avx512_bf16 /proc/cpuinfo && echo '+avx512_bf16')$(grep -q -w amx_bf16 /proc/cpuinfo && echo '+amx_bf16')"
  echo "BLAS: $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || echo unknown)" \
    "(OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}); $(date -u '+%F %H:%M UTC')"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
}

bench_peak() {  # threads: measured sgemm GFLOP/s (PyTorch 2048² matmul, best of 5)
  local t=$1 g
  g=$(OMP_NUM_THREADS=$t GLIBC_TUNABLES=$BENCH_TUNABLES $BENCH_PY - "$t" <<'EOF'
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
for _ in range(2): a @ b
best = min((lambda s: (a @ b, time.perf_counter() - s)[1])(time.perf_counter()) for _ in range(5))
print(f"{2 * 2048**3 / best / 1e9:.1f}")
EOF
)
  echo "$t $g" >>"$BENCH_DIR/peaks"
  echo "sgemm peak, $t thread(s): $g GFLOP/s (PyTorch 2048² matmul, same BLAS)"
}

# bench_run threads name command... : the command (a program or a shell function) prints one
# number (the throughput) on the last line of its stdout; its stderr goes to $BENCH_DIR/err.
# Records value, wall time and the CPU that other processes used meanwhile.
bench_children_cpu() {  # user + system seconds of this shell's finished children, into $BENCH_CPU
  # (`times` must run in this shell: inside $(...) it would describe the subshell instead)
  times >"$BENCH_DIR/times"
  BENCH_CPU=$(tail -n 1 "$BENCH_DIR/times" |
    awk '{ for (i = 1; i <= 2; i++) { split($i, a, "m"); s += a[1] * 60 + a[2] } } END { printf "%.3f", s }')
}
bench_run() {
  local t=$1 name=$2
  shift 2
  local busy0 busy1 cpu0 cpu1 wall0 wall1 value
  busy0=$(bench_busy_jiffies)
  bench_children_cpu
  cpu0=$BENCH_CPU
  wall0=$(date +%s.%N)
  if ! ("$@") >"$BENCH_DIR/out" 2>"$BENCH_DIR/err"; then
    echo "bench: '$name' failed:" >&2
    tail -5 "$BENCH_DIR/err" >&2
    return 1
  fi
  wall1=$(date +%s.%N)
  bench_children_cpu
  cpu1=$BENCH_CPU
  busy1=$(bench_busy_jiffies)
  value=$(tail -n 1 "$BENCH_DIR/out")
  local foreign
  foreign=$(awk -v b0="$busy0" -v b1="$busy1" -v c0="$cpu0" -v c1="$cpu1" -v w0="$wall0" -v w1="$wall1" \
    -v hz="$(getconf CLK_TCK)" 'BEGIN { w = w1 - w0; f = ((b1 - b0) / hz - (c1 - c0)) / (w > 0 ? w : 1);
      if (f < 0) f = 0; printf "%.3f", f }')
  printf '%s\t%s\t%s\t%s\n' "$t" "$name" "$value" "$foreign" >>"$BENCH_RESULTS"
}

bench_end() {  # options for bench/python/bench_table.py (--gflop-per-unit, --unit, --baseline-prefix)
  local load_after
  load_after=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "load average after: $load_after (includes these runs' own threads)"
  $BENCH_PY "$(dirname "${BASH_SOURCE[0]}")/python/bench_table.py" --results "$BENCH_RESULTS" \
    --peaks "$BENCH_DIR/peaks" --load-before "$BENCH_LOAD_BEFORE" --max-load "$BENCH_MAX_LOAD" \
    --max-foreign "$BENCH_MAX_FOREIGN" "$@"
  rm -rf "$BENCH_DIR"
}
