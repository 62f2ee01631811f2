"""A PyTorch Kokoro-82M state dict recovered from the trained float32 ONNX model.

The dequantized int8 export (``parity.weights``) holds every trained weight, but the
TorchScript exporter renamed, transposed and folded many of them. Each initializer is mapped
back to a ``KModel`` parameter by its own name where it kept one
(``decoder.decoder.generator.resblocks.4.adain2.2.fc.weight``), else by the node scope of
the op that reads it (``/encoder/bert/.../attention/query_3/MatMul`` reads ``onnx::MatMul_6548``),
and the layout changes are undone: MatMul weights transposed, LSTM gates reordered from
ONNX's i,o,f,c to PyTorch's i,f,g,o with the bias split in two, and folded weight norm split
back into ``weight_g`` (the per-channel norm) and ``weight_v``.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from parity.cache import ArtifactCache, CacheKey, atomic_path
from parity.errors import ParityError
from parity.inputs import KokoroInput
from parity.model import CHECKPOINT_PARTS, KModel, Preset, build_kokoro

__all__ = [
    "PUBLISHED_ISTFT_GAIN",
    "RecoveredWeights",
    "RecoveryCheck",
    "check_recovery",
    "recover_state_dict",
    "recovered_checkpoint_cached",
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
    from parity.weights import INT8_SHA256, dequantized_cached

    fp32 = dequantized_cached(cache)
    code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    key = CacheKey("trained-pth", {"int8": INT8_SHA256, "fp32": fp32.path.name, "code": code})

    def build(path: Path) -> dict[str, object]:
        recovered = recover_state_dict(onnx.load(str(fp32.path)))
        save_checkpoint(recovered, path)
        return {"summary": recovered.summary()}

    return cache.get_or_build(key, ".pth", build).path


# -- the proof: the recovered PyTorch model against the published graph ----------------------


@dataclass(frozen=True)
class RecoveryCheck:
    """PyTorch with recovered weights against the float32 ONNX they came from, one request.

    ``forced_rel`` is the waveform error with the generator's harmonic input (the STFT of
    the source) taken from the ONNX run: the published graph computes the source phase in
    float32 and lowers atan2 with -pi where torch gives +pi, so free-running the two differ
    by chaos in the phase channels (``free_rel``), not by their weights.
    """

    name: str
    tokens: int
    durations_equal: bool
    forced_rel: float
    free_rel: float


class PublishedGraph:
    """The published graph in ONNX Runtime, exposing its durations and harmonic input."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        model = onnx.load(str(path))
        self.durations, self.harmonics = _published_taps(model)
        for name in (self.durations, self.harmonics):
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
        self.session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )

    def run(self, request: KokoroInput) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(audio at PyTorch's gain, per-token durations, harmonic input)."""
        feed = {
            "tokens": request.input_ids,
            "style": request.style.astype(np.float32),
            "speed": np.asarray([request.speed], dtype=np.float32),
        }
        audio, durations, harmonics = self.session.run(
            ["audio", self.durations, self.harmonics], feed
        )
        return audio.reshape(-1) / PUBLISHED_ISTFT_GAIN, durations.reshape(-1), harmonics


def _published_taps(model: onnx.ModelProto) -> tuple[str, str]:
    """Names of the predicted durations (Round -> Clip) and the first noise conv's input."""
    producers = {output: node for node in model.graph.node for output in node.output}
    durations = [
        node.output[0]
        for node in model.graph.node
        if node.op_type == "Clip" and producers.get(node.input[0], node).op_type == "Round"
    ]
    harmonics = [n.input[0] for n in model.graph.node if n.name.endswith("noise_convs.0/Conv")]
    if len(durations) != 1 or len(harmonics) != 1:
        raise ParityError(
            "recover: the ONNX model has no single duration head (Round -> Clip) or "
            "noise_convs.0 Conv; is it kokoro-onnx's Kokoro-82M export?"
        )
    return durations[0], harmonics[0]


@contextlib.contextmanager
def forced_harmonics(model: KModel, harmonics: np.ndarray) -> Iterator[None]:
    """Make the generator read ``harmonics`` ([1, 2 * bins, frames]) as its source's STFT."""
    stft = model.decoder.generator.stft
    tensor = torch.from_numpy(harmonics)
    bins = tensor.shape[1] // 2
    stft.transform = lambda _waveform: (tensor[:, :bins], tensor[:, bins:])
    try:
        yield
    finally:
        del stft.transform


def _relative(reference: np.ndarray, candidate: np.ndarray) -> float:
    if len(reference) != len(candidate):
        return float("inf")
    return float(np.linalg.norm(candidate - reference) / np.linalg.norm(reference))


def _check_one(
    graph: PublishedGraph, model: KModel, request: KokoroInput
) -> tuple[RecoveryCheck, np.ndarray]:
    """One request through both; also the free-running PyTorch waveform."""
    from parity.runners import TorchRunner

    runner = TorchRunner(model)
    audio, durations, harmonics = graph.run(request)
    free = runner.infer(request)
    with forced_harmonics(model, harmonics):
        forced = runner.infer(request)
    check = RecoveryCheck(
        name=request.name,
        tokens=len(request.phonemes),
        durations_equal=free.durations is not None
        and np.array_equal(free.durations, durations.astype(np.int64)),
        forced_rel=_relative(audio, forced.waveform),
        free_rel=_relative(audio, free.waveform),
    )
    return check, free.waveform


def check_recovery(
    model: KModel, published: Path, requests: Sequence[KokoroInput]
) -> list[RecoveryCheck]:
    """Run both on each request: durations, forced and free-running waveform error."""
    graph = PublishedGraph(published)
    return [_check_one(graph, model, request)[0] for request in requests]


def louder(waveform: np.ndarray) -> np.ndarray:
    """PyTorch Kokoro's waveform at the published export's gain, to compare the two by ear."""
    return np.asarray(waveform, dtype=np.float32) * PUBLISHED_ISTFT_GAIN


def describe(checks: Sequence[RecoveryCheck]) -> dict[str, Any]:
    """The figures of a set of checks, for the summary and the report."""
    return {
        "requests": len(checks),
        "durations_equal": sum(check.durations_equal for check in checks),
        "forced_rel_max": max(check.forced_rel for check in checks),
        "free_rel_max": max(check.free_rel for check in checks),
    }


# Sentences of the input fixture that no calibration or sweep uses: the proof's held set.
HELD_SENTENCES = ("tongue-twister", "numbers")


@dataclass(frozen=True)
class Int8Agreement:
    """The recovered PyTorch model (at the export's gain) against the int8 export it came from."""

    name: str
    length_ratio: float  # recovered audio length / int8 audio length
    log_mel: float


@dataclass(frozen=True)
class RecoveryProof:
    """Recovered PyTorch against its float32 ONNX (exact) and the int8 export (within noise)."""

    checks: list[RecoveryCheck]
    against_int8: list[Int8Agreement]
    between_voices: list[float]  # log-mel distances between voices on the same sentence

    @property
    def noise_to_voice_ratio(self) -> float:
        """Mean int8 distance over mean between-voice distance: how far under a voice change."""
        within = np.mean([row.log_mel for row in self.against_int8])
        return float(within / np.mean(self.between_voices))

    def summary(self) -> str:
        figures = describe(self.checks)
        lengths = [abs(row.length_ratio - 1) for row in self.against_int8]
        mels = [row.log_mel for row in self.against_int8]
        return (
            f"{figures['requests']} requests: durations equal in {figures['durations_equal']}, "
            f"waveform error {figures['forced_rel_max']:.1e} with the harmonic input forced "
            f"({figures['free_rel_max']:.2f} free-running); against int8: length within "
            f"{max(lengths):.1%}, log-mel {min(mels):.2f} to {max(mels):.2f} vs "
            f"{min(self.between_voices):.2f} to {max(self.between_voices):.2f} between voices "
            f"(ratio {self.noise_to_voice_ratio:.2f})"
        )

    def write(self, folder: Path) -> Path:
        """``recovery.json`` with every figure."""
        import json

        from parity.cache import write_text_atomic
        from parity.reporting import to_jsonable

        target = Path(folder) / "recovery.json"
        document = {
            "summary": self.summary(),
            "noise_to_voice_ratio": self.noise_to_voice_ratio,
            **to_jsonable(self),
        }
        write_text_atomic(target, json.dumps(document, indent=2) + "\n")
        return target


def prove_recovery(
    model: KModel,
    fp32: Path,
    int8: Path,
    requests: Sequence[KokoroInput],
    mel_png: Path | None = None,
) -> RecoveryProof:
    """Check the recovered model on ``requests`` (sentences x voices, named ``sentence/voice``)
    against both exports; draw the first request's mel spectrograms to ``mel_png``."""
    from parity.metrics import log_mel_distance
    from parity.plots import draw, mel_comparison
    from parity.runners import OrtRunner

    graph, quantized = PublishedGraph(fp32), OrtRunner(int8)
    checks, agreements, recovered = [], [], {}
    for request in requests:
        check, free = _check_one(graph, model, request)
        checks.append(check)
        reference = quantized.infer(request).waveform
        audio = louder(free)
        recovered[request.name] = audio
        agreements.append(
            Int8Agreement(
                request.name, len(audio) / len(reference), log_mel_distance(reference, audio)
            )
        )
        if mel_png is not None and len(recovered) == 1:
            pair = {"published int8": reference, "recovered PyTorch (x1.5 gain)": audio}
            draw(mel_comparison, mel_png, pair, f"{request.name}: int8 export vs recovered")
    between = [
        log_mel_distance(recovered[a], recovered[b])
        for i, a in enumerate(recovered)
        for b in list(recovered)[i + 1 :]
        if a.split("/")[0] == b.split("/")[0]
    ]
    return RecoveryProof(checks, agreements, between)
