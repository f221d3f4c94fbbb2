"""softmax(x . W + b) for 8 features and 4 classes, in pure Python (no numpy: it runs in a stock
Pyodide without package wheels).

Replace WEIGHTS/BIAS (or read them from a file in this package, e.g. with
importlib.resources) and `predict` with your model. Build and measure it with
`cargo wasmpack-infer build . --pyodide npm:314.0.7`.
"""

import math

INPUTS, CLASSES = 8, 4

# Row-major [INPUTS x CLASSES].
WEIGHTS = [
    [0.50, -0.25, 0.10, 0.00],
    [-0.30, 0.40, 0.20, 0.10],
    [0.05, 0.15, -0.45, 0.30],
    [0.20, -0.10, 0.35, -0.20],
    [-0.15, 0.25, 0.05, 0.40],
    [0.30, 0.05, -0.20, 0.15],
    [0.10, -0.35, 0.25, 0.05],
    [-0.05, 0.20, 0.10, -0.30],
]
BIAS = [0.1, -0.1, 0.05, 0.0]


def predict(features):
    """8 features -> 4 class probabilities."""
    if len(features) != INPUTS:
        raise ValueError(f"expected {INPUTS} features, got {len(features)}")
    logits = list(BIAS)
    for x, row in zip(features, WEIGHTS):
        for j, w in enumerate(row):
            logits[j] += x * w
    top = max(logits)
    exps = [math.exp(v - top) for v in logits]
    total = sum(exps)
    return [e / total for e in exps]
