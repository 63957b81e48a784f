#!/usr/bin/python3
"""Summarise a Chrome trace written by `contra_cpc_bench --profile=FILE`: self-inclusive time per op.

Usage: /usr/bin/python3 bench/python/trace_summary.py FILE [--top N]
Prints the total of each op name's durations (ms; nested ops are counted inside their parents too)."""
import argparse
import collections
import json

parser = argparse.ArgumentParser()
parser.add_argument("trace")
parser.add_argument("--top", type=int, default=25)
args = parser.parse_args()
events = json.load(open(args.trace))
if isinstance(events, dict):
    events = events.get("traceEvents", [])
# Legacy traces hold "B"/"E" pairs or "X" events with "dur" (µs).
total = collections.Counter()
count = collections.Counter()
stack = collections.defaultdict(list)
for e in events:
    ph = e.get("ph")
    if ph == "X":
        total[e["name"]] += e.get("dur", 0)
        count[e["name"]] += 1
    elif ph == "B":
        stack[(e.get("tid"), e["name"])].append(e["ts"])
    elif ph == "E" and stack[(e.get("tid"), e["name"])]:
        total[e["name"]] += e["ts"] - stack[(e.get("tid"), e["name"])].pop()
        count[e["name"]] += 1
for name, us in total.most_common(args.top):
    print(f"{us / 1000:10.2f} ms  {count[name]:6d}  {name}")
