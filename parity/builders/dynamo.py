"""What the dynamo exporter needs to take Kokoro with a dynamic phoneme count.

``torch.onnx.export(dynamo=True)`` traces with ``torch.export``, which refuses Python control
flow on tensor values and data-dependent guards. Kokoro in site-packages stays untouched: the
export runs on a copy of the model, patched module by module. For a batch of one, patches 2 to
4 compute what kokoro computes bit for bit; patch 1 differs at float rounding
(``tests/test_dynamo.py`` checks both):

1. ALBERT uses eager attention: transformers' SDPA mask code guards on the mask's values
   (``GuardOnDataDependentSymNode``). Eager and SDPA attention round differently: ALBERT's
   output moves by rms_rel 2e-8 to 7e-8 on the tiny preset and 2e-7 to 3e-7 on the full
   one (3, 24 and 300 tokens), which the chaotic free-running audio then amplifies.
2. The two text encoders call their LSTMs directly, not through ``pack_padded_sequence``: a
   batch of one has no padding, so packing and masking change nothing.
3. The alignment matrix comes from comparing a frame index with each token's cumulative
   duration, not from ``repeat_interleave`` and index assignment; the frame count is an
   unbacked size bounded with ``torch._check`` (every token lasts at least one frame).
4. Weight norm is folded into plain weights: the dynamo exporter keeps its ``ReduceL2`` at
   run time (58 of them on the tiny preset), where TorchScript folded them to constants,
   and the quantizers need the weights as initializers.
5. LSTMs lower through torch's while-loop decomposition during the whole export. torch 2.13
   registers it only around the capture step, so the decomposition step re-specialises the
   time axis and stops on the unbacked frame count (fixed upstream in pytorch#193192).

After export, node names are rewritten from the exporter's ``name_scopes`` metadata into the
TorchScript form (``/decoder/generator/resblocks.1/Sin_20``), so the staged check, the
localiser and the quantizers' scope lists read both exports alike.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import types
from collections.abc import Iterable, Iterator
from typing import Any

import onnx
import torch
from kokoro.modules import AdaLayerNorm
from torch import nn
from torch.nn.utils.weight_norm import WeightNorm

from parity.core.scopes import unqualified_name

__all__ = ["dynamo_ready", "export_dynamo", "program_dynamo", "scope_names_from_metadata"]

# The smallest input the dynamic axis admits: BOS, one phoneme, EOS.
MIN_TOKENS = 3
MAX_TOKENS = 512
_SCOPES_KEY = "pkg.torch.onnx.name_scopes"


def _text_encoder_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    """``kokoro.modules.TextEncoder.forward`` for one unpadded sequence."""
    x = self.embedding(x).transpose(1, 2)
    for conv in self.cnn:
        x = conv(x)
    x, _ = self.lstm(x.transpose(1, 2))
    return x.transpose(-1, -2)


def _duration_encoder_forward(self: Any, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """``kokoro.modules.DurationEncoder.forward`` for one unpadded sequence (eval mode)."""
    x = x.permute(2, 0, 1)
    s = style.expand(x.shape[0], x.shape[1], -1)
    x = torch.cat([x, s], dim=-1).transpose(0, 1).transpose(-1, -2)
    for block in self.lstms:
        if isinstance(block, AdaLayerNorm):
            x = block(x.transpose(-1, -2), style).transpose(-1, -2)
            x = torch.cat([x, s.permute(1, 2, 0)], dim=1)
        else:
            x, _ = block(x.transpose(-1, -2))
            x = x.transpose(-1, -2)
    return x.transpose(-1, -2)


def _alignment(durations: torch.Tensor) -> torch.Tensor:
    """[1, tokens, frames]: 1 where a frame belongs to a token, as kokoro's index assignment."""
    ends = torch.cumsum(durations, 0)
    starts = ends - durations
    frames = ends[-1].item()
    torch._check(frames >= MIN_TOKENS)
    frame = torch.arange(frames, device=durations.device)
    inside = (frame[None, :] >= starts[:, None]) & (frame[None, :] < ends[:, None])
    return inside.to(torch.float32).unsqueeze(0)


