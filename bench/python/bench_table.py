#!/usr/bin/python3
"""Medians, spreads and ratios of interleaved benchmark runs (bench/lib.sh writes the input).

Input rows (tab-separated): threads, configuration name, throughput, foreign cores (CPU other
processes used during that run). Per thread count and configuration: the median and min-max of the
runs, GFLOP/s (throughput x --gflop-per-unit) and its share of the sgemm peak measured in the same
run, and the ratio of medians against the best configuration whose name starts with
--baseline-prefix. Ratios are withheld (and the reason printed) when the load average before the
runs exceeded --max-load or any run saw more than --max-foreign cores of other work.
"""
import argparse
import collections
import statistics


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--peaks", required=True)
    ap.add_argument("--load-before", type=float, required=True)
    ap.add_argument("--max-load", type=float, default=1.0)
    ap.add_argument("--max-foreign", type=float, default=0.25)
    ap.add_argument("--gflop-per-unit", type=float, default=0.0)
    ap.add_argument("--unit", default="items/s")
    ap.add_argument("--baseline-prefix", default="Python")
    args = ap.parse_args()

    runs = collections.OrderedDict()
    foreign = []
    for line in open(args.results):
        t, name, value, f = line.rstrip("\n").split("\t")
        runs.setdefault((int(t), name), []).append(float(value))
        foreign.append(float(f))
    peaks = {}
    for line in open(args.peaks):
        t, g = line.split()
        peaks[int(t)] = float(g)

    quiet = args.load_before <= args.max_load and max(foreign, default=0) <= args.max_foreign
    print(f"\nother processes' CPU during the runs: max {max(foreign, default=0):.2f} cores, "
          f"mean {statistics.mean(foreign) if foreign else 0:.2f}")
    flop = args.gflop_per_unit > 0
    head = f"| threads | configuration | median {args.unit} | min–max | runs |"
    sep = "|---|---|---|---|---|"
    if flop:
        head += " GFLOP/s | share of sgemm peak |"
        sep += "---|---|"
    head += " vs best " + args.baseline_prefix + " |"
    sep += "---|"
    print("\n" + head + "\n" + sep)
    for t in sorted({t for t, _ in runs}):
        rows = [(name, v) for (tt, name), v in runs.items() if tt == t]
        base = [statistics.median(v) for name, v in rows if name.startswith(args.baseline_prefix)]
        best = max(base) if base else None
        for name, v in rows:
            m = statistics.median(v)
            line = f"| {t} | {name} | {m:.2f} | {min(v):.2f}–{max(v):.2f} | {len(v)} |"
            if flop:
                g = m * args.gflop_per_unit
                share = f"{100 * g / peaks[t]:.0f}%" if t in peaks else "–"
                line += f" {g:.1f} | {share} |"
            if best and quiet:
                line += f" {m / best:.2f}× |"
            else:
                line += " withheld |" if best else " – |"
            print(line)
    if not quiet:
        print(f"\nRatios withheld: the machine was not quiet (load average before {args.load_before:.2f}, "
              f"limit {args.max_load}; other processes up to {max(foreign, default=0):.2f} cores, "
              f"limit {args.max_foreign}). Rerun on a quiet machine.")


if __name__ == "__main__":
    main()
