#!/usr/bin/env python3
"""Load a `contra export` file (safetensors) as a plain PyTorch module, without contra.

    import contra_torch
    model = contra_torch.load("encoder.safetensors")     # torch.nn.Module, eval mode
    features = model(x)                                   # what contra's features(x, kind) gives
    model(x, features="encoder")                          # another kind the file holds
    model.metadata, model.architecture                    # the file's metadata (see docs/export.md)

Needs only PyTorch (>= 1.13). The `safetensors` package is used when installed; otherwise the
format (8-byte little-endian header length, JSON header, raw little-endian tensor bytes) is read
with the standard library.

Command line:
    python3 contra_torch.py info EXPORT.safetensors
    python3 contra_torch.py check EXPORT.safetensors INPUT.safetensors EXPECTED.safetensors \
        [--tol 1e-5] [--features KIND]
`check` runs the module on INPUT's tensor "input" and compares with EXPECTED's tensor "output"
(prints the max abs difference; exit status 1 when it exceeds --tol).
"""
import argparse
import json
import math
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["read_safetensors", "write_safetensors", "build", "load", "ContraModel"]

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}
_NAMES = {v: k for k, v in _DTYPES.items()}


# ---- the file format ----------------------------------------------------------------------------

def read_safetensors(path):
    """(tensors: dict name -> tensor in file order, metadata: dict str -> str)."""
    try:
        from safetensors import safe_open  # noqa: F401  (optional)
    except ImportError:
        safe_open = None
    if safe_open is not None:
        with safe_open(path, framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: file too short for a safetensors header")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"{path}: header length {n} beyond the end of the file")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {}) or {}
    buffer = memoryview(data)[8 + n:]
    tensors = {}
    for name, e in sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"])):
        dtype = _DTYPES[e["dtype"]]
        begin, end = e["data_offsets"]
        if end == begin:
            t = torch.empty(e["shape"], dtype=dtype)
        else:
            t = torch.frombuffer(bytearray(buffer[begin:end]), dtype=dtype).reshape(e["shape"])
        tensors[name] = t
    return tensors, metadata


def _bytes(u8):
    try:
        return u8.numpy().tobytes()
    except (RuntimeError, ImportError):  # PyTorch without NumPy
        return bytes(u8.tolist())


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} (+ string metadata) in the safetensors layout."""
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        raw = _bytes(t.reshape(-1).view(torch.uint8)) if t.numel() else b""
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


# ---- image backbones (contra/nn/small_cnn, resnet) ----------------------------------------------

class SmallCnn(nn.Module):
    """3 x (3x3 conv, no bias -> BatchNorm -> ReLU), 2x2 max-pool after blocks 1-2, mean pool."""

    def __init__(self, in_channels, width, eps=1e-5):
        super().__init__()
        w = width
        self.conv1 = nn.Conv2d(in_channels, w, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w, eps=eps)
        self.conv2 = nn.Conv2d(w, 2 * w, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * w, eps=eps)
        self.conv3 = nn.Conv2d(2 * w, 4 * w, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * w, eps=eps)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = F.relu(self.bn3(self.conv3(x)))
        return x.mean((2, 3))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, eps=1e-5):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout, eps=eps)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=eps)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(cout, eps=eps))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ResNet18(nn.Module):
    """ResNet-18 with the CIFAR stem (3x3 conv stride 1, no max-pool), global average pool."""

    def __init__(self, in_channels, width, eps=1e-5):
        super().__init__()
        w = width
        self.conv1 = nn.Conv2d(in_channels, w, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w, eps=eps)

        def stage(cin, cout, stride):
            return nn.Sequential(BasicBlock(cin, cout, stride, eps), BasicBlock(cout, cout, 1, eps))

        self.layer1 = stage(w, w, 1)
        self.layer2 = stage(w, 2 * w, 2)
        self.layer3 = stage(2 * w, 4 * w, 2)
        self.layer4 = stage(4 * w, 8 * w, 2)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean((2, 3))


class ProjectionHead(nn.Module):
    """(Linear -> BatchNorm -> ReLU) x (layers - 1) -> Linear [-> BatchNorm without affine]."""

    def __init__(self, inp, hidden, out, layers, batch_norm, last_batch_norm, eps=1e-5):
        super().__init__()
        mods, cin = [], inp
        for _ in range(layers - 1):
            mods.append(nn.Linear(cin, hidden, bias=not batch_norm))
            if batch_norm:
                mods.append(nn.BatchNorm1d(hidden, eps=eps))
            mods.append(nn.ReLU())
            cin = hidden
        mods.append(nn.Linear(cin, out, bias=not last_batch_norm))
        if last_batch_norm:
            mods.append(nn.BatchNorm1d(out, eps=eps, affine=False))
        self.mlp = nn.Sequential(*mods)

    def forward(self, x):
        return self.mlp(x)


# ---- audio (contra/nn/conv_encoder, context_network) --------------------------------------------

class ConvEncoder(nn.Module):
    """CPC's strided Conv1d stack: (B, 1, S) -> (B, T, channels)."""

    def __init__(self, in_channels, channels, kernels, strides, paddings, norm, eps=1e-5,
                 precision="float32", **_):
        super().__init__()
        self.channels, self.strides, self.paddings = channels, list(strides), list(paddings)
        self.norm, self.eps, self.bf16 = norm, eps, precision == "bfloat16"
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        cin = in_channels
        for k, s, p in zip(kernels, strides, paddings):
            self.convs.append(nn.Conv1d(cin, channels, k, stride=s, padding=p))
            if norm == "batch":
                self.norms.append(nn.BatchNorm1d(channels, eps=eps))
            elif norm == "layer":
                self.norms.append(nn.LayerNorm(channels, eps=eps))
            cin = channels

    def forward(self, x):
        dtype = x.dtype

        def cast(t):
            return t.to(torch.bfloat16) if self.bf16 and t is not None else t

        x = cast(x)
        n = len(self.convs)
        for i, conv in enumerate(self.convs):
            x = F.conv1d(x, cast(conv.weight), cast(conv.bias), self.strides[i], self.paddings[i])
            if self.norm == "layer":
                ln = self.norms[i]
                x = F.layer_norm(x.transpose(1, 2), (self.channels,), cast(ln.weight),
                                 cast(ln.bias), self.eps)
                x = torch.relu(x)
                x = x.transpose(1, 2) if i + 1 < n else x
            else:
                if self.norm == "batch":
                    x = cast(self.norms[i](x.to(dtype)))
                x = torch.relu(x)
        x = x if self.norm == "layer" else x.transpose(1, 2)
        return x.to(dtype)