def _forward_with_tokens(
    self: Any, input_ids: torch.Tensor, ref_s: torch.Tensor, speed: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``kokoro.model.KModel.forward_with_tokens`` for a batch of one, exportable by dynamo."""
    bert_dur = self.bert(input_ids, attention_mask=torch.ones_like(input_ids))
    d_en = self.bert_encoder(bert_dur).transpose(-1, -2)
    s = ref_s[:, 128:]
    d = self.predictor.text_encoder(d_en, s)
    x, _ = self.predictor.lstm(d)
    duration = torch.sigmoid(self.predictor.duration_proj(x)).sum(dim=-1) / speed
    pred_dur = torch.round(duration).clamp(min=1).long().squeeze(0)
    alignment = _alignment(pred_dur)
    en = d.transpose(-1, -2) @ alignment
    f0, noise = self.predictor.F0Ntrain(en, s)
    t_en = self.text_encoder(input_ids)
    audio = self.decoder(t_en @ alignment, f0, noise, ref_s[:, :128]).squeeze()
    return audio, pred_dur


def _weight_normed(model: nn.Module) -> list[Any]:
    return [
        module
        for module in model.modules()
        if any(isinstance(hook, WeightNorm) for hook in module._forward_pre_hooks.values())
    ]


def _copy(model: nn.Module) -> Any:
    """A deep copy. Weight norm caches ``weight`` as a non-leaf tensor, which deepcopy
    refuses; its hook recomputes it before every forward, so detaching it changes nothing."""
    for module in _weight_normed(model):
        module.weight = module.weight.detach()
    return copy.deepcopy(model)


def dynamo_ready(model: Any) -> Any:
    """A patched copy of ``model`` whose ``forward`` is ``forward_with_tokens`` (see above)."""
    ready: Any = _copy(model).eval()
    ready.bert.set_attn_implementation("eager")
    ready.text_encoder.forward = types.MethodType(_text_encoder_forward, ready.text_encoder)
    encoder = ready.predictor.text_encoder
    encoder.forward = types.MethodType(_duration_encoder_forward, encoder)
    for module in _weight_normed(ready):
        nn.utils.remove_weight_norm(module)
    ready.forward = types.MethodType(_forward_with_tokens, ready)
    return ready


@contextlib.contextmanager
def _while_loop_lstm() -> Iterator[None]:
    from torch.export._patches import register_lstm_while_loop_decomposition

    with register_lstm_while_loop_decomposition():
        yield


def scope_names_from_metadata(nodes: Iterable[Any]) -> None:
    """Rename every node as the TorchScript exporter would: ``/<scopes>/<OpType>_<n>``.

    ``name_scopes`` lists the qualified module path of each call on the stack, then the
    node's own name; TorchScript joins each module's unqualified name and numbers repeats
    of one op in one scope (``/Div``, ``/Div_1``). Block lists written against TorchScript
    names (the float16 duration head ``/Sigmoid``, ``/ReduceSum``, ``/Div``, ``/Round``) then
    hold for both exports; ``tests/test_dynamo.py`` checks that they do.
    """
    seen: dict[str, int] = {}
    for node in nodes:  # onnx_ir nodes of the exporter's program, renamed in place
        scopes = node.metadata_props.get(_SCOPES_KEY, "[]")
        # The last entry is the node's own name; "" is the root, and "_..." a placeholder
        # the exporter uses for nodes it made outside any module.
        calls = [path for path in _literal_list(scopes)[:-1] if path and not path.startswith("_")]
        prefix = "".join(f"/{unqualified_name(path)}" for path in calls)
        base = f"{prefix}/{node.op_type}"
        count = seen.get(base, 0)
        seen[base] = count + 1
        node.name = f"{base}_{count}" if count else base


def _literal_list(text: str) -> list[str]:
    """The exporter writes ``name_scopes`` as a Python list literal of strings."""
    value = ast.literal_eval(text)
    return [str(item) for item in value] if isinstance(value, list) else []


def program_dynamo(
    model: Any,
    args: tuple[torch.Tensor, ...],
    *,
    opset: int,
    input_names: tuple[str, ...],
    output_names: tuple[str, ...],
) -> torch.onnx.ONNXProgram:
    """The dynamo exporter's program for a patched copy of ``model``, nodes renamed."""
    ready = dynamo_ready(model)
    sequence = torch.export.Dim("sequence_length", min=MIN_TOKENS, max=MAX_TOKENS)
    # Under no_grad, the generator's own ``torch.no_grad()`` block (its source and analysis
    # STFT) changes nothing, so torch.export does not wrap it in a subgraph whose nodes lose
    # their module scopes.
    with _while_loop_lstm(), torch.no_grad():
        program = torch.onnx.export(
            ready,
            args,
            dynamo=True,
            opset_version=opset,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_shapes=({1: sequence}, None, None),
            verbose=False,
        )
    assert program is not None  # no file given, so the program is returned
    scope_names_from_metadata(program.model.graph)
    return program


def export_dynamo(
    model: Any,
    args: tuple[torch.Tensor, ...],
    target: str,
    *,
    opset: int,
    input_names: tuple[str, ...],
    output_names: tuple[str, ...],
) -> None:
    """Export a patched copy of ``model`` with a dynamic token axis to one file ``target``."""
    program = program_dynamo(
        model, args, opset=opset, input_names=input_names, output_names=output_names
    )
    onnx.save(program.model_proto, target)
