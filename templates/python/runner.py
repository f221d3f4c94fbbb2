"""Runs a Python project's entry in a native CPython for cargo-wasmpack-infer.

    python3 runner.py CONFIG.json

CONFIG: { paths (put first on sys.path), entry ("module:function"), samples (JSON array), passes,
watch (top-level modules to report if imported), out }. Writes the same
result shape as templates/pyodide/runner.mjs: import, first inference and steady per-sample
latency, and every sample's output.
"""

import importlib
import json
import sys
import time

with open(sys.argv[1], encoding="utf-8") as f:
    config = json.load(f)
sys.path[:0] = config["paths"]

start = time.perf_counter()
module_name, function_name = config["entry"].split(":")
entry = getattr(importlib.import_module(module_name), function_name)
import_ms = (time.perf_counter() - start) * 1e3

with open(config["samples"], encoding="utf-8") as f:
    samples = json.load(f)

start = time.perf_counter()
outputs = [entry(samples[0])]
first_inference_ms = (time.perf_counter() - start) * 1e3
outputs.extend(entry(sample) for sample in samples[1:])

steady_us = []
for _ in range(config.get("passes", 1)):
    for sample in samples:
        start = time.perf_counter()
        entry(sample)
        steady_us.append((time.perf_counter() - start) * 1e6)

with open(config["out"], "w", encoding="utf-8") as f:
    json.dump(
        {
            "bootMs": 0.0,
            "importMs": import_ms,
            "firstInferenceMs": first_inference_ms,
            "steadyUs": steady_us,
            "outputs": outputs,
            "python": sys.version.split()[0],
            "imported": sorted(name for name in config.get("watch", []) if name in sys.modules),
        },
        f,
    )
