#!/usr/bin/python3
"""The paper-size CPC training step in PyTorch-Python, for side-by-side comparison with contra.

Same model as contra's CpcAudio defaults: 5-layer strided Conv1d encoder (kernels 10,8,4,4,4, strides
5,4,2,2,2, paddings 3,2,1,1,1; BatchNorm, or with `--norm layer` per-frame channel LayerNorm; ReLU), 1-layer GRU, one linear W_k per
step (no bias, fused into one Linear H -> K*C), InfoNCE with temperature 1 and `--negatives` negatives
drawn uniformly from all frames of the minibatch except the positive (independently for every k),
anchors t in [0, T-k), Adam lr 2e-4.

Formulations of the loss (same sampled negatives, same logits):
  cpc_audio  negative vectors materialised (z[idx] -> (M, N, C)), then scored (einsum), as CPC_audio does
  best       one matrix product per step k (predictions x all frames), then gather the sampled scores
  fused      every step at once: the valid (b, t, k) prediction rows selected once, one matrix product
             against all frames, one gather, one cross-entropy weighted per step (fewest Python ops)
  none       encoder + GRU forward/backward only (no loss; sum of c as a stand-in)
`--bf16` runs the W_k product and the scoring products of `best` and `fused` in bfloat16 (fp32 accumulation), as
contra's `loss.precision: bfloat16`.

Run with Debian's torch (/usr/bin/python3, torch 1.13). For the allocator-tuned numbers run it as
  GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=17179869184:glibc.malloc.top_pad=1073741824 \\
    /usr/bin/python3 bench/python/cpc_reference.py --threads 1 --steps 10 --formulation best
Under torchrun (WORLD_SIZE > 1) the model is wrapped in DistributedDataParallel (Gloo) and `--batch`
is per rank (bench/compare_dist.sh). Prints one JSON object (rank 0): windows_per_s, ms_per_step, loss_ms_per_step (loss share measured with
separate timers), peak_rss_mb, settings.
"""
import argparse
import json
import os
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Encoder(nn.Module):
    def __init__(self, channels=256, kernels=(10, 8, 4, 4, 4), strides=(5, 4, 2, 2, 2),
                 paddings=(3, 2, 1, 1, 1), norm="batch"):
        super().__init__()
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.layer = norm == "layer"
        cin = 1
        for k, s, p in zip(kernels, strides, paddings):
            self.convs.append(nn.Conv1d(cin, channels, k, stride=s, padding=p))
            self.norms.append(nn.LayerNorm(channels) if self.layer else nn.BatchNorm1d(channels))
            cin = channels

    def forward(self, x):  # (B, 1, S) -> (B, T, C)
        if not self.layer:
            for conv, norm in zip(self.convs, self.norms):
                x = F.relu(norm(conv(x)))
            return x.transpose(1, 2)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = F.relu(norm(conv(x).transpose(1, 2)))
            if i + 1 < len(self.convs):
                x = x.transpose(1, 2)
        return x


class Cpc(nn.Module):
    def __init__(self, channels=256, hidden=256, steps=12, norm="batch", bf16=False):
        super().__init__()
        self.encoder = Encoder(channels, norm=norm)
        self.bf16 = bf16
        self.gru = nn.GRU(channels, hidden, batch_first=True)
        self.predictor = nn.Linear(hidden, steps * channels, bias=False)
        self.steps = steps

    def forward(self, x):
        z = self.encoder(x)
        c, _ = self.gru(z)
        B, T, C = z.shape
        if self.bf16:
            pred = F.linear(c.bfloat16(), self.predictor.weight.bfloat16())
        else:
            pred = self.predictor(c)
        return z, c, pred.view(B, T, self.steps, C)


def sample_batch_negatives(positive, pool, count):
    """(M) positive frame ids -> (M, count) uniform over [0, pool) minus the positive (shift trick)."""
    r = torch.randint(0, pool - 1, (positive.numel(), count))
    return r + (r >= positive.unsqueeze(1)).long()


_rows = {}


def step_rows(B, T, K):
    """Rows (b, t, k) with t < T - k, ordered by k: prediction row ids, positive frame ids, weights."""
    key = (B, T, K)
    if key not in _rows:
        pred_ids, pos_ids, weights = [], [], []
        for k in range(1, K + 1):
            b = torch.arange(B).unsqueeze(1)
            t = torch.arange(T - k).unsqueeze(0)
            pred_ids.append(((b * T + t) * K + (k - 1)).flatten())
            pos_ids.append((b * T + t + k).flatten())
            weights.append(torch.full((B * (T - k),), 1.0 / (K * B * (T - k))))
        _rows[key] = (torch.cat(pred_ids), torch.cat(pos_ids), torch.cat(weights))
    return _rows[key]


