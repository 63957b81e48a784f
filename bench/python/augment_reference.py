#!/usr/bin/python3
"""The SimCLR augmentation chain as torchvision runs it — one image at a time — in pure torch.

torchvision is not packaged with Debian's python3-torch (`import torchvision` fails), so this file
re-implements the tensor code paths torchvision (0.14, the release matching torch 1.13) takes for
float images, per sample, as a DataLoader worker would:
  RandomResizedCrop(size, scale=(0.08, 1), ratio=(3/4, 4/3))  get_params (10 attempts, centre
      fallback) + crop + F.interpolate(bilinear, align_corners=False, antialias=False)
  RandomHorizontalFlip(0.5)
  RandomApply([ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8)  random order; saturation/hue no-ops on 1 channel
  RandomGrayscale(0.2)                                   no-op on 1 channel
  GaussianBlur(kernel 10 % of size made odd, sigma (0.1, 2)) applied with p = 0.5, reflect padding
It is the comparison point for bench/image_augment_bench.cpp (contra's batched version).

  /usr/bin/python3 bench/python/augment_reference.py --threads 1 --batch 256 --side 28 --channels 1
Prints one JSON object: images_per_s, ms_per_batch, settings.
"""
import argparse
import json
import math
import random
import time

import torch
import torch.nn.functional as F


def crop_params(h, w, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * random.uniform(*scale)
        aspect = math.exp(random.uniform(*log_ratio))
        cw = int(round(math.sqrt(target * aspect)))
        ch = int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            return random.randint(0, h - ch), random.randint(0, w - cw), ch, cw
    in_ratio = w / h
    if in_ratio < min(ratio):
        cw, ch = w, int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        ch, cw = h, int(round(h * max(ratio)))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def gray(img):
    if img.shape[0] == 1:
        return img
    return (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]).unsqueeze(0)


def blend(a, b, r):
    return (r * a + (1 - r) * b).clamp(0, 1)


def rgb2hsv(img):
    r, g, b = img.unbind(0)
    maxc = img.max(0).values
    minc = img.min(0).values
    eqc = maxc == minc
    cr = maxc - minc
    ones = torch.ones_like(maxc)
    s = cr / torch.where(eqc, ones, maxc)
    crd = torch.where(eqc, ones, cr)
    rc, gc, bc = (maxc - r) / crd, (maxc - g) / crd, (maxc - b) / crd
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = torch.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return torch.stack((h, s, maxc))


def hsv2rgb(img):
    h, s, v = img.unbind(0)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.to(torch.int32) % 6
    p = (v * (1 - s)).clamp(0, 1)
    q = (v * (1 - s * f)).clamp(0, 1)
    t = (v * (1 - s * (1 - f))).clamp(0, 1)
    mask = i.unsqueeze(0) == torch.arange(6).view(-1, 1, 1)
    a1 = torch.stack((v, q, p, p, t, v))
    a2 = torch.stack((t, v, v, q, p, p))
    a3 = torch.stack((p, p, t, v, v, q))
    a4 = torch.stack((a1, a2, a3))
    return torch.einsum("ijk, xijk -> xjk", mask.to(img.dtype), a4)


def color_jitter(img, b, c, s, h):
    for op in torch.randperm(4).tolist():
        if op == 0:
            img = (img * random.uniform(max(0, 1 - b), 1 + b)).clamp(0, 1)
        elif op == 1:
            img = blend(img, gray(img).mean(), random.uniform(max(0, 1 - c), 1 + c))
        elif op == 2 and img.shape[0] == 3:
            img = blend(img, gray(img), random.uniform(max(0, 1 - s), 1 + s))
        elif op == 3 and img.shape[0] == 3:
            hsv = rgb2hsv(img)
            hsv[0] = (hsv[0] + random.uniform(-h, h)) % 1.0
            img = hsv2rgb(hsv)
    return img


def gaussian_blur(img, k, sigma):
    x = torch.linspace(-(k - 1) / 2, (k - 1) / 2, k)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = img.shape[0]
    out = F.pad(img.unsqueeze(0), [k // 2] * 4, mode="reflect")
    out = F.conv2d(out, kernel.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    out = F.conv2d(out, kernel.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)
    return out[0]


def simclr(img, size):
    c, h, w = img.shape
    top, left, ch, cw = crop_params(h, w)
    img = F.interpolate(img[None, :, top:top + ch, left:left + cw], size=(size, size),
                        mode="bilinear", align_corners=False, antialias=False)[0]
    if random.random() < 0.5:
        img = img.flip(-1)
    if random.random() < 0.8:
        img = color_jitter(img, 0.8, 0.8, 0.8, 0.2)
    if random.random() < 0.2 and c == 3:
        img = gray(img).expand(3, -1, -1)
    k = int(0.1 * size)
    k = k if k % 2 == 1 else k + 1
    if random.random() < 0.5:
        img = gaussian_blur(img, k, random.uniform(0.1, 2.0))
    return img


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--side", type=int, default=28)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--batches", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    random.seed(0)
    torch.manual_seed(0)
    x = torch.rand(args.batch, args.channels, args.side, args.side)
    torch.stack([simclr(img, args.side) for img in x])  # warm-up
    start = time.perf_counter()
    for _ in range(args.batches):
        y = torch.stack([simclr(img, args.side) for img in x])
    elapsed = time.perf_counter() - start
    assert y.shape == x.shape and -1e-5 <= float(y.min()) and float(y.max()) <= 1 + 1e-5
    print(json.dumps({
        "images_per_s": args.batch * args.batches / elapsed,
        "ms_per_batch": 1000 * elapsed / args.batches,
        "settings": vars(args) | {"torch": torch.__version__},
    }))


if __name__ == "__main__":
    main()
