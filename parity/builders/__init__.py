"""Build things: the offline Kokoro, the exact STFT, ONNX exports, fp16 and int8 variants,
graph transforms and the trained weights."""
