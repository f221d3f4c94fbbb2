"""Runs a Python project's entry in a native CPython for cargo-wasmpack-infer.

    python3 runner.py CONFIG.json

CONFIG: { paths (put first on sys.path), entry ("module:function"), samples (JSON array), passes,
watch (top-level modules to report if imported), out }. Writes the same
result shape as templates/pyodide/runner.mjs: import, first inference and steady per-sample
latency, and every sample's output; then where the time goes, from one more pass under cProfile.
"""

import cProfile
import importlib
import json
import pstats
import sys
import time
import traceback

with open(sys.argv[1], encoding="utf-8") as f:
    config = json.load(f)
sys.path[:0] = config["paths"]



def app_failed(stage, sample, message):
    """The app failed (importing the entry, on a sample, or with an output JSON cannot hold):
    written for the build to report as the project's error."""
    with open(config["out"] + ".app-error.json", "w", encoding="utf-8") as f:
        json.dump({"stage": stage, "sample": sample, "message": message}, f)
    sys.exit(1)


def app_raised(stage, sample, error):
    """The app's own code raised: reported with the traceback from the app's frames on."""
    frames = error.__traceback__.tb_next
    app_failed(stage, sample, "".join(traceback.format_exception(type(error), error, frames)))


start = time.perf_counter()
module_name, function_name = config["entry"].split(":")
try:
    entry = getattr(importlib.import_module(module_name), function_name)
except Exception as error:
    app_raised("import", None, error)
import_ms = (time.perf_counter() - start) * 1e3

with open(config["samples"], encoding="utf-8") as f:
    samples = json.load(f)

outputs = []
for index, sample in enumerate(samples):
    start = time.perf_counter()
    try:
        outputs.append(entry(sample))
    except Exception as error:
        app_raised("sample", index, error)
    if index == 0:
        first_inference_ms = (time.perf_counter() - start) * 1e3
    try:
        json.dumps(outputs[index], allow_nan=False)
    except (TypeError, ValueError) as error:
        app_failed("output", index, f"what json.dumps refused ({type(error).__name__}: {error})")

steady_us = []
for _ in range(config.get("passes", 1)):
    for sample in samples:
        start = time.perf_counter()
        entry(sample)
        steady_us.append((time.perf_counter() - start) * 1e6)



def attribution():
    """Self time of one pass over the samples, split into Python-level code and C (builtins and
    compiled extensions), plus what a host pays at the boundary: each sample's JSON decoded into
    Python objects and the result encoded back (the samples arrive as JSON). Shares of the total;
    the hottest functions by self time. cProfile slows Python-level calls more than C ones, so
    the Python share is an upper bound."""
    encoded = [json.dumps(sample) for sample in samples]
    profiler = cProfile.Profile()
    boundary = 0.0
    for text in encoded:
        start = time.perf_counter()
        sample = json.loads(text)
        boundary += time.perf_counter() - start
        profiler.enable()
        output = entry(sample)
        profiler.disable()
        start = time.perf_counter()
        json.dumps(output)
        boundary += time.perf_counter() - start
    python_s, c_s, functions = 0.0, 0.0, []
    for (filename, line, name), (_, _, self_s, _, _) in pstats.Stats(profiler).stats.items():
        if filename == "~":
            if name == "<method 'disable' of '_lsprof.Profiler' objects>":
                continue
            c_s += self_s
            functions.append((self_s, name))
        else:
            python_s += self_s
            functions.append((self_s, f"{name} ({filename.rsplit('/', 1)[-1]}:{line})"))
    total = python_s + c_s + boundary
    share = lambda part: part / total if total > 0 else 0.0
    functions.sort(reverse=True)
    return {
        "calls": len(samples),
        "pythonShare": share(python_s),
        "cShare": share(c_s),
        "boundaryShare": share(boundary),
        "hottest": [{"function": name, "share": share(self_s)} for self_s, name in functions[:5]],
    }


profile = attribution()
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
            "attribution": profile,
        },
        f,
    )
