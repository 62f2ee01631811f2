"""parity: numerical parity and regression harness for Kokoro-82M, PyTorch to ONNX to fp16/int8.

Light at import: the modules that pull in torch or onnxruntime are imported where used.
"""

__version__ = "0.1.0"
