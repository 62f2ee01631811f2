"""Kokoro's two LSTM encoders with their padding written as ``F.pad``, for export.

kokoro 0.9.4 pads each LSTM's output back to the mask's length by slice assignment into
zeros (``x_pad[:, :, :n] = x``), which the TorchScript exporter writes as ``ScatterND``.
onnxruntime-web 1.22.0-dev's WebGPU ScatterND, the runtime kokoro-js 1.2.1 ships, gets those
nodes wrong (rms_rel 0.998; docs/webgpu.md), so a file exported as kokoro wrote it moves its
durations on kokoro-js's WebGPU device. ``F.pad`` computes the same values (a copy either
way) and exports as ``Pad``. kokoro-onnx's graph has no ScatterND there either.

Only the padding differs from kokoro's ``TextEncoder.forward`` and ``DurationEncoder.forward``;
the PyTorch reference keeps kokoro's own code, and the staged check holds the two equal.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["padding_as_pad"]


def _pad_to(x: torch.Tensor, length: int) -> torch.Tensor:
    """``x`` [B, C, n] with zeros after its last axis up to ``length``: kokoro's
    ``x_pad = zeros(B, C, length); x_pad[:, :, :n] = x``."""
    return F.pad(x, (0, length - x.shape[-1]))


def _lstm_over(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """kokoro's pack, run and unpack of one LSTM over ``x`` [B, T, C]."""
    lengths = lengths if lengths.device == torch.device("cpu") else lengths.to("cpu")
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    lstm.flatten_parameters()
    out, _ = lstm(packed)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
    return out


def _text_encoder_forward(
    self: Any, x: torch.Tensor, input_lengths: torch.Tensor, m: torch.Tensor
) -> torch.Tensor:
    x = self.embedding(x).transpose(1, 2)  # [B, emb, T]
    m = m.unsqueeze(1)
    x.masked_fill_(m, 0.0)
    for c in self.cnn:
        x = c(x)
        x.masked_fill_(m, 0.0)
    x = _lstm_over(self.lstm, x.transpose(1, 2), input_lengths).transpose(-1, -2)
    x = _pad_to(x, m.shape[-1])
    x.masked_fill_(m, 0.0)
    return x


def _duration_encoder_forward(
    self: Any, x: torch.Tensor, style: torch.Tensor, text_lengths: torch.Tensor, m: torch.Tensor
) -> torch.Tensor:
    from kokoro.modules import AdaLayerNorm

    masks = m
    x = x.permute(2, 0, 1)
    s = style.expand(x.shape[0], x.shape[1], -1)
    x = torch.cat([x, s], dim=-1)
    x.masked_fill_(masks.unsqueeze(-1).transpose(0, 1), 0.0)
    x = x.transpose(0, 1).transpose(-1, -2)
    for block in self.lstms:
        if isinstance(block, AdaLayerNorm):
            x = block(x.transpose(-1, -2), style).transpose(-1, -2)
            x = torch.cat([x, s.permute(1, 2, 0)], dim=1)
            x.masked_fill_(masks.unsqueeze(-1).transpose(-1, -2), 0.0)
        else:
            x = _lstm_over(block, x.transpose(-1, -2), text_lengths)
            x = F.dropout(x, p=self.dropout, training=False).transpose(-1, -2)
            x = _pad_to(x, m.shape[-1])
    return x.transpose(-1, -2)


@contextlib.contextmanager
def padding_as_pad(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` with every kokoro ``TextEncoder`` and ``DurationEncoder`` padding by ``Pad``
    (the instances' ``forward`` is replaced, then restored)."""
    from kokoro.modules import DurationEncoder, TextEncoder

    replaced: list[nn.Module] = []
    try:
        for module in model.modules():
            if type(module) is TextEncoder:
                module.forward = types.MethodType(_text_encoder_forward, module)
            elif type(module) is DurationEncoder:
                module.forward = types.MethodType(_duration_encoder_forward, module)
            else:
                continue
            replaced.append(module)
        yield model
    finally:
        for module in replaced:
            del module.forward
