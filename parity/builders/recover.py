"""A PyTorch Kokoro-82M state dict recovered from the trained float32 ONNX model.

The dequantized int8 export (``parity.builders.weights``) holds every trained weight, but the
TorchScript exporter renamed, transposed and folded many of them. Each initializer is mapped
back to a ``KModel`` parameter by its own name where it kept one
(``decoder.decoder.generator.resblocks.4.adain2.2.fc.weight``), else by the node scope of
the op that reads it (``/encoder/bert/.../attention/query_3/MatMul`` reads ``onnx::MatMul_6548``),
and the layout changes are undone: MatMul weights transposed, LSTM gates reordered from
ONNX's i,o,f,c to PyTorch's i,f,g,o with the bias split in two, and folded weight norm split
back into ``weight_g`` (the per-channel norm) and ``weight_v``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from parity.builders.model import build_kokoro
from parity.core.cache import ArtifactCache, CacheKey, atomic_path
from parity.core.config import ParityConfig
from parity.core.errors import ParityError
from parity.core.spec import CHECKPOINT_PARTS, KokoroSpec, Preset

__all__ = [
    "PUBLISHED_ISTFT_GAIN",
    "RecoveredWeights",
    "recover_state_dict",
    "recovered_checkpoint_cached",
    "resolved_spec",
    "save_checkpoint",
]

# The published export plays 1.5x (3.5 dB) louder than PyTorch Kokoro: 3/8 * n_fft / hop for
# n_fft 20 and hop 5, the overlap-added squared Hann window that torch.istft divides by.
# Measured on the sentence fixture: our iSTFT of the published graph's conv_post output,
# times 1.5, is its audio to 6.6e-7 relative.
PUBLISHED_ISTFT_GAIN = 1.5

# ALBERT's pooler is never run (kokoro reads the last hidden state), so no export holds it.
_UNUSED_PREFIXES = ("bert.pooler.",)
# AdaIN1d's InstanceNorm1d: kokoro builds it with affine=True only to dodge an exporter bug;
# the trained model has affine=False, so its scale and shift are 1 and 0 and fold away.
_IDENTITY_NORM = re.compile(r"\.norm\.(weight|bias)$")
# Constants of the STFT choice (buffers of our STFT), not weights.
_DERIVED_PREFIX = "decoder.generator.stft."
# ONNX LSTM gates are i, o, f, c; PyTorch's are i, f, g(=c), o.
_LSTM_GATE_ORDER = (0, 2, 3, 1)


@dataclass(frozen=True)
class RecoveredWeights:
    """A full ``KModel`` state dict and how each of its entries was found."""

    state: dict[str, torch.Tensor]
    by_name: int  # initializers that kept a parameter's name
    by_scope: int  # anonymous ones, placed by the scope of the node reading them
    lstm: int  # LSTM modules whose gates were reordered
    weight_norm: int  # folded weight norms split into weight_g / weight_v
    zero_channels: int  # output channels quantized to all zeros (weight_g = 0, weight_v = 1)
    identity: tuple[str, ...]  # AdaIN instance-norm scale/shift, 1 and 0 as trained
    unused: tuple[str, ...]  # parameters the model never runs (zeros)

    def parts(self) -> dict[str, dict[str, torch.Tensor]]:
        """The checkpoint layout kokoro and ``--kokoro-checkpoint`` read: {part: state}."""
        return {
            part: {
                key[len(part) + 1 :]: value
                for key, value in self.state.items()
                if key.startswith(f"{part}.")
            }
            for part in CHECKPOINT_PARTS
        }

    def summary(self) -> str:
        return (
            f"{len(self.state)} tensors: {self.by_name} by name, {self.by_scope} by node scope, "
            f"{self.lstm} LSTMs regated, {self.weight_norm} weight norms split "
            f"({self.zero_channels} all-zero channels), {len(self.identity)} instance-norm "
            f"affines at identity, {len(self.unused)} unused (ALBERT pooler) at zero"
        )


def _dot_suffix(name: str, key: str) -> bool:
    return name == key or name.endswith(f".{key}")


def _key_named_by(name: str, keys: Sequence[str]) -> str | None:
    """The longest state-dict key that the initializer's own name ends with."""
    matches = [key for key in keys if _dot_suffix(name, key)]
    return max(matches, key=len) if matches else None


