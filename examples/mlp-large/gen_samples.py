"""Writes samples/inputs.bin: 32 inputs of 256 little-endian f32 in [0, 1), from a fixed seed.

Standard library only, so anyone can regenerate and check the committed file.
"""

import random
import struct
from pathlib import Path

SAMPLES, INPUTS, SEED = 32, 256, 1024

rng = random.Random(SEED)
values = [rng.random() for _ in range(SAMPLES * INPUTS)]
out = Path(__file__).parent / "samples" / "inputs.bin"
out.write_bytes(struct.pack(f"<{len(values)}f", *values))
print(f"wrote {out} ({SAMPLES} samples x {INPUTS} f32)")
