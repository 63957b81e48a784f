#!/usr/bin/python3
"""The SimCLR MNIST training step (configs/simclr_mnist.yaml) in PyTorch-Python, for side-by-side
comparison with `contra train` (bench/compare_simclr.sh).

Same model and step as contra's SimClr with the recipe's settings:
  encoder  SmallCnn width 32, 1 channel: 3 x [Conv2d 3x3 pad 1 no bias -> BatchNorm2d -> ReLU],
           2x2 max-pool after blocks 1 and 2, global average pool -> 128 features
  head     Linear(128, 256, no bias) -> BatchNorm1d(256) -> ReLU -> Linear(256, 64)
  loss     NT-Xent, temperature 0.2, cosine similarities over the 2N views (both views concatenated
           through the encoder in one batch, as contra), self-similarity masked out
  metrics  instance_acc / pos_sim / neg_sim (no grad), computed every step as contra's SimClr does
  optim    Adam lr 2e-3, weight decay 1e-6, linear warm-up 100 steps then cosine (set every step)
Data, the way a torchvision user writes it: a map-style Dataset over the real MNIST digits
(data/mnist IDX files, read with numpy) whose __getitem__ makes two views of ONE image — uint8 ->
float / 255 (ToTensor), RandomResizedCrop(28, scale (0.5, 1), ratio (3/4, 4/3)), RandomApply(
ColorJitter(brightness 0.4, contrast 0.4), p 0.8), RandomApply(GaussianBlur(3, sigma (0.1, 1)), p 0.5),
Normalize(train mean, train std) — using augment_reference.py's per-image crop/jitter/blur code (the
torchvision 0.14 tensor code paths; torchvision itself is not packaged with Debian's torch), batched by
a torch.utils.data.DataLoader with `--workers` worker processes (default 1, as contra's one loader
thread), prefetch 4 batches (contra's train.prefetch), over an endless stream of shuffled epochs
(batches cross epoch boundaries, as contra's loader does; no pipeline restart per epoch).

  /usr/bin/python3 bench/python/simclr_reference.py --threads 1 --steps 20 --warmup 3
Prints one JSON object: images_per_s (batch x timed steps / their wall time, the definition of
contra's items_per_s; warm-up steps excluded), ms_per_step, loader_wait_s, loss, peak_rss_mb,
settings.
`--augment-only N` instead times the per-image view chain alone on N batches (no DataLoader, no
model), in the main process: the augmentation half of the comparison with the recipe's parameters.
"""
import argparse
import json
import math
import os
import random
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from augment_reference import color_jitter, crop_params, gaussian_blur  # noqa: E402


# ------------------------------------------------------------------------------------------ data
def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def random_resized_crop(img, size, scale, ratio):
    _, h, w = img.shape
    top, left, ch, cw = crop_params(h, w, scale, ratio)
    return F.interpolate(img[None, :, top:top + ch, left:left + cw], size=(size, size),
                         mode="bilinear", align_corners=False, antialias=False)[0]


class SimClrViews:
    """The recipe's view chain for one (C, H, W) float image in [0, 1] (torchvision's order)."""

    def __init__(self, size=28, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3), jitter_p=0.8,
                 brightness=0.4, contrast=0.4, blur_p=0.5, blur_kernel=3, blur_sigma=(0.1, 1.0),
                 mean=(0.0,), std=(1.0,)):
        self.size, self.scale, self.ratio = size, scale, ratio
        self.jitter_p, self.brightness, self.contrast = jitter_p, brightness, contrast
        self.blur_p, self.blur_kernel, self.blur_sigma = blur_p, blur_kernel, blur_sigma
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __call__(self, img):
        img = random_resized_crop(img, self.size, self.scale, self.ratio)
        if random.random() < self.jitter_p:
            img = color_jitter(img, self.brightness, self.contrast, 0.0, 0.0)
        if random.random() < self.blur_p:
            img = gaussian_blur(img, self.blur_kernel, random.uniform(*self.blur_sigma))
        return (img - self.mean) / self.std  # Normalize


class TwoViewMnist(Dataset):
    def __init__(self, images, labels, transform):
        self.images = torch.from_numpy(images.copy())  # (N, 28, 28) uint8
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.transform = transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        img = self.images[i].unsqueeze(0).float().div(255.0)  # ToTensor
        return self.transform(img), self.transform(img), self.labels[i]


class EndlessShuffle(Sampler):
    """Successive random permutations of the dataset, without end (as contra's index stream)."""

    def __init__(self, n, seed):
        self.n, self.seed = n, seed

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed)
        while True:
            yield from torch.randperm(self.n, generator=g).tolist()


