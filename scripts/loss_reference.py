#!/usr/bin/python3
"""Independent PyTorch-Python reference for contra's losses (contra/loss).

Each function follows the paper's official code or the field's usual vectorised formulation, written
separately from the C++ (exp/sum forms where the C++ works in log space, cdist/broadcasting where it
uses matrix products, the TF tiling for semi-hard mining, the official Sinkhorn-Knopp...). It serves
two purposes:

  * test vectors: `/usr/bin/python3 scripts/loss_reference.py` writes tests/data/loss/<loss>.json —
    inputs, options, the loss and the gradient of every floating-point input, in float64 — which the
    C++ tests in tests/loss/ compare against;
  * benchmark: bench/python/loss_bench.py times these same functions against bench/loss_bench.cpp.

Run it with Debian's python3-torch (`/usr/bin/python3`, torch 1.13).
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "data", "loss")


# ---- losses -----------------------------------------------------------------------------------------

def contrastive(x1, x2, similar, margin=1.0, distance="euclidean"):
    if distance == "euclidean":
        d = torch.linalg.vector_norm(x1 - x2, dim=1)
    else:
        d = 1 - F.cosine_similarity(x1, x2, dim=1)
    y = similar.to(x1.dtype)
    return (y * d.pow(2) + (1 - y) * F.relu(margin - d).pow(2)).mean()


def _dist(x, squared):
    d = torch.cdist(x, x)
    return d.pow(2) if squared else d


def triplet(anchor, positive, negative, margin=1.0, squared=False):
    dap = torch.linalg.vector_norm(anchor - positive, dim=1)
    dan = torch.linalg.vector_norm(anchor - negative, dim=1)
    if squared:
        dap, dan = dap.pow(2), dan.pow(2)
    return F.relu(dap - dan + margin).mean()


def triplet_mined(x, labels, margin=1.0, squared=False, mining="batch_hard"):
    n = x.shape[0]
    d = _dist(x, squared)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(n, dtype=torch.bool)
    pos = same & ~eye
    neg = ~same
    if mining == "batch_all":
        valid = pos[:, :, None] & neg[:, None, :]
        loss = F.relu(d[:, :, None] - d[:, None, :] + margin)
        return loss[valid].sum() / valid.sum()
    if mining == "batch_hard":
        valid = pos.any(1) & neg.any(1)
        hp = torch.where(pos, d, torch.full_like(d, -math.inf)).amax(1)
        hn = torch.where(neg, d, torch.full_like(d, math.inf)).amin(1)
        return F.relu(hp - hn + margin)[valid].mean()
    if mining == "semi_hard":
        # tfa.losses.triplet_semihard_loss, tiled: for (a, p), negatives n with d_an > d_ap.
        big = d.max() + 1
        d_an = d[:, None, :].expand(n, n, n)   # [a, p, n]
        d_ap = d[:, :, None].expand(n, n, n)
        mask = neg[:, None, :] & (d_an > d_ap)
        outside = torch.where(mask, d_an, big).min(2).values
        inside = torch.where(neg, d, -big).max(1).values[:, None].expand(n, n)
        chosen = torch.where(mask.any(2), outside, inside)
        valid = pos & neg.any(1)[:, None]
        return F.relu(d - chosen + margin)[valid].mean()
    raise ValueError(mining)


def lifted_structured(x, labels, margin=1.0):
    d = torch.cdist(x, x)
    same = labels[:, None] == labels[None, :]
    neg = ~same
    s = (torch.exp(margin - d) * neg).sum(1)   # Σ_{k negative of i} e^{α − D_ik}
    i, j = torch.triu_indices(len(labels), len(labels), 1)
    keep = same[i, j]
    i, j = i[keep], j[keep]
    jij = torch.log(s[i] + s[j]) + d[i, j]
    return F.relu(jij).pow(2).sum() / (2 * len(i))


def nce(data_scores, data_log_noise, noise_scores, noise_log_noise, noise_ratio=0.0):
    nu = noise_ratio if noise_ratio > 0 else noise_scores.shape[1]
    dx = data_scores - data_log_noise - math.log(nu)
    dy = noise_scores - noise_log_noise - math.log(nu)
    return -(F.logsigmoid(dx) + F.logsigmoid(-dy).sum(1)).mean()


def info_nce(positive, negative, temperature=0.1, normalize=True):
    logits = torch.cat([positive.reshape(-1, 1), negative], 1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long))


def info_nce_keys(query, positive_key, negative_keys=None, temperature=0.1, normalize=True):
    if normalize:
        query, positive_key = F.normalize(query, dim=-1), F.normalize(positive_key, dim=-1)
        if negative_keys is not None:
            negative_keys = F.normalize(negative_keys, dim=-1)
    if negative_keys is None:
        logits = query @ positive_key.T
        target = torch.arange(len(query))
    else:
        l_pos = torch.einsum("nc,nc->n", query, positive_key)[:, None]
        if negative_keys.dim() == 2:
            l_neg = torch.einsum("nc,kc->nk", query, negative_keys)
        else:
            l_neg = torch.einsum("nc,nkc->nk", query, negative_keys)
        logits = torch.cat([l_pos, l_neg], 1)
        target = torch.zeros(len(query), dtype=torch.long)
    return F.cross_entropy(logits / temperature, target)


def nt_xent(z1, z2, memory_bank=None, temperature=0.5, normalize=True):
    # lightly's NTXentLoss layout: [positive | negatives] per row, cross-entropy with target 0.
    n = len(z1)
    z = torch.cat([z1, z2])
    if normalize:
        z = F.normalize(z, dim=1)
    sim = z @ z.T
    pos = torch.cat([torch.diag(sim, n), torch.diag(sim, -n)])
    others = ~torch.eye(2 * n, dtype=torch.bool)
    others[torch.arange(2 * n), (torch.arange(2 * n) + n) % (2 * n)] = False
    neg = sim[others].view(2 * n, 2 * n - 2)
    parts = [pos[:, None], neg]
    if memory_bank is not None:
        bank = F.normalize(memory_bank, dim=1) if normalize else memory_bank
        parts.append(z @ bank.T)
    logits = torch.cat(parts, 1) / temperature
    return F.cross_entropy(logits, torch.zeros(2 * n, dtype=torch.long))


def _distance_matrix(x, distance):
    if distance == "squared_euclidean":
        return torch.cdist(x, x).pow(2)
    if distance == "euclidean":
        return torch.cdist(x, x)
    if distance == "cosine":
        xn = F.normalize(x, dim=1)
        return 1 - xn @ xn.T
    if distance == "l1":
        return torch.cdist(x, x, p=1)
    raise ValueError(distance)


def _snn_from_distances(d, labels, temperature):
    # Frosst et al.'s pick probabilities: e^{−d/T} with the diagonal removed, row-normalised.
    n = len(labels)
    f = torch.exp(-d / temperature) * (1 - torch.eye(n, dtype=d.dtype))
    pick = f / f.sum(1, keepdim=True)
    same = (labels[:, None] == labels[None, :]).to(d.dtype)
    p_same = (pick * same).sum(1)
    valid = ((same.sum(1) - 1) > 0)
    return -torch.log(p_same[valid]).mean()


def snn_best_temperature(d, labels):
    """Dense search for argmin_T: 4001 points over 10 decades, then a local ternary refinement."""
    with torch.no_grad():
        n = len(labels)
        scale = float(d.sum() / (n * (n - 1)))
        logs = torch.linspace(math.log(scale) - 5 * math.log(10), math.log(scale) + 5 * math.log(10),
                              4001, dtype=torch.float64)
        values = torch.stack([_snn_from_distances(d, labels, math.exp(float(t))) for t in logs])
        values = torch.nan_to_num(values, nan=float("inf"))
        best = int(values.argmin())
        lo, hi = float(logs[max(best - 1, 0)]), float(logs[min(best + 1, len(logs) - 1)])
        f = lambda t: float(_snn_from_distances(d, labels, math.exp(t)))
        for _ in range(100):
            a, b = lo + (hi - lo) / 3, hi - (hi - lo) / 3
            if f(a) <= f(b):
                hi = b
            else:
                lo = a
        return math.exp((lo + hi) / 2)


def soft_nearest_neighbors(x, labels, temperature=1.0, optimize_temperature=False,
                           distance="squared_euclidean"):
    d = _distance_matrix(x, distance)
    t = snn_best_temperature(d.detach(), labels) if optimize_temperature else temperature
    return _snn_from_distances(d, labels, t)


def debiased(positive, negative, temperature=0.5, tau_plus=0.1):
    # Chuang et al.'s official code (exp form).
    pos = torch.exp(positive.reshape(-1) / temperature)
    neg = torch.exp(negative / temperature)
    n = negative.shape[1]
    ng = (-tau_plus * n * pos + neg.sum(dim=-1)) / (1 - tau_plus)
    ng = torch.clamp(ng, min=n * math.e ** (-1 / temperature))
    return (-torch.log(pos / (pos + ng))).mean()


def hard_negative(positive, negative, temperature=0.5, tau_plus=0.1, beta=1.0):
    # Robinson et al.'s official code (estimator 'hard').
    pos = torch.exp(positive.reshape(-1) / temperature)
    neg = torch.exp(negative / temperature)
    n = negative.shape[1]
    imp = (beta * neg.log()).exp()
    reweight_neg = (imp * neg).sum(dim=-1) / imp.mean(dim=-1)
    ng = (-tau_plus * n * pos + reweight_neg) / (1 - tau_plus)
    ng = torch.clamp(ng, min=n * math.e ** (-1 / temperature))
    return (-torch.log(pos / (pos + ng))).mean()


def supcon(features, labels=None, temperature=0.07, base_temperature=0.07, normalize=True):
    # HobbitLong/SupContrast SupConLoss (contrast_mode 'all'), anchors without positives dropped.
    if features.dim() == 2:
        features = features[:, None, :]
    if normalize:
        features = F.normalize(features, dim=-1)
    batch, views = features.shape[:2]
    if labels is None:
        mask = torch.eye(batch, dtype=features.dtype)
    else:
        labels = labels.view(-1, 1)
        mask = torch.eq(labels, labels.T).to(features.dtype)
    contrast = torch.cat(torch.unbind(features, dim=1), dim=0)
    logits = contrast @ contrast.T / temperature
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()
    mask = mask.repeat(views, views)
    logits_mask = 1 - torch.eye(batch * views, dtype=features.dtype)
    mask = mask * logits_mask
    exp_logits = torch.exp(logits) * logits_mask
    log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))
    has = mask.sum(1) > 0
    mean_log_prob_pos = (mask * log_prob).sum(1)[has] / mask.sum(1)[has]
    return (-(temperature / base_temperature) * mean_log_prob_pos).mean()


def barlow_twins(z1, z2, lambd=0.0051, eps=1e-5):
    # facebookresearch/barlowtwins: BatchNorm1d(affine=False) in training mode.
    bn = torch.nn.BatchNorm1d(z1.shape[1], affine=False, eps=eps).to(z1.dtype)
    c = bn(z1).T @ bn(z2) / z1.shape[0]
    on_diag = torch.diagonal(c).add(-1).pow(2).sum()
    n = c.shape[0]
    off_diag = c.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten().pow(2).sum()
    return on_diag + lambd * off_diag


def byol(prediction, target, form="normalized_mse"):
    if form == "normalized_mse":
        p, z = F.normalize(prediction, dim=-1), F.normalize(target, dim=-1)
        return (2 - 2 * (p * z).sum(dim=-1)).mean()
    return -F.cosine_similarity(prediction, target, dim=-1).mean()


def clip(image, text, log_scale, max_scale=100.0, init_temperature=0.07, learnable=True):
    # OpenCLIP ClipLoss (world size 1).
    image, text = F.normalize(image, dim=-1), F.normalize(text, dim=-1)
    scale = torch.clamp(log_scale, max=math.log(max_scale)).exp()
    logits_per_image = scale * image @ text.T
    labels = torch.arange(len(image))
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_image.T, labels)) / 2


def sinkhorn_knopp(out, epsilon=0.05, iterations=3):
    # facebookresearch/swav distributed_sinkhorn, world size 1.
    with torch.no_grad():
        q = torch.exp(out / epsilon).t()
        b, k = q.shape[1], q.shape[0]
        q /= torch.sum(q)
        for _ in range(iterations):
            q /= torch.sum(q, dim=1, keepdim=True)
            q /= k
            q /= torch.sum(q, dim=0, keepdim=True)
            q /= b
        q *= b
        return q.t()


def swav(scores, temperature=0.1, epsilon=0.05, sinkhorn_iterations=3, crops_for_assign=(0, 1)):
    views = scores.shape[0]
    loss = 0
    for crop_id in crops_for_assign:
        q = sinkhorn_knopp(scores[crop_id].detach(), epsilon, sinkhorn_iterations)
        subloss = 0
        for v in [v for v in range(views) if v != crop_id]:
            x = scores[v] / temperature
            subloss -= torch.mean(torch.sum(q * F.log_softmax(x, dim=1), dim=1))
        loss += subloss / (views - 1)
    return loss / len(crops_for_assign)


# ---- test vectors -----------------------------------------------------------------------------------

def tensor_json(t):
    return {"shape": list(t.shape), "dtype": "int64" if not t.is_floating_point() else "float64",
            "data": [float(v) if t.is_floating_point() else int(v) for v in t.reshape(-1).tolist()]}


def case(name, fn, inputs, options, call=None):
    """Evaluates fn(**inputs, **options) in float64 and records the gradient of every float input."""
    leaves = {k: (v.clone().double().requires_grad_(True) if v.is_floating_point() else v)
              for k, v in inputs.items() if v is not None}
    loss = (call or fn)(**leaves, **options)
    floats = [k for k, v in leaves.items() if v.is_floating_point()]
    grads = torch.autograd.grad(loss, [leaves[k] for k in floats], allow_unused=True)
    return {
        "name": name,
        "options": options,
        "inputs": {k: tensor_json(v.detach()) for k, v in leaves.items()},
        "loss": float(loss),
        "grads": {k: tensor_json(g if g is not None else torch.zeros_like(leaves[k]))
                  for k, g in zip(floats, grads)},
    }


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def unit_scores(*shape):
    return torch.rand(*shape, dtype=torch.float64) * 2 - 1   # cosine-like scores in [−1, 1]


def generate():
    torch.manual_seed(20240601)
    labels6 = torch.tensor([0, 1, 2, 0, 1, 2])
    labels8 = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3])  # class 3 has a single sample
    files = {}
    x1, x2 = randn(6, 4), randn(6, 4)
    sim = torch.tensor([1, 0, 1, 0, 0, 1])
    files["contrastive"] = [
        case("euclidean", contrastive, dict(x1=x1, x2=x2, similar=sim), dict(margin=2.5)),
        case("cosine", contrastive, dict(x1=x1, x2=x2, similar=sim),
             dict(margin=0.9, distance="cosine")),
    ]
    a, p, n = randn(5, 3), randn(5, 3), randn(5, 3)
    x = randn(8, 3)
    files["triplet"] = [
        case("explicit", triplet, dict(anchor=a, positive=p, negative=n), dict(margin=1.5)),
        case("explicit_squared", triplet, dict(anchor=a, positive=p, negative=n),
             dict(margin=2.0, squared=True)),
    ] + [
        case(f"{m}{'_squared' if sq else ''}", triplet_mined, dict(x=x, labels=labels8),
             dict(margin=1.0, squared=sq, mining=m))
        for m in ("batch_all", "batch_hard", "semi_hard") for sq in (False, True)
    ]
    files["lifted_structured"] = [
        case("margin1", lifted_structured, dict(x=x, labels=labels8), dict(margin=1.0)),
        case("margin3", lifted_structured, dict(x=randn(6, 4), labels=labels6), dict(margin=3.0)),
    ]
    files["nce"] = [
        case("k5", nce, dict(data_scores=randn(6), data_log_noise=randn(6) - 2,
                             noise_scores=randn(6, 5), noise_log_noise=randn(6, 5) - 2), {}),
        case("ratio", nce, dict(data_scores=randn(4), data_log_noise=randn(4),
                                noise_scores=randn(4, 3), noise_log_noise=randn(4, 3)),
             dict(noise_ratio=7.0)),
    ]
    q, k = randn(5, 4), randn(5, 4)
    files["info_nce"] = [
        case("scores", info_nce, dict(positive=unit_scores(6), negative=unit_scores(6, 7)),
             dict(temperature=0.2)),
        case("in_batch", info_nce_keys, dict(query=q, positive_key=k), dict(temperature=0.3)),
        case("queue", info_nce_keys, dict(query=q, positive_key=k, negative_keys=randn(9, 4)),
             dict(temperature=0.07)),
        case("paired", info_nce_keys, dict(query=q, positive_key=k, negative_keys=randn(5, 3, 4)),
             dict(temperature=0.5)),
        case("raw", info_nce_keys, dict(query=q, positive_key=k, negative_keys=randn(9, 4)),
             dict(temperature=2.0, normalize=False)),
    ]
    z1, z2 = randn(5, 4), randn(5, 4)
    files["nt_xent"] = [
        case("t05", nt_xent, dict(z1=z1, z2=z2), dict(temperature=0.5)),
        case("t01_bank", nt_xent, dict(z1=z1, z2=z2, memory_bank=randn(7, 4)),
             dict(temperature=0.1)),
        case("raw", nt_xent, dict(z1=z1 * 0.3, z2=z2 * 0.3), dict(temperature=0.8, normalize=False)),
    ]
    xs = randn(8, 3)
    files["soft_nearest_neighbors"] = [
        case("squared_t1", soft_nearest_neighbors, dict(x=xs, labels=labels8), dict(temperature=1.0)),
        case("euclidean_t03", soft_nearest_neighbors, dict(x=xs, labels=labels8),
             dict(temperature=0.3, distance="euclidean")),
        case("cosine_t01", soft_nearest_neighbors, dict(x=xs, labels=labels8),
             dict(temperature=0.1, distance="cosine")),
        case("optimized", soft_nearest_neighbors, dict(x=xs, labels=labels8),
             dict(optimize_temperature=True)),
    ]
    pos, neg = unit_scores(6), unit_scores(6, 8)
    files["debiased"] = [
        case("t05", debiased, dict(positive=pos, negative=neg), dict(temperature=0.5, tau_plus=0.1)),
        case("t02", debiased, dict(positive=pos, negative=neg), dict(temperature=0.2, tau_plus=0.3)),
        case("clamped", debiased, dict(positive=torch.full((3,), 0.9, dtype=torch.float64),
                                       negative=torch.full((3, 4), 0.2, dtype=torch.float64)),
             dict(temperature=0.5, tau_plus=0.5)),
    ]
    files["hard_negative"] = [
        case("beta1", hard_negative, dict(positive=pos, negative=neg),
             dict(temperature=0.5, tau_plus=0.1, beta=1.0)),
        case("beta05_t02", hard_negative, dict(positive=pos, negative=neg),
             dict(temperature=0.2, tau_plus=0.05, beta=0.5)),
        case("no_debias", hard_negative, dict(positive=pos, negative=neg),
             dict(temperature=0.5, tau_plus=0.0, beta=2.0)),
    ]
    f3 = randn(4, 2, 5)
    files["supcon"] = [
        case("labels", supcon, dict(features=randn(8, 5), labels=labels8),
             dict(temperature=0.1, base_temperature=0.07)),
        case("views_labels", supcon, dict(features=f3, labels=torch.tensor([0, 1, 0, 2])),
             dict(temperature=0.5, base_temperature=0.5)),
        case("views_unsupervised", supcon, dict(features=f3), dict(temperature=0.2,
                                                                   base_temperature=0.07)),
    ]
    files["barlow_twins"] = [
        case("default", barlow_twins, dict(z1=randn(6, 4), z2=randn(6, 4)), {}),
        case("lambda", barlow_twins, dict(z1=randn(5, 3), z2=randn(5, 3)), dict(lambd=0.5, eps=1e-3)),
    ]
    files["byol"] = [
        case("normalized_mse", byol, dict(prediction=randn(5, 4), target=randn(5, 4)), {}),
        case("negative_cosine", byol, dict(prediction=randn(5, 4), target=randn(5, 4)),
             dict(form="negative_cosine")),
    ]
    files["clip"] = [
        case("init", clip, dict(image=randn(5, 4), text=randn(5, 4),
                                log_scale=torch.tensor(math.log(1 / 0.07), dtype=torch.float64)), {}),
        case("clamped", clip, dict(image=randn(5, 4), text=randn(5, 4),
                                   log_scale=torch.tensor(5.0, dtype=torch.float64)),
             dict(max_scale=50.0)),
    ]
    protos = F.normalize(randn(6, 4), dim=1)
    emb = F.normalize(randn(3, 5, 4), dim=2)
    files["swav"] = [
        case("two_views", swav, dict(scores=emb[:2] @ protos.T), {}),
        case("three_views", swav, dict(scores=emb @ protos.T),
             dict(temperature=0.2, epsilon=0.1, sinkhorn_iterations=5, crops_for_assign=[0, 2])),
    ]
    return files


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for loss, cases in generate().items():
        path = os.path.join(OUT_DIR, f"{loss}.json")
        with open(path, "w") as f:
            json.dump({"generator": "scripts/loss_reference.py", "torch": torch.__version__,
                       "loss": loss, "cases": cases}, f, indent=None, separators=(",", ":"))
            f.write("\n")
        print(f"{path}: {len(cases)} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