def _scope_path(node_name: str) -> str:
    """``/encoder/text_encoder/cnn.0/cnn.0.0/Conv`` -> ``encoder.text_encoder.cnn.0.0``.

    The op's own name is dropped, repeated calls of a shared module (``query_3``) lose their
    counter, and a Sequential's child (``cnn.0.0``) replaces its parent (``cnn.0``).
    """
    parts = [re.sub(r"_\d+$", "", part) for part in node_name.split("/")[1:-1]]
    kept = [
        part
        for here, part in enumerate(parts)
        if not (here + 1 < len(parts) and parts[here + 1].startswith(f"{part}."))
    ]
    return ".".join(kept)


def _modules_for_scope(scope: str, modules: Sequence[str]) -> list[str]:
    """The modules sharing the longest dotted tail with ``scope`` (none if nothing is shared).

    The export wraps the model (``encoder.predictor...``, ``decoder.decoder...``) and calls
    some predictor modules from outside it (``/encoder/F0.0/conv1``, or ``/lstm`` for
    ``predictor.lstm`` in our own export), so names match by tail; shapes break ties.
    """
    wanted = scope.split(".")

    def shared(module: str) -> int:
        parts, count = module.split("."), 0
        while count < min(len(parts), len(wanted)) and parts[-1 - count] == wanted[-1 - count]:
            count += 1
        return count

    scores = {module: shared(module) for module in modules}
    best = max(scores.values(), default=0)
    return [module for module, score in scores.items() if score == best] if best else []


_ROLES = {
    ("MatMul", 1): "weight",
    ("Conv", 1): "weight",
    ("Conv", 2): "bias",
    ("ConvTranspose", 1): "weight",
    ("ConvTranspose", 2): "bias",
    ("LSTM", 1): "W",
    ("LSTM", 2): "R",
    ("LSTM", 3): "B",
}


class _Assembler:
    """Places converted arrays into the state dict, refusing clashes and wrong shapes."""

    def __init__(self, expected: Mapping[str, torch.Tensor]) -> None:
        self.expected = expected
        self.state: dict[str, torch.Tensor] = {}
        self.sources: dict[str, str] = {}

    def put(self, key: str, array: np.ndarray, source: str) -> None:
        want = self.expected[key]
        if tuple(array.shape) != tuple(want.shape):
            raise ParityError(
                f"recover: {source} has shape {tuple(array.shape)} but {key} needs "
                f"{tuple(want.shape)}; is the ONNX model a Kokoro-82M export?"
            )
        tensor = torch.from_numpy(np.array(array, dtype=np.float32)).to(want.dtype)
        if key in self.state and not torch.equal(self.state[key], tensor):
            raise ParityError(f"recover: {key} is claimed by {self.sources[key]} and {source}")
        self.state[key], self.sources[key] = tensor, source

    def lstm(self, module: str, role: str, array: np.ndarray, source: str) -> None:
        hidden = array.shape[1] // (8 if role == "B" else 4)

        def regate(rows: np.ndarray) -> np.ndarray:
            return np.concatenate([rows[g * hidden : (g + 1) * hidden] for g in _LSTM_GATE_ORDER])

        for direction, suffix in enumerate(("", "_reverse")):
            rows = array[direction]
            if role == "W":
                self.put(f"{module}.weight_ih_l0{suffix}", regate(rows), source)
            elif role == "R":
                self.put(f"{module}.weight_hh_l0{suffix}", regate(rows), source)
            else:  # ONNX keeps [Wb, Rb] in one row; PyTorch has bias_ih and bias_hh
                self.put(f"{module}.bias_ih_l0{suffix}", regate(rows[: 4 * hidden]), source)
                self.put(f"{module}.bias_hh_l0{suffix}", regate(rows[4 * hidden :]), source)

    def weight_norm(self, module: str, weight: np.ndarray, source: str) -> int:
        """Any split with the same product loads; g = per-channel norm and v = W is exact.
        A channel quantized to all zeros gets g = 0 and v = 1 (not 0/0)."""
        norms = np.sqrt((weight.astype(np.float64) ** 2).reshape(weight.shape[0], -1).sum(1))
        direction = np.array(weight, dtype=np.float32)
        direction[norms == 0] = 1.0
        shape = self.expected[f"{module}.weight_g"].shape
        self.put(f"{module}.weight_g", norms.reshape(shape).astype(np.float32), source)
        self.put(f"{module}.weight_v", direction, source)
        return int((norms == 0).sum())


