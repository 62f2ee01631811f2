"""Run and judge: PyTorch and ONNX Runtime runners, comparators, tolerances, the staged fp32
check, fault localisation and the sound verdicts."""
