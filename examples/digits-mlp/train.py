"""Train the digits MLP (64-32-10, ReLU) and write its weights and held-out samples.

Uses the 8x8 handwritten digits data set that scikit-learn ships (no download).
Outputs, all little-endian:
  model/weights.bin     f32: W1 [64x32] row-major, b1 [32], W2 [32x10], b2 [10]
  samples/inputs.bin    f32: held-out samples, 64 pixels each, scaled to [0, 1]
  samples/labels.bin    u8:  true label of each held-out sample
  samples/expected.bin  u8:  the label this trained model predicts (what the kernel must reproduce)
Run: python3 train.py   (needs scikit-learn and numpy)
"""
import json
import pathlib

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

HERE = pathlib.Path(__file__).resolve().parent
SEED = 7

digits = load_digits()
x = (digits.data / 16.0).astype(np.float32)
y = digits.target.astype(np.uint8)
x_train, x_test, y_train, y_test = train_test_split(
    x, y, test_size=0.2, random_state=SEED, stratify=y
)

model = MLPClassifier(
    hidden_layer_sizes=(32,), activation="relu", alpha=1e-3, max_iter=2000, random_state=SEED
)
model.fit(x_train, y_train)

w1, w2 = (w.astype("<f4") for w in model.coefs_)
b1, b2 = (b.astype("<f4") for b in model.intercepts_)
assert w1.shape == (64, 32) and w2.shape == (32, 10)

# Predict exactly as the kernel computes it (f32 math), so expected labels match the kernel.
hidden = np.maximum(x_test @ w1 + b1, 0.0)
logits = hidden @ w2 + b2
expected = logits.argmax(axis=1).astype(np.uint8)
accuracy = float((expected == y_test).mean())

(HERE / "model").mkdir(exist_ok=True)
(HERE / "samples").mkdir(exist_ok=True)
(HERE / "model/weights.bin").write_bytes(b"".join(a.tobytes() for a in (w1, b1, w2, b2)))
(HERE / "samples/inputs.bin").write_bytes(x_test.astype("<f4").tobytes())
(HERE / "samples/labels.bin").write_bytes(y_test.tobytes())
(HERE / "samples/expected.bin").write_bytes(expected.tobytes())
(HERE / "model/training.json").write_text(
    json.dumps(
        {
            "dataset": "sklearn.datasets.load_digits",
            "train_samples": int(len(x_train)),
            "test_samples": int(len(x_test)),
            "seed": SEED,
            "test_accuracy": round(accuracy, 4),
        },
        indent=2,
    )
    + "\n"
)
print(f"test accuracy {accuracy:.4f} on {len(x_test)} held-out samples")
