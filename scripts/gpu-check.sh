#!/usr/bin/env bash
# Builds (or re-measures) both examples on a machine with an NVIDIA GPU and checks that the native
# sibling ran on CUDA with WASM parity, printing the batch sweep. Exit 0 only when CUDA ran and
# every parity check passed.
#
#   scripts/gpu-check.sh            build with the tool from this checkout (needs cargo)
#   scripts/gpu-check.sh --prebuilt re-measure bundles already in $DIST (built elsewhere with the
#                                   cuda feature: the library loads CUDA at run time)
#
# Environment: WPI (the tool binary; default: cargo run --release), DIST (default: dist-gpu),
# BATCHES (default: 1,16,256,4096).
set -euo pipefail
cd "$(dirname "$0")/.."

DIST=${DIST:-dist-gpu}
BATCHES=${BATCHES:-1,16,256,4096}
mode=${1:-build}

if [[ -z ${WPI:-} ]]; then
  cargo build --release --locked --quiet
  WPI="${CARGO_TARGET_DIR:-target}/release/cargo-wasmpack-infer"
fi

mkdir -p "$DIST"
# cuBLAS and NVRTC are often outside the loader's default path: in the toolkit's lib64 or in
# pip's nvidia-* wheels. Add the first folder holding each one the loader cannot find.
for lib in libcuda.so.1 libcublas.so libnvrtc.so; do
  if ! ldconfig -p | grep "$lib" >/dev/null; then
    found=$(find /usr/local/cuda/ /usr/local/nvidia/ /usr/lib/ /opt/ -name "$lib*" -not -path '*/stubs/*' -print -quit 2>/dev/null || true)
    if [[ -n $found ]]; then
      export LD_LIBRARY_PATH="$(dirname "$found")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
  fi
done
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
echo "== driver and device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi not available"

status=0
for example in digits-mlp mlp-large; do
  echo "== $example"
  if [[ $mode == --prebuilt ]]; then
    bundle=$(ls -d "$DIST/$example"-*/ 2>/dev/null | head -n 1)
    "$WPI" measure "$bundle" --batches "$BATCHES" >"$DIST/$example.txt" || status=$?
    manifest="${bundle}manifest.json"
  else
    "$WPI" build "examples/$example" --out-dir "$DIST" --batches "$BATCHES" >"$DIST/$example.txt" || status=$?
    manifest=$(ls -d "$DIST/$example"-*/ 2>/dev/null | head -n 1)manifest.json
  fi
  if [[ ! -f $manifest ]]; then
    echo "no bundle for $example"
    status=1
    continue
  fi
  cat "$DIST/$example.txt"
  python3 - "$manifest" <<'PY' || status=1
import json, sys
manifest = json.load(open(sys.argv[1]))
cuda = manifest["timings"]["cuda"]
print(f"accelerator: {cuda['accelerator']}  device: {cuda['device']}")
if cuda["accelerator"] != "cuda":
    sys.exit(f"CUDA did not run: {cuda['reason']}")
parity = cuda["parity"]
print(f"parity vs wasm on CUDA: passed={parity['passed']} argmax {parity['argmax_agree']}/{parity['samples']} max|diff| {parity['max_abs_diff']:.3e}")
print(f"{'batch':>6} {'wasm':>12} {'native-cpu':>12} {'cuda':>12} {'upload':>10} {'compute':>10} {'download':>10}  fastest")
transfer = {s["batch"]: s.get("transfer") or {} for s in cuda["steady"]}
for b in manifest["timings"]["runtime_fit"]["batches"]:
    t = transfer.get(b["batch"], {})
    cell = lambda us: f"{us:>10.1f}" if us is not None else f"{'-':>10}"
    print(f"{b['batch']:>6} {b['wasm_us']:>12.1f} {b['native_cpu_us']:>12.1f} {b['cuda_us'] or 0:>12.1f} "
          f"{cell(t.get('upload_us'))} {cell(t.get('compute_us'))} {cell(t.get('download_us'))}  {b['summary']}")
if not (manifest["parity"]["passed"] and parity["passed"]):
    sys.exit("parity failed")
PY
done
exit $status