# ----------------------------------------------------------------------------------------- model
class SmallCnn(nn.Module):
    def __init__(self, in_channels=1, width=32):
        super().__init__()
        w = width

        def conv(i, o):
            c = nn.Conv2d(i, o, 3, padding=1, bias=False)
            nn.init.kaiming_normal_(c.weight, mode="fan_out", nonlinearity="relu")
            return c
        self.conv1, self.bn1 = conv(in_channels, w), nn.BatchNorm2d(w)
        self.conv2, self.bn2 = conv(w, 2 * w), nn.BatchNorm2d(2 * w)
        self.conv3, self.bn3 = conv(2 * w, 4 * w), nn.BatchNorm2d(4 * w)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = F.relu(self.bn3(self.conv3(x)))
        return x.mean((2, 3))


class SimClr(nn.Module):
    def __init__(self, width=32, hidden=256, out=64, temperature=0.2):
        super().__init__()
        self.encoder = SmallCnn(1, width)
        self.head = nn.Sequential(nn.Linear(4 * width, hidden, bias=False), nn.BatchNorm1d(hidden),
                                  nn.ReLU(), nn.Linear(hidden, out))
        self.temperature = temperature

    def forward(self, v1, v2):
        n = v1.shape[0]
        z = self.head(self.encoder(torch.cat((v1, v2), 0)))  # (2N, D)
        zn = F.normalize(z, dim=1)
        logits = zn @ zn.t() / self.temperature
        logits.fill_diagonal_(float("-inf"))
        partner = (torch.arange(2 * n) + n) % (2 * n)
        loss = F.cross_entropy(logits, partner)
        with torch.no_grad():  # contra's SimClr metrics, every step
            zd = zn.detach()
            sim = zd @ zd.t()
            pos = sim.gather(1, partner.unsqueeze(1)).squeeze(1)
            sim.fill_diagonal_(-2.0)
            metrics = {"instance_acc": sim.argmax(1).eq(partner).double().mean().item(),
                       "pos_sim": pos.mean().item()}
            sim.fill_diagonal_(0.0)
            metrics["neg_sim"] = (sim.sum().item() - pos.sum().item()) / (2 * n * (2 * n - 2))
        return loss, metrics


def learning_rate(step, total, lr=2e-3, warmup=100):
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr * 0.5 * (1.0 + math.cos(math.pi * progress))


# ------------------------------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps before")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1, help="DataLoader workers (0: in-line)")
    ap.add_argument("--prefetch", type=int, default=4, help="batches per worker ahead")
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--augment-only", type=int, default=0, metavar="BATCHES",
                    help="time the per-image view chain alone on this many batches")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)

    images = read_idx(os.path.join(args.data, "train-images-idx3-ubyte"))
    labels = read_idx(os.path.join(args.data, "train-labels-idx1-ubyte"))
    unit = images.astype(np.float64) / 255.0
    views = SimClrViews(mean=(float(unit.mean()),), std=(float(unit.std()),))
    dataset = TwoViewMnist(images, labels, views)

    if args.augment_only:
        idx = torch.randperm(len(dataset))[:args.batch].tolist()
        batch = [dataset.images[i].unsqueeze(0).float().div(255.0) for i in idx]
        torch.stack([views(img) for img in batch])  # warm-up
        start = time.perf_counter()
        for _ in range(args.augment_only):
            y = torch.stack([views(img) for img in batch])
        elapsed = time.perf_counter() - start
        assert y.shape == (args.batch, 1, 28, 28)
        print(json.dumps({"images_per_s": args.batch * args.augment_only / elapsed,
                          "ms_per_batch": 1000 * elapsed / args.augment_only,
                          "settings": vars(args) | {"torch": torch.__version__}}))
        return

    loader = DataLoader(dataset, batch_size=args.batch, sampler=EndlessShuffle(len(dataset), args.seed),
                        num_workers=args.workers, drop_last=True,
                        prefetch_factor=args.prefetch if args.workers > 0 else 2,
                        persistent_workers=args.workers > 0)
    model = SimClr()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-6)
    total = args.warmup + args.steps
    batches = iter(loader)
    wait = 0.0
    start = time.perf_counter()
    for step in range(total):
        if step == args.warmup:
            start, wait = time.perf_counter(), 0.0
        for g in opt.param_groups:
            g["lr"] = learning_rate(step, total)
        opt.zero_grad()
        t0 = time.perf_counter()
        v1, v2, _ = next(batches)
        wait += time.perf_counter() - t0
        loss, metrics = model(v1, v2)
        value = loss.item()
        if not math.isfinite(value):
            raise SystemExit(f"loss is {value} at step {step + 1}")
        loss.backward()
        opt.step()
    elapsed = time.perf_counter() - start
    print(json.dumps({
        "images_per_s": args.batch * args.steps / elapsed,
        "ms_per_step": 1000 * elapsed / args.steps,
        "loader_wait_s": wait,
        "loss": value,
        "metrics": metrics,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "settings": vars(args) | {"torch": torch.__version__},
    }))


if __name__ == "__main__":
    main()
