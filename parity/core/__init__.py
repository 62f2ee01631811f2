"""Shared helpers below every stage: errors, the content-hash cache and run store, ONNX
Runtime sessions, graph helpers, inputs, JSON conversion and plots of plain data."""
