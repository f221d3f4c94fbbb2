"""Times a kernel bundle through its own loader.py, as a Python host runs it (`measure
--python-host`): load, first inference, steady latency per batch, and each call's copies in and
out of linear memory apart from `wpi_infer`. Writes raw timings (µs) and every sample's outputs
as JSON to OUT; the tool computes the statistics. Node's twin is measure.mjs.

    python measure.py BUNDLE SPEC.json OUT.json
"""

import base64
import importlib.metadata
import json
import platform
import sys
import time

bundle, spec_path, out_path = sys.argv[1], sys.argv[2], sys.argv[3]
with open(spec_path) as spec_file:
    spec = json.load(spec_file)
sys.path.insert(0, bundle)
import loader  # noqa: E402  (the bundle's own, found through sys.path)

try:
    import numpy
except ImportError:
    numpy = None

clock = time.perf_counter_ns
samples = open(spec["samples"], "rb").read()
count, sample_bytes = spec["count"], len(samples) // spec["count"]


def batch_of(size):
    """`size` samples, the bundle's repeated as needed, in the form a host would pass."""
    raw = (samples * (size // count + 1))[: size * sample_bytes]
    if numpy is not None:
        return numpy.frombuffer(raw, dtype=loader._DTYPES[loader.manifest["input"]["dtype"]][1])
    return raw


def us(nanoseconds):
    return nanoseconds / 1000.0


loads, firsts = [], []
for _ in range(spec["loads"]):
    started = clock()
    model = loader.load(bundle, time_limit=spec["call_time_limit"])
    loaded = clock()
    model.infer(batch_of(1))
    firsts.append(us(clock() - loaded))
    loads.append(us(loaded - started))

steady = []
for size in spec["batches"]:
    batch = batch_of(size)
    for _ in range(spec["warmup_runs"]):
        model.infer(batch)
    calls = []
    budget_end = clock() + int(spec["steady_budget_s"] * 1e9)
    while len(calls) < spec["max_runs"] and (
        len(calls) < spec["min_runs"] or clock() < budget_end
    ):
        started = clock()
        model.infer(batch)
        calls.append(us(clock() - started))
    parts = {"upload_us": [], "compute_us": [], "download_us": []}
    for _ in range(min(50, max(3, len(calls) // 4))):
        t0 = clock()
        data, as_numpy = model._bytes_of(batch)
        rows, out_bytes = model._copy_in(data)
        t1 = clock()
        model._compute(len(data), out_bytes)
        t2 = clock()
        model._copy_out(rows, out_bytes, as_numpy)
        t3 = clock()
        parts["upload_us"].append(us(t1 - t0))
        parts["compute_us"].append(us(t2 - t1))
        parts["download_us"].append(us(t3 - t2))
    steady.append({"batch": size, "call_us": calls, **parts})

outputs = model.infer(samples)
with open(out_path, "w") as out:
    json.dump(
        {
            "runtime": "wasmtime-py {}, CPython {}, {} arrays".format(
                importlib.metadata.version("wasmtime"),
                platform.python_version(),
                "NumPy" if numpy is not None else "array.array",
            ),
            "variant": model.variant,
            "load_us": loads,
            "first_inference_us": firsts,
            "steady": steady,
            "outputs": base64.b64encode(outputs.tobytes()).decode(),
        },
        out,
    )
