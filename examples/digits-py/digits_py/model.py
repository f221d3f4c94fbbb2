"""Pure-Python inference (no numpy), so it runs in a stock Pyodide without package wheels.

The weights are the Rust example's `model/weights.bin`: little-endian f32
`W1[64x32] b1[32] W2[32x10] b2[10]`. Arithmetic is in Python floats (f64), so logits differ from
the f32 kernel by ~1e-6; the predicted labels are the same on every held-out sample.
"""

import struct
from importlib import resources

INPUTS, HIDDEN, CLASSES = 64, 32, 10


def _load():
    raw = resources.files(__package__).joinpath("weights.bin").read_bytes()
    values = struct.unpack(f"<{len(raw) // 4}f", raw)
    sizes = [INPUTS * HIDDEN, HIDDEN, HIDDEN * CLASSES, CLASSES]
    if len(values) != sum(sizes):
        raise ValueError(f"weights.bin holds {len(values)} floats, expected {sum(sizes)}")
    offsets = [0]
    for size in sizes:
        offsets.append(offsets[-1] + size)
    w1, b1, w2, b2 = (values[a:b] for a, b in zip(offsets, offsets[1:]))
    # Row-major [inputs x outputs], as the Rust kernel stores them.
    rows1 = [w1[i * HIDDEN:(i + 1) * HIDDEN] for i in range(INPUTS)]
    rows2 = [w2[i * CLASSES:(i + 1) * CLASSES] for i in range(HIDDEN)]
    return rows1, b1, rows2, b2


_W1, _B1, _W2, _B2 = _load()


def _dense(x, rows, bias):
    y = list(bias)
    for xi, row in zip(x, rows):
        if xi:
            for j, w in enumerate(row):
                y[j] += xi * w
    return y


def predict(pixels):
    """64 pixels in [0, 1] -> 10 logits, one per digit."""
    if len(pixels) != INPUTS:
        raise ValueError(f"expected {INPUTS} pixels, got {len(pixels)}")
    hidden = [max(v, 0.0) for v in _dense(pixels, _W1, _B1)]
    return _dense(hidden, _W2, _B2)
