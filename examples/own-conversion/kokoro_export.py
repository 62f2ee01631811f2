"""Kokoro exported the way the blog post that started the field does it: ``KModelForONNX``
around the ``KModel``, weight norm removed, the TorchScript exporter at opset 20, inputs
``input_ids``, ``style`` and ``speed``, and only the waveform named as an output (the
durations come out too, under the exporter's own name).

parity calls ``export_kokoro(model, path)`` (``parity_export_with`` in pyproject.toml) with a
copy of the PyTorch model its gates compare against; a project's own routine takes its place.
"""

from __future__ import annotations

from pathlib import Path

import torch
from kokoro.model import KModelForONNX
from torch.nn import utils


def remove_weight_norm(module: torch.nn.Module) -> None:
    for child in module.children():
        if hasattr(child, "weight_v"):
            utils.remove_weight_norm(child)
        else:
            remove_weight_norm(child)


def export_kokoro(model: torch.nn.Module, path: Path) -> None:
    wrapper = KModelForONNX(model).eval()
    remove_weight_norm(wrapper)
    input_ids = torch.LongTensor([[0, *range(1, 11), 0]])
    style = torch.randn(1, 256)
    speed = torch.tensor([1.0], dtype=torch.float32)
    torch.onnx.export(
        wrapper,
        (input_ids, style, speed),
        str(path),
        input_names=["input_ids", "style", "speed"],
        output_names=["waveform"],
        dynamic_axes={"input_ids": {1: "sequence_length"}, "waveform": {0: "num_samples"}},
        opset_version=20,
        do_constant_folding=True,
        dynamo=False,
    )
