"""Runs a kernel bundle's loader.py on raw f32 samples with every variant, through NumPy and
through array.array, and prints the argmax labels and what the loader picked, as JSON.

    python run_loader.py BUNDLE SAMPLES.bin
"""

import array
import json
import sys

bundle, samples = sys.argv[1], sys.argv[2]
sys.path.insert(0, bundle)
import loader  # noqa: E402  (the bundle's, found through sys.path)
import numpy  # noqa: E402

raw = open(samples, "rb").read()
report = {"best": loader.best_variant(), "loaded": loader.load().variant, "variants": {}}
for variant in loader.manifest["variants"]:
    model = loader.load(bundle, variant=variant["level"])
    batch = numpy.frombuffer(raw, dtype=numpy.float32).reshape(-1, *model.input_shape)
    through_numpy = model.infer(batch)
    through_array = model.infer(array.array("f", raw))
    report["variants"][variant["level"]] = {
        "labels": through_numpy.reshape(len(batch), -1).argmax(axis=1).tolist(),
        "shape": list(through_numpy.shape),
        "array_agrees": through_array.tobytes() == through_numpy.tobytes(),
    }
try:
    model.infer(batch.astype(numpy.float64))
except TypeError as error:
    report["wrong_dtype"] = str(error)
print(json.dumps(report))