def cpc_loss_fused(z, pred, negatives, bf16=False):
    """All K steps in one product + gather + cross-entropy (same sampling law, same logits)."""
    B, T, C = z.shape
    K = pred.shape[2]
    pred_ids, positive, weight = step_rows(B, T, K)
    neg = sample_batch_negatives(positive, B * T, negatives)
    cols = torch.cat([positive.unsqueeze(1), neg], 1)  # (R, 1 + N)
    p = pred.reshape(B * T * K, C).index_select(0, pred_ids)  # (R, C)
    zf = z.reshape(B * T, C)
    if bf16:
        logits = (p.bfloat16() @ zf.bfloat16().t()).gather(1, cols).float()
    else:
        logits = (p.float() @ zf.t()).gather(1, cols)  # (R, 1 + N)
    per_row = torch.logsumexp(logits, 1) - logits[:, 0]
    return (per_row * weight).sum()


def cpc_loss(z, pred, negatives, formulation, bf16=False):
    B, T, C = z.shape
    K = pred.shape[2]
    if formulation == "fused":
        return cpc_loss_fused(z, pred, negatives, bf16)
    z_flat = z.reshape(B * T, C)
    total = 0.0
    for k in range(1, K + 1):
        Tk = T - k
        positive = ((torch.arange(B) * T).unsqueeze(1) + torch.arange(k, T).unsqueeze(0)).flatten()
        neg = sample_batch_negatives(positive, B * T, negatives)
        cols = torch.cat([positive.unsqueeze(1), neg], 1)  # (M, 1 + N)
        p = pred[:, :Tk, k - 1].reshape(B * Tk, C)
        if not bf16:
            p = p.float()
        if formulation == "cpc_audio":
            candidates = z_flat[cols]  # (M, 1 + N, C) materialised
            logits = torch.einsum("mc,mnc->mn", p, candidates)
        else:
            if bf16:
                logits = (p.bfloat16() @ z_flat.bfloat16().t()).gather(1, cols).float()
            else:
                logits = (p @ z_flat.t()).gather(1, cols)
        total = total + F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long))
    return total / K


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--window", type=int, default=20480)
    ap.add_argument("--negatives", type=int, default=128)
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--formulation", choices=["cpc_audio", "best", "fused", "none"], default="best")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--norm", choices=["batch", "layer"], default="batch")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = Cpc(args.channels, args.channels, norm=args.norm, bf16=args.bf16)
    # Under torchrun (WORLD_SIZE > 1): DistributedDataParallel over Gloo, `--batch` windows per rank.
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo")
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    x = torch.randn(args.batch, 1, args.window)
    loss_time = 0.0
    losses = []
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            start = time.perf_counter()
            loss_time = 0.0
        z, c, pred = model(x)
        t0 = time.perf_counter()
        if args.formulation == "none":
            loss = c.sum()
            loss.backward()
        else:
            # Loss time = its forward + the backward through the loss alone (down to z and pred).
            loss = cpc_loss(z, pred, args.negatives, args.formulation, args.bf16)
            zg, pg = torch.autograd.grad(loss, [z, pred], retain_graph=True)
            loss_time += time.perf_counter() - t0
            torch.autograd.backward([z, pred], [zg, pg])
            losses.append(loss.item())
        opt.step()
        opt.zero_grad()
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if rank != 0:
        return
    print(json.dumps({
        "implementation": "pytorch-python", "formulation": args.formulation, "bf16": args.bf16,
        "norm": args.norm, "torch": torch.__version__, "threads": args.threads, "batch": args.batch,
        "window": args.window, "negatives": args.negatives, "steps": args.steps,
        "ranks": world,
        "windows_per_s": round(args.batch * world * args.steps / elapsed, 3),
        "ms_per_step": round(1000 * elapsed / args.steps, 1),
        "loss_ms_per_step": round(1000 * loss_time / args.steps, 1),
        "peak_rss_mb": round(peak, 1),
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
        "last_loss": losses[-1] if losses else None}))


if __name__ == "__main__":
    main()
