#!/usr/bin/python3
"""Reference MFCC values for tests/transforms/mfcc_test.cpp, computed independently of contra and of
torch's FFT: numpy with an explicit DFT matrix, explicit triangle loops and an explicit DCT sum.

Conventions (contra::transforms::mfcc): 16 kHz, 25 ms periodic Hann window, 10 ms hop, frame t centred
on sample t*160 + 80 (zero outside the signal), T = floor(S / 160), pre-emphasis 0.97, 512-point power
spectrum, 40 HTK mel triangles 0..8000 Hz, natural log floored at 1e-10, orthonormal DCT-II, 13
coefficients, deltas (width 2, edges replicated) and delta-deltas -> (T, 39).

Signal (deterministic, no RNG): x[n] = 0.5 sin(2π·440 n/16000) + 0.3 sin(2π·1234.5 n/16000 + 0.3)
+ 0.1 sin(1e-4 n²), n = 0..S-1, S = 1680 (10 frames), rounded to float32 as the C++ test feeds it
(pure tones leave bands ~100 dB down where float32 input rounding alone moves cepstra by ~1e-3).

Usage: /usr/bin/python3 scripts/mfcc_reference.py > tests/data/transforms/mfcc_reference.json
"""
import json
import math

import numpy as np

SR, WIN, HOP, NFFT, NMELS, NMFCC, PRE, S = 16000, 400, 160, 512, 40, 13, 0.97, 1680


def signal():
    n = np.arange(S, dtype=np.float64)
    return (0.5 * np.sin(2 * math.pi * 440 * n / SR) + 0.3 * np.sin(2 * math.pi * 1234.5 * n / SR + 0.3)
            + 0.1 * np.sin(1e-4 * n * n))


def mel(f):
    return 2595.0 * math.log10(1.0 + f / 700.0)


def inv_mel(m):
    return 700.0 * (10 ** (m / 2595.0) - 1.0)


def main():
    x = signal().astype(np.float32).astype(np.float64)  # the test feeds the float32 signal
    y = x.copy()
    y[1:] = x[1:] - PRE * x[:-1]
    T = S // HOP
    window = np.array([0.5 - 0.5 * math.cos(2 * math.pi * i / WIN) for i in range(WIN)])
    bins = NFFT // 2 + 1
    dft = np.array([[np.exp(-2j * math.pi * k * i / NFFT) for i in range(WIN)] for k in range(bins)])
    points = [inv_mel(mel(0) + (mel(SR / 2) - mel(0)) * i / (NMELS + 1)) for i in range(NMELS + 2)]
    fb = np.zeros((bins, NMELS))
    for m in range(NMELS):
        lo, c, hi = points[m], points[m + 1], points[m + 2]
        for k in range(bins):
            f = k * SR / NFFT
            fb[k, m] = max(0.0, min((f - lo) / (c - lo), (hi - f) / (hi - c)))
    ceps = np.zeros((T, NMFCC))
    for t in range(T):
        start = t * HOP + HOP // 2 - WIN // 2
        frame = np.array([y[start + i] if 0 <= start + i < S else 0.0 for i in range(WIN)])
        power = np.abs(dft @ (frame * window)) ** 2
        logmel = np.log(np.maximum(power @ fb, 1e-10))
        for k in range(NMFCC):
            scale = math.sqrt(1.0 / NMELS) if k == 0 else math.sqrt(2.0 / NMELS)
            ceps[t, k] = scale * sum(logmel[n] * math.cos(math.pi * k * (2 * n + 1) / (2 * NMELS))
                                     for n in range(NMELS))

    def delta(c, width=2):
        out = np.zeros_like(c)
        denom = 2 * sum(n * n for n in range(1, width + 1))
        for t in range(len(c)):
            for n in range(1, width + 1):
                out[t] += n * (c[min(t + n, len(c) - 1)] - c[max(t - n, 0)])
        return out / denom

    d = delta(ceps)
    feats = np.concatenate([ceps, d, delta(d)], axis=1)
    print(json.dumps({"script": "scripts/mfcc_reference.py", "samples": S, "frames": T,
                      "features": [[round(float(v), 6) for v in row] for row in feats]}))


if __name__ == "__main__":
    main()