def _fits(role: str, module: str, shape: tuple[int, ...], expected: Mapping[str, Any]) -> bool:
    """Whether an array of ``shape`` can be ``module``'s parameter in ``role``."""
    if role in ("W", "R", "B"):
        name = {"W": "weight_ih_l0", "R": "weight_hh_l0", "B": "bias_ih_l0"}[role]
        want = tuple(expected[f"{module}.{name}"].shape) if f"{module}.{name}" in expected else ()
        return bool(want) and shape[1:] == ((2 * want[0],) if role == "B" else want)
    key = f"{module}.weight_v" if f"{module}.weight_g" in expected and role == "weight" else None
    want = (
        tuple(expected[key or f"{module}.{role}"].shape)
        if (key or f"{module}.{role}") in expected
        else ()
    )
    return bool(want) and shape in (want, want[::-1])


def _target(
    name: str,
    shapes: Mapping[str, tuple[int, ...]],
    reader: tuple[onnx.NodeProto, int] | None,
    expected: Mapping[str, Any],
    modules: Sequence[str],
) -> tuple[str, str] | None:
    """Where an initializer goes: ("name" | "scope", key) or ("lstm:W|R|B", module)."""
    key = _key_named_by(name, list(expected))
    if key is not None:
        return "name", key
    shape = shapes[name]
    role = _ROLES.get((reader[0].op_type, reader[1])) if reader else None
    if reader is None or role is None:
        return None
    # An LSTM's R and B fit any LSTM of the same width: its W (input size) picks the module.
    fit_role, fit_shape = (
        ("W", shapes.get(reader[0].input[1], ())) if role in "RB" else (role, shape)
    )
    fitting = [
        module
        for module in _modules_for_scope(_scope_path(reader[0].name), modules)
        if _fits(fit_role, module, fit_shape, expected)
    ]
    if len(fitting) != 1:
        return None  # a constant the export computed inside some module (STFT bases)
    if role in ("W", "R", "B"):
        return f"lstm:{role}", fitting[0]
    return "scope", f"{fitting[0]}.{role}"


def _first_readers(model: onnx.ModelProto) -> dict[str, tuple[onnx.NodeProto, int]]:
    """Each value's first reader, looking through Identity (how shared ALBERT weights export)."""
    readers: dict[str, tuple[onnx.NodeProto, int]] = {}
    for node in model.graph.node:
        for index, name in enumerate(node.input):
            readers.setdefault(name, (node, index))
    resolved = {}
    for name, first in readers.items():
        reader, seen = first, 0
        while reader[0].op_type == "Identity" and reader[0].output[0] in readers and seen < 16:
            reader, seen = readers[reader[0].output[0]], seen + 1
        resolved[name] = reader
    return resolved


