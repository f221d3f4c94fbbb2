"""Write the digits MLP's weights as safetensors, the way a PyTorch or candle user ships them.

The model is examples/digits-onnx's (a 64-256-128-10 scikit-learn MLP, see its train.py); its
ONNX initializers are renamed to torch.nn.Linear's convention, which candle_nn::linear reads:
`fc{1,2,3}.weight` is [out, in] (scikit-learn stores [in, out]) and `fc{1,2,3}.bias` is [out].
The samples and ONNX Runtime's outputs on them are copied from digits-onnx, so both examples
answer to the same reference.

Outputs: model/digits.safetensors
Run: python3 export.py   (pip install onnx numpy safetensors)
"""
import pathlib

import numpy as np
import onnx
from onnx import numpy_helper
from safetensors.numpy import save_file

HERE = pathlib.Path(__file__).resolve().parent
SOURCE = HERE.parent / "digits-onnx" / "model" / "digits.onnx"

initializers = {
    init.name: numpy_helper.to_array(init) for init in onnx.load(SOURCE).graph.initializer
}
tensors = {}
for layer, suffix in enumerate(["", "1", "2"], start=1):
    tensors[f"fc{layer}.weight"] = np.ascontiguousarray(
        initializers[f"coefficient{suffix}"].T, dtype=np.float32
    )
    tensors[f"fc{layer}.bias"] = initializers[f"intercepts{suffix}"].reshape(-1).astype(np.float32)

save_file(tensors, HERE / "model" / "digits.safetensors", metadata={"source": "digits-onnx"})
