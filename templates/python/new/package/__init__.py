"""{{name}}: a cargo-wasmpack-infer Python project."""
