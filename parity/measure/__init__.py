"""Measure speed: real-time factor on ONNX Runtime CPU and onnxruntime-web under Node.js."""