def recover_state_dict(model: onnx.ModelProto, preset: Preset = "full") -> RecoveredWeights:
    """Map every trained weight of a float32 Kokoro ONNX export onto ``KModel``'s parameters."""
    reference = build_kokoro(preset=preset)
    expected = {
        k: v for k, v in reference.state_dict().items() if not k.startswith(_DERIVED_PREFIX)
    }
    modules = [name for name, _ in reference.named_modules() if name]
    keys = list(expected)
    readers = _first_readers(model)
    shapes = {item.name: tuple(item.dims) for item in model.graph.initializer}

    assembler = _Assembler(expected)
    counts = {"name": 0, "scope": 0, "lstm": 0, "weight_norm": 0, "zero_channels": 0}
    for initializer in model.graph.initializer:
        reader = readers.get(initializer.name)
        target = _target(initializer.name, shapes, reader, expected, modules)
        if initializer.data_type != onnx.TensorProto.FLOAT or target is None:
            continue
        how, key = target
        array = numpy_helper.to_array(initializer)
        if how.startswith("lstm:"):
            assembler.lstm(key, how[-1], array, initializer.name)
            counts["scope"] += 1
            counts["lstm"] += how == "lstm:W"
            continue
        counts[how] += 1
        if reader is not None and reader[0].op_type == "MatMul" and reader[1] == 1:
            array = array.T  # MatMul(x, W^T) is how a Linear exports
        module = key.rsplit(".", 1)[0]
        if key.endswith(".weight") and f"{module}.weight_g" in expected:
            counts["zero_channels"] += assembler.weight_norm(module, array, initializer.name)
            counts["weight_norm"] += 1
        else:
            assembler.put(key, array, initializer.name)

    identity = tuple(k for k in keys if k not in assembler.state and _IDENTITY_NORM.search(k))
    unused = tuple(k for k in keys if k not in assembler.state and k.startswith(_UNUSED_PREFIXES))
    for key in identity:
        fill = torch.ones_like if key.endswith("weight") else torch.zeros_like
        assembler.state[key] = fill(expected[key])
    for key in unused:
        assembler.state[key] = torch.zeros_like(expected[key])
    missing = [key for key in keys if key not in assembler.state]
    if missing:
        raise ParityError(
            f"recover: {len(missing)} Kokoro parameters have no counterpart in the ONNX model "
            f"(first: {missing[0]}); is it a Kokoro-82M export with its node scopes intact?"
        )
    return RecoveredWeights(
        state=assembler.state,
        by_name=counts["name"],
        by_scope=counts["scope"],
        lstm=counts["lstm"],
        weight_norm=counts["weight_norm"],
        zero_channels=counts["zero_channels"],
        identity=identity,
        unused=unused,
    )


def save_checkpoint(recovered: RecoveredWeights, path: Path) -> Path:
    """Write the {part: state} checkpoint atomically."""
    with atomic_path(Path(path)) as temporary:
        torch.save(recovered.parts(), temporary)
    return Path(path)


def recovered_checkpoint_cached(cache: ArtifactCache) -> Path:
    """The trained Kokoro-82M as a PyTorch checkpoint, recovered once into the cache."""
    from parity.builders.weights import INT8_SHA256, dequantized_cached

    fp32 = dequantized_cached(cache)
    code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    key = CacheKey("trained-pth", {"int8": INT8_SHA256, "fp32": fp32.path.name, "code": code})

    def build(path: Path) -> dict[str, object]:
        recovered = recover_state_dict(onnx.load(str(fp32.path)))
        save_checkpoint(recovered, path)
        return {"summary": recovered.summary()}

    return cache.get_or_build(key, ".pth", build).path


def resolved_spec(config: ParityConfig, cache: ArtifactCache) -> KokoroSpec:
    """The configuration's model recipe with its weights in place: the recovered trained
    checkpoint (recovered once into the cache) when ``config.weights`` says so."""
    if config.weights != "recovered":
        return config.spec
    return replace(config.spec, checkpoint=str(recovered_checkpoint_cached(cache)))