def sinusoidal_positions(length, dim, dtype):
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    i = torch.arange(0, dim, 2, dtype=torch.float32)
    angle = position * torch.exp(i * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)[:, : dim // 2]
    return pe.to(dtype)


class ContextNetwork(nn.Module):
    """CPC's autoregressive network: GRU, LSTM or causal Transformer; (B, T, D) -> (B, T, H)."""

    def __init__(self, kind, input_size, hidden_size, layers, heads=8, feedforward=1024,
                 dropout=0.0, layer_norm_eps=1e-5, **_):
        super().__init__()
        self.kind, self.hidden_size = kind, hidden_size
        if kind == "gru":
            self.gru = nn.GRU(input_size, hidden_size, num_layers=layers, batch_first=True)
        elif kind == "lstm":
            self.lstm = nn.LSTM(input_size, hidden_size, num_layers=layers, batch_first=True)
        elif kind == "transformer":
            self.input = nn.Linear(input_size, hidden_size)
            self.blocks = nn.ModuleList([
                nn.TransformerEncoderLayer(hidden_size, heads, dim_feedforward=feedforward,
                                           dropout=dropout, layer_norm_eps=layer_norm_eps)
                for _ in range(layers)])
        else:
            raise ValueError(f"context_network: unknown kind '{kind}'")

    def forward(self, z):
        if self.kind == "gru":
            return self.gru(z)[0]
        if self.kind == "lstm":
            return self.lstm(z)[0]
        length = z.size(1)
        x = self.input(z) + sinusoidal_positions(length, self.hidden_size, z.dtype)
        mask = torch.full((length, length), float("-inf"), dtype=z.dtype).triu(1)
        x = x.transpose(0, 1)
        for block in self.blocks:
            x = block(x, src_mask=mask)
        return x.transpose(0, 1)


# ---- CPC v2 on images (contra/nn/patch_encoder, masked_context) ---------------------------------

class PatchEncoder(nn.Module):
    def __init__(self, in_channels, width, norm, eps=1e-5):
        super().__init__()
        w = width
        self.conv1 = nn.Conv2d(in_channels, w, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(w, 2 * w, 3, padding=1, bias=False)
        self.conv3 = nn.Conv2d(2 * w, 4 * w, 3, padding=1, bias=False)
        for i, c in ((1, w), (2, 2 * w), (3, 4 * w)):
            if norm == "layer":
                setattr(self, f"norm{i}", nn.GroupNorm(1, c, eps=eps))
            elif norm == "batch":
                setattr(self, f"norm{i}", nn.BatchNorm2d(c, eps=eps))
            else:
                setattr(self, f"norm{i}", None)

    def forward(self, x):
        def block(y, norm):
            return torch.relu(norm(y) if norm is not None else y)

        x = F.max_pool2d(block(self.conv1(x), self.norm1), 2)
        x = F.max_pool2d(block(self.conv2(x), self.norm2), 2)
        x = block(self.conv3(x), self.norm3)
        return x.mean((2, 3))


class MaskedContext(nn.Module):
    def __init__(self, features, channels, blocks, kernel):
        super().__init__()
        d, ch, k = features, channels, kernel
        self.blocks, self.top = blocks, kernel // 2
        self.convs = nn.ModuleList()
        for _ in range(blocks):
            self.convs.append(nn.Conv2d(d, ch, 1))
            self.convs.append(nn.Conv2d(ch, ch, (1, k), padding=(0, k // 2)))
            self.convs.append(nn.Conv2d(ch, ch, (k // 2 + 1, 1)))
            self.convs.append(nn.Conv2d(ch, d, 1))

    def forward(self, z):
        x = z
        for b in range(self.blocks):
            c = self.convs[4 * b: 4 * b + 4]
            h = c[1](torch.relu(c[0](x)))
            h = c[2](F.pad(h, (0, 0, self.top, 0)))
            x = x + c[3](torch.relu(h))
        return torch.relu(x)


# ---- CLIP (contra/nn/transformer) ---------------------------------------------------------------

class ResidualAttentionBlock(nn.Module):
    def __init__(self, width, heads, mlp_ratio=4, eps=1e-5):
        super().__init__()
        self.width, self.heads = width, heads
        self.ln_1 = nn.LayerNorm(width, eps=eps)
        self.ln_2 = nn.LayerNorm(width, eps=eps)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.fc = nn.Linear(width, mlp_ratio * width)
        self.proj = nn.Linear(mlp_ratio * width, width)

    def forward(self, x, mask=None):
        n, length, dh = x.size(0), x.size(1), self.width // self.heads
        qkv = self.qkv(self.ln_1(x)).view(n, length, 3, self.heads, dh).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(dh)
        if mask is not None:
            scores = scores + mask.to(scores.dtype)
        attn = torch.matmul(scores.softmax(-1), v).transpose(1, 2).reshape(n, length, self.width)
        h = x + self.out(attn)
        return h + self.proj(F.gelu(self.fc(self.ln_2(h))))


class TransformerStack(nn.Module):
    def __init__(self, width, layers, heads, mlp_ratio=4, eps=1e-5):
        super().__init__()
        self.blocks = nn.ModuleList(
            [ResidualAttentionBlock(width, heads, mlp_ratio, eps) for _ in range(layers)])

    def forward(self, x, mask=None):
        for b in self.blocks:
            x = b(x, mask)
        return x


class TextEncoder(nn.Module):
    """(N, L) int64 tokens -> (N, embed_dim), pooled at the first EOT (else the last position)."""

    def __init__(self, vocab_size, context_length, width, layers, heads, embed_dim, eot_id,
                 mlp_ratio=4, layer_norm_eps=1e-5, **_):
        super().__init__()
        self.eot_id = eot_id
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, width))
        self.transformer = TransformerStack(width, layers, heads, mlp_ratio, layer_norm_eps)
        self.ln_final = nn.LayerNorm(width, eps=layer_norm_eps)
        self.text_projection = nn.Parameter(torch.empty(width, embed_dim))

    def forward(self, tokens):
        length = tokens.size(1)
        x = self.token_embedding(tokens) + self.positional_embedding[:length]
        mask = torch.full((length, length), float("-inf")).triu(1)
        x = self.ln_final(self.transformer(x, mask))
        positions = torch.arange(length).expand_as(tokens)
        candidates = torch.where(tokens == self.eot_id, positions, torch.full_like(positions, length))
        eot = candidates.min(1)[0].clamp_max(length - 1)
        return torch.matmul(x[torch.arange(tokens.size(0)), eot], self.text_projection)


class VisionTransformer(nn.Module):
    def __init__(self, image_size, patch_size, in_channels, width, layers, heads, embed_dim,
                 mlp_ratio=4, layer_norm_eps=1e-5, **_):
        super().__init__()
        grid = image_size // patch_size
        self.conv1 = nn.Conv2d(in_channels, width, patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.empty(width))
        self.positional_embedding = nn.Parameter(torch.empty(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width, eps=layer_norm_eps)
        self.transformer = TransformerStack(width, layers, heads, mlp_ratio, layer_norm_eps)
        self.ln_post = nn.LayerNorm(width, eps=layer_norm_eps)
        self.proj = nn.Parameter(torch.empty(width, embed_dim))

    def pooled(self, images):
        x = self.conv1(images).flatten(2).transpose(1, 2)
        cls = self.class_embedding.view(1, 1, -1).expand(x.size(0), 1, x.size(2))
        x = torch.cat([cls, x], 1) + self.positional_embedding
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0])

    def forward(self, images):
        return torch.matmul(self.pooled(images), self.proj)


# ---- the exported model -------------------------------------------------------------------------

def _module(spec):
    s = dict(spec)
    kind = s.pop("type")
    if kind == "small_cnn":
        return SmallCnn(s["in_channels"], s["width"], s.get("eps", 1e-5))
    if kind == "resnet18":
        return ResNet18(s["in_channels"], s["width"], s.get("eps", 1e-5))
    if kind == "conv_encoder":
        return ConvEncoder(**s)
    if kind == "context_network":
        return ContextNetwork(**s)
    if kind == "patch_encoder":
        return PatchEncoder(s["in_channels"], s["width"], s["norm"], s.get("eps", 1e-5))
    if kind == "masked_context":
        return MaskedContext(s["features"], s["channels"], s["blocks"], s["kernel"])
    if kind == "vision_transformer":
        return VisionTransformer(**s)
    if kind == "text_encoder":
        return TextEncoder(**s)
    if kind == "projection_head":
        return ProjectionHead(s["in"], s["hidden"], s["out"], s["layers"], s["batch_norm"],
                              s["last_batch_norm"], s.get("eps", 1e-5))
    if kind == "linear":
        return nn.Linear(s["in_features"], s["out_features"], bias=s["bias"])
    raise ValueError(f"unknown module type '{kind}' (a newer contra export?)")


class ContraModel(nn.Module):
    """The modules of an export under their file names; forward(x, features) = contra's features."""

    def __init__(self, architecture, metadata=None, extra_buffers=None):
        super().__init__()
        self.architecture = architecture
        self.metadata = dict(metadata or {})
        self.family = architecture["family"]
        self.kinds = list(architecture["kinds"])
        self.features = self.metadata.get("features", self.kinds[0])
        for name, spec in architecture["modules"].items():
            self.add_module(name, _module(spec))
        for name, (shape, dtype) in (extra_buffers or {}).items():
            self.register_buffer(name, torch.empty(shape, dtype=dtype))
        if self.family == "cpc_image":
            self.patch_size = architecture["patch_size"]
            self.patch_stride = architecture["patch_stride"]

    # CLIP's pieces, by name as in contra::method::Clip.
    def image_features(self, images):
        return self.vit.pooled(images) if hasattr(self, "vit") else self.cnn(images)

    def encode_image(self, images):
        if hasattr(self, "vit"):
            return self.vit(images)
        return self.image_projection(self.cnn(images))

    def encode_text(self, tokens):
        return self.text(tokens)

    def audio_features(self, audio):
        z = self.audio_encoder(audio).float()
        if hasattr(self, "audio_context"):
            z = self.audio_context(z)
        return z.mean(1)

    def encode_audio(self, audio):
        return self.audio_projection(self.audio_features(audio))

    def tokenize(self, captions):
        """Captions -> (N, context_length) int64, as contra's tokeniser (needs `sentencepiece`)."""
        import sentencepiece as spm
        tok = json.loads(self.metadata["tokenizer"])
        sp = spm.SentencePieceProcessor(model_proto=bytes(self.tokenizer_model.tolist()))
        length = tok["context_length"]
        out = torch.zeros(len(captions), length, dtype=torch.int64)
        for i, c in enumerate(captions):
            ids = [tok["sot_id"]] + sp.encode(c)[: length - 2] + [tok["eot_id"]]
            out[i, : len(ids)] = torch.tensor(ids)
        return out

    def forward(self, x, features=None):
        kind = features or self.features
        if kind not in self.kinds:
            raise ValueError(f"{self.family}: this export computes {self.kinds}, not '{kind}'")
        fam = self.family
        if fam == "image":
            h = self.encoder(x)
            if kind not in ("projection", "embedding"):
                return h
            z = self.projection(h)
            post = self.architecture.get("projection_output", "none")
            if post == "l2_normalize":
                return F.normalize(z, dim=1)
            return torch.relu(z) if post == "relu" else z
        if fam == "cpc_audio":
            z = self.encoder(x)
            return z if kind == "encoder" else self.context(z)
        if fam == "cpc_image":
            p, s = self.patch_size, self.patch_stride
            patches = x.unfold(2, p, s).unfold(3, p, s).permute(0, 2, 3, 1, 4, 5)
            b, gh, gw = patches.shape[:3]
            z = self.encoder(patches.reshape(b * gh * gw, x.size(1), p, p))
            z = z.view(b, gh, gw, z.size(1)).permute(0, 3, 1, 2)
            if kind == "grid":
                return z.flatten(1)
            return (z if kind == "encoder" else self.context(z)).mean((2, 3))
        if fam in ("clip", "clip_audio"):
            if kind == "image":
                return self.image_features(x)
            if kind == "image_embedding":
                return F.normalize(self.encode_image(x), dim=1)
            if kind == "text_embedding":
                return F.normalize(self.encode_text(x), dim=1)
            if kind == "audio":
                return self.audio_features(x)
            if kind == "audio_embedding":
                return F.normalize(self.encode_audio(x), dim=1)
        raise ValueError(f"unknown family '{fam}'")


def build(tensors, metadata):
    """The model for a file's (tensors, metadata), weights loaded strictly, in eval mode."""
    if "architecture" not in metadata:
        raise ValueError("not a contra export: no 'architecture' in the metadata")
    architecture = json.loads(metadata["architecture"])
    # CLIP's SentencePiece model bytes travel as a uint8 buffer.
    extra = {k: (tuple(tensors[k].shape), tensors[k].dtype) for k in ("tokenizer_model",)
             if k in tensors}
    model = ContraModel(architecture, metadata, extra)
    model.load_state_dict(tensors, strict=True)
    return model.eval()


def load(path):
    """torch.nn.Module of a `contra export` file (eval mode, weights loaded with strict=True)."""
    tensors, metadata = read_safetensors(path)
    return build(tensors, metadata)


# ---- command line -------------------------------------------------------------------------------

def _single(path, name):
    tensors, _ = read_safetensors(path)
    if name in tensors:
        return tensors[name]
    if len(tensors) == 1:
        return next(iter(tensors.values()))
    raise SystemExit(f"{path}: no tensor '{name}' (has {', '.join(tensors)})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="print the metadata and the tensors of an export")
    info.add_argument("export")
    check = sub.add_parser("check", help="run the module on INPUT, compare with EXPECTED")
    check.add_argument("export")
    check.add_argument("input")
    check.add_argument("expected")
    check.add_argument("--tol", type=float, default=1e-5)
    check.add_argument("--features", default=None)
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    if args.command == "info":
        tensors, metadata = read_safetensors(args.export)
        for k, v in metadata.items():
            if k == "architecture":
                v = json.dumps(json.loads(v), indent=2)
            print(f"{k}: {v}")
        for k, t in tensors.items():
            print(f"  {k} {str(t.dtype).replace('torch.', '')} {list(t.shape)}")
        model = build(tensors, metadata)
        print(f"module: {type(model).__name__}, kinds {model.kinds}, default '{model.features}'")
        return 0
    model = load(args.export)
    x = _single(args.input, "input")
    expected = _single(args.expected, "output")
    got = model(x, args.features)
    if tuple(got.shape) != tuple(expected.shape):
        print(f"shape mismatch: PyTorch {tuple(got.shape)} vs contra {tuple(expected.shape)}")
        return 1
    diff = (got.double() - expected.double()).abs().max().item() if got.numel() else 0.0
    ok = diff <= args.tol
    print(f"{model.metadata.get('method', '?')} {args.features or model.features}: "
          f"output {tuple(got.shape)}, max abs diff {diff:.3g} ({'ok' if ok else 'FAIL'}, "
          f"tol {args.tol:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
