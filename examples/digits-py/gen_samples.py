"""Writes samples.json from examples/digits-mlp/samples/inputs.bin: the same held-out digits."""

import json
import struct
from pathlib import Path

here = Path(__file__).parent
raw = (here.parent / "digits-mlp" / "samples" / "inputs.bin").read_bytes()
values = struct.unpack(f"<{len(raw) // 4}f", raw)
samples = [list(values[i:i + 64]) for i in range(0, len(values), 64)]
(here / "samples.json").write_text(json.dumps(samples, separators=(",", ":")) + "\n")
print(f"wrote {len(samples)} samples")
