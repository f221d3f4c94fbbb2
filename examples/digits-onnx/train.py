"""Train a 64-256-128-10 MLP on the digits, export it to ONNX, and write held-out samples with
ONNX Runtime's outputs on them.

Uses the 8x8 handwritten digits data set that scikit-learn ships (no download). Outputs:
  model/digits.onnx       the MLPClassifier exported by skl2onnx: probabilities only (no ZipMap),
                          a symbolic batch dimension, f32 input [N, 64]
  samples/inputs.bin      f32 little-endian: the held-out samples, 64 pixels each in [0, 1]
  samples/labels.bin      u8: the true label of each
  samples/onnxruntime.bin f32 little-endian: ONNX Runtime's probabilities for each sample [N, 10],
                          the reference both variants of the kernel must reproduce
  model/training.json     data set, split, seed, test accuracy, versions
Run: python3 train.py   (pip install scikit-learn skl2onnx onnx onnxruntime)
"""
import json
import pathlib

import numpy as np
import onnx
import onnxruntime
import skl2onnx
import sklearn
from skl2onnx import to_onnx
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
    hidden_layer_sizes=(256, 128), activation="relu", alpha=1e-3, max_iter=2000, random_state=SEED
)
model.fit(x_train, y_train)

# Probabilities as a plain tensor (no ZipMap), the batch dimension left symbolic.
onnx_model = to_onnx(
    model,
    x_train[:1],
    options={id(model): {"zipmap": False}},
    target_opset=17,
)
onnx.checker.check_model(onnx_model)
(HERE / "model").mkdir(exist_ok=True)
(HERE / "samples").mkdir(exist_ok=True)
(HERE / "model/digits.onnx").write_bytes(onnx_model.SerializeToString())

session = onnxruntime.InferenceSession(
    str(HERE / "model/digits.onnx"), providers=["CPUExecutionProvider"]
)
outputs = {o.name: i for i, o in enumerate(session.get_outputs())}
probabilities = session.run(None, {session.get_inputs()[0].name: x_test})[outputs["probabilities"]]
probabilities = probabilities.astype("<f4")
accuracy = float((probabilities.argmax(axis=1) == y_test).mean())

(HERE / "samples/inputs.bin").write_bytes(x_test.astype("<f4").tobytes())
(HERE / "samples/labels.bin").write_bytes(y_test.tobytes())
(HERE / "samples/onnxruntime.bin").write_bytes(probabilities.tobytes())
(HERE / "model/training.json").write_text(
    json.dumps(
        {
            "dataset": "sklearn.datasets.load_digits",
            "layers": [64, 256, 128, 10],
            "train_samples": int(len(x_train)),
            "test_samples": int(len(x_test)),
            "seed": SEED,
            "test_accuracy": round(accuracy, 4),
            "onnx_inputs": [(i.name, i.shape, i.type) for i in session.get_inputs()],
            "onnx_outputs": [(o.name, o.shape, o.type) for o in session.get_outputs()],
            "versions": {
                "scikit-learn": sklearn.__version__,
                "skl2onnx": skl2onnx.__version__,
                "onnx": onnx.__version__,
                "onnxruntime": onnxruntime.__version__,
            },
        },
        indent=2,
    )
    + "\n"
)
print(f"test accuracy {accuracy:.4f} on {len(x_test)} held-out samples")
