#!/usr/bin/python3
"""Times forward + backward of the PyTorch-Python reference losses (scripts/loss_reference.py) on the
same inputs as bench/loss_bench.cpp; prints {"name": milliseconds} as JSON on stdout.

Each entry: 2 warm-up iterations, then 3 repetitions of as many iterations as fill --min-time
seconds of CPU time; the best of the repetitions' means (CPU time: the machine is shared). Threads: --threads (default 1). Denormals are flushed
to zero, as in bench/loss_bench.cpp.
Run through bench/loss_bench.sh, with Debian's /usr/bin/python3.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import loss_reference as ref  # noqa: E402

BATCH, DIM = 256, 128


def leaf(t):
    return t.requires_grad_(True)


def emb(n, d=DIM):
    return leaf(torch.randn(n, d))


def scores(*shape):
    return leaf(torch.rand(*shape) * 2 - 1)


def labels(n, per_class):
    return torch.div(torch.arange(n), per_class, rounding_mode="floor")


CASES = {
    "contrastive": (lambda: [emb(BATCH), emb(BATCH), torch.randint(2, (BATCH,))],
                    lambda x1, x2, y: ref.contrastive(x1, x2, y)),
    "triplet_batch_hard_512": (lambda: [emb(512), labels(512, 8)],
                               lambda x, y: ref.triplet_mined(x, y, mining="batch_hard")),
    "triplet_batch_all": (lambda: [emb(BATCH), labels(BATCH, 8)],
                          lambda x, y: ref.triplet_mined(x, y, mining="batch_all")),
    "triplet_semi_hard": (lambda: [emb(BATCH), labels(BATCH, 8)],
                          lambda x, y: ref.triplet_mined(x, y, mining="semi_hard")),
    "lifted_structured": (lambda: [emb(BATCH), labels(BATCH, 8)], ref.lifted_structured),
    "nce": (lambda: [leaf(torch.randn(BATCH)), torch.randn(BATCH) - 5, leaf(torch.randn(BATCH, 1024)),
                     torch.randn(BATCH, 1024) - 5], ref.nce),
    "info_nce_scores": (lambda: [scores(BATCH), scores(BATCH, 4096)], ref.info_nce),
    "info_nce_in_batch": (lambda: [emb(BATCH), emb(BATCH)], ref.info_nce_keys),
    "info_nce_queue_65536": (lambda: [emb(BATCH), emb(BATCH), F.normalize(torch.randn(65536, DIM), dim=1)],
                             lambda q, k, n: ref.info_nce_keys(q, k, n, temperature=0.07)),
    "nt_xent": (lambda: [emb(BATCH), emb(BATCH)], ref.nt_xent),
    "soft_nearest_neighbors": (lambda: [leaf(F.normalize(torch.randn(BATCH, DIM), dim=1)), labels(BATCH, 8)],
                               lambda x, y: ref.soft_nearest_neighbors(x, y, temperature=0.1)),
    "debiased": (lambda: [scores(2 * BATCH), scores(2 * BATCH, 2 * BATCH - 2)], ref.debiased),
    "hard_negative": (lambda: [scores(2 * BATCH), scores(2 * BATCH, 2 * BATCH - 2)], ref.hard_negative),
    "supcon": (lambda: [leaf(torch.randn(BATCH, 2, DIM)), labels(BATCH, 8)], ref.supcon),
    "barlow_twins": (lambda: [emb(BATCH), emb(BATCH)], ref.barlow_twins),
    "byol": (lambda: [emb(BATCH), emb(BATCH)], ref.byol),
    "clip": (lambda: [emb(BATCH), emb(BATCH), leaf(torch.tensor(2.659))], ref.clip),
    "swav": (lambda: [scores(2, BATCH, 3000)], ref.swav),
}


def step(fn, inputs):
    fn(*inputs).backward()
    for x in inputs:
        x.grad = None


def measure(make, fn, min_time):
    torch.manual_seed(0)
    inputs = make()
    for _ in range(2):
        step(fn, inputs)
    means = []
    for _ in range(3):
        n, start = 0, time.process_time()
        while True:
            step(fn, inputs)
            n += 1
            elapsed = time.process_time() - start
            if elapsed >= min_time:
                break
        means.append(elapsed / n * 1e3)
    return min(means)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-time", type=float, default=0.5)
    parser.add_argument("--only", default="", help="run this entry only")
    parser.add_argument("--list", action="store_true", help="print the entries' names")
    args = parser.parse_args()
    if args.list:
        print("\n".join(CASES))
        return
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    out = {name: measure(make, fn, args.min_time) for name, (make, fn) in CASES.items()
           if not args.only or name == args.only}
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
