# Task runner recipes (https://github.com/casey/just). CI runs `.ci/run`, which needs no just.

export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", env_var("HOME") + "/.cache/cargo-wasmpack-infer/target")

# Run the whole test suite, as CI does.
test:
    cargo test --workspace --locked

# The tests left out of the default run for their build time (tract kernels written by `new`).
test-slow:
    cargo test --workspace --locked -- --ignored

# Build the book (docs/ → docs/book/) and check its links, as CI does.
book:
    mdbook build docs
    scripts/check-book-links.py docs/book

# Build the bundled example into dist/.
example:
    cargo run --release -- build examples/digits-mlp

# The heavy example, for the batch sweep (1 to 4096 samples; about a minute on 2 cores).
example-large:
    cargo run --release -- build examples/mlp-large

# On a machine with an NVIDIA GPU: build both examples, check CUDA ran with WASM parity, print
# the batch sweep. `just gpu-check --prebuilt` re-measures bundles built elsewhere instead.
gpu-check *args:
    scripts/gpu-check.sh {{args}}

# Side-by-side sizes and speed: plain release vs wasm-opt alone vs the pipeline; WASM vs native.
bench:
    cargo bench --bench pipeline --profile dev

# The Python path on examples/digits-py: bytes and cold start vs stock Pyodide, with the goals.
bench-python:
    cargo bench --bench pyodide --profile dev

# examples/digits-onnx (tract inside the kernel) against ONNX Runtime Web in Node: bytes, load,
# first and steady inference side by side, with the goals.
bench-onnx:
    cargo bench --bench onnx --profile dev

# examples/mlp-large built once: every WASM SIMD level and native (one thread, all) per batch, as
# GFLOP/s and a fraction of this core's FMA peak, with issue 15's goals (a few minutes).
bench-variants:
    cargo bench --bench variants --profile dev

# The helper crate's GEMM against matrixmultiply, gemm and the per-sample loop on mlp-large's
# layers, one thread and every core, as a fraction of this core's FMA peak (about a minute).
bench-gemm:
    cargo run --release --manifest-path benches/gemm/Cargo.toml

# Long differential run of shake + wasm-opt on random modules (the default test run does 400 seeds).
fuzz seeds="20000":
    WPI_FUZZ_SEEDS={{seeds}} cargo test --test all differential -- --nocapture

# Licenses, banned versions (tar < 0.4.45) and sources of every dependency, offline (deny.toml;
# needs `cargo install cargo-deny`).
deny:
    cargo deny check licenses bans sources

# RustSec advisories: fetches the advisory database from github.com.
deny-advisories:
    cargo deny check advisories

# Regenerate blessed snapshots and the manifest schema after an intended change.
bless:
    BLESS=1 cargo test --workspace

fmt:
    cargo fmt --all
