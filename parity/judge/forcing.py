"""Forcing: an exported Kokoro run with its generator's inputs exposed, and PyTorch's generator
run on exactly those tensors.

Kokoro's generator is chaotic in its F0 (``parity.judge.checks``), so parity is judged on the
forced generator: ONNX Runtime's generator inputs, harmonic source and harmonic input (the
source's STFT, magnitude and phase) fed to PyTorch's generator. Any layout and any wrapper
prefix works: the interface comes from ``parity.core.interface``, the generator's place from
``parity.core.scopes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from parity.builders.forced_timing import (
    PREDICTED_OUTPUT,
    duration_chain,
)
from parity.core.cache import content_digest
from parity.core.errors import ParityError
from parity.core.graph import load_model
from parity.core.inputs import KokoroInput
from parity.core.interface import KokoroInterface, find_interface
from parity.core.memo import RunStore, array_digest, onnxruntime_parts, torch_parts
from parity.core.scopes import locate_module
from parity.judge.comparators import TensorComparison, match_layout
from parity.judge.intermediate import expose, onnx_scope_prefixes, scope_boundary, value_types
from parity.judge.runners import OrtRunner

__all__ = [
    "DURATION_HEAD",
    "GENERATOR",
    "SOURCE",
    "ForcedGenerator",
    "ForcingPlan",
    "ForcingRun",
    "ForcingSession",
    "forced_generator",
    "forced_generator_cached",
    "harmonic_source",
    "match_generator_inputs",
    "plan_forcing",
]

GENERATOR = "decoder.generator"
DURATION_HEAD = "predictor.duration_proj"  # kokoro's: durations = sigmoid(its output).sum(-1)
SOURCE = "decoder.generator.m_source"
GENERATOR_ARGS = ("features", "style", "f0")
INPUT_PREFIX = "generator-input:"
FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE}


def harmonic_source(
    model: onnx.ModelProto, prefix: str, types: dict[str, onnx.TypeProto] | None = None
) -> str:
    """The value the generator's harmonic source (``m_source``, nodes under ``prefix``) hands
    to the generator.

    An optimised graph (ORT's pre-processing for quantization) can also export a Shape from
    the source's scope, and the dynamo exporter's common-subexpression pass shares its index
    arithmetic (a Floor, a Mul) with the STFT. The source is the module's return value: its
    last float output in node order.
    """
    outputs = scope_boundary(model, prefix).outputs
    if len(outputs) == 1:
        return outputs[0]
    types = types if types is not None else value_types(model)
    floats = [name for name in outputs if types[name].tensor_type.elem_type in FLOAT_TYPES]
    if not floats:
        raise ParityError(f"parity: no float output of {prefix}, found {outputs}")
    return floats[-1]


@dataclass(frozen=True)
class ForcingPlan:
    """What a forcing session exposes: the graph's interface, its generator's inputs and
    harmonic source, and where its durations come from."""

    interface: KokoroInterface
    generator_prefix: str
    generator_inputs: tuple[str, ...]
    source: str
    durations: str | None  # a graph output, the duration chain, or None: not comparable
    harmonics: str | None = None  # the source's STFT as the first noise conv reads it
    unrounded: str | None = None  # the durations before the chain's Round

    def durations_note(self) -> str | None:
        """What the durations check could use, where the graph gives no durations output."""
        if self.durations is None:
            return (
                "durations: the graph outputs none and has no Round -> Clip -> Cast(int64) "
                "chain to read them from; not compared"
            )
        if self.durations != self.interface.durations:
            return (
                f"durations: the graph outputs none; read from its duration chain "
                f"({self.durations})"
            )
        return None


def plan_forcing(
    model: onnx.ModelProto,
    where: str,
    scopes: Mapping[str, str],
    types: dict[str, onnx.TypeProto] | None = None,
) -> ForcingPlan:
    """Find the generator, its source and the durations in ``model`` (``scopes``: module path
    -> graph prefix overrides, for what the names do not say; ``types``: ``value_types(model)``
    where the caller has it)."""
    interface = find_interface(model, where)
    present = onnx_scope_prefixes(model)
    generator_prefix = locate_module(GENERATOR, present, scopes)
    source_prefix = locate_module(SOURCE, present, scopes)
    generator = scope_boundary(model, generator_prefix)
    source = harmonic_source(model, source_prefix, types)
    chain = duration_chain(model.graph)
    return ForcingPlan(
        interface,
        generator_prefix,
        generator.inputs,
        source,
        interface.durations or (chain.durations if chain else None),
        harmonic_input(model, generator_prefix),
        chain.unrounded if chain else None,
    )


def harmonic_input(model: onnx.ModelProto, generator_prefix: str) -> str | None:
    """The harmonic input (``cat(magnitude, phase)`` of the source's STFT) as the generator's
    first noise convolution reads it; None where that convolution has no scope of its own."""
    scope = f"{generator_prefix}noise_convs.0/"
    for node in model.graph.node:
        if node.name.startswith(scope) and node.op_type == "Conv":
            return node.input[0]
    # An int8 graph's convolution is integer (ConvInteger, or an im2col GEMM): the float value
    # its scope reads, before quantizing.
    if not any(node.name.startswith(scope) for node in model.graph.node):
        return None
    inputs = scope_boundary(model, scope).inputs
    return inputs[0] if inputs else None


@dataclass(frozen=True)
class ForcingRun:
    """ONNX Runtime's outputs plus the tensors its generator read and its harmonic source."""

    waveform: np.ndarray
    durations: np.ndarray | None  # None: the graph gives none (ForcingSession.durations_note)
    generator_inputs: dict[str, np.ndarray]
    source: np.ndarray
    durations_note: str | None = None
    harmonics: np.ndarray | None = None
    unrounded: np.ndarray | None = None  # the durations before rounding, where the graph has them


class ForcingSession:
    """An exported Kokoro whose graph also outputs its generator's inputs and source.

    Works on any layout (``parity.core.interface``) and any wrapper prefix
    (``parity.core.scopes``); ``scopes`` overrides a module's prefix. The session opens on
    the first run the store does not already hold, so a warm run that changed nothing loads
    no model.
    """

    def __init__(
        self,
        path: Path,
        *,
        threads: int = 0,
        runs: RunStore | None = None,
        scopes: Mapping[str, str] | None = None,
        provider: str = "cpu",
    ) -> None:
        self.path = Path(path)
        self.threads = threads
        self.provider = provider
        self.runs = runs or RunStore(None)
        self.scopes = dict(scopes or {})
        self._plan: ForcingPlan | None = None
        self._runners: dict[bool, OrtRunner] = {}

    def _runner(self, forced: bool) -> tuple[OrtRunner, ForcingPlan]:
        """The session (``forced``: timing rewired to an input), opened on first use. The
        exposed model is not kept: the forced one is only needed where a token moved."""
        if forced not in self._runners:
            model = load_model(self.path)
            # Shape inference takes seconds, and a second runner (timing forced, only where a
            # token moved) repeats it: cheaper than keeping the ~330 MB model between runners.
            types = value_types(model)
            plan = plan_forcing(model, str(self.path), self.scopes, types)
            extra = (
                [plan.durations]
                if plan.durations and plan.durations != plan.interface.durations
                else []
            )
            harmonics = [plan.harmonics] if plan.harmonics else []
            unrounded = [plan.unrounded] if plan.unrounded else []
            names = [*extra, *plan.generator_inputs, plan.source, *harmonics, *unrounded]
            self._runners[forced] = OrtRunner(
                self.path,
                threads=self.threads,
                model_bytes=expose(model, names, types).SerializeToString(),
                provider=self.provider,
                force_timing=forced,
            )
            self._plan = plan
        assert self._plan is not None
        return self._runners[forced], self._plan

    def _compute(
        self, request: KokoroInput, forced: np.ndarray | None
    ) -> dict[str, np.ndarray | None]:
        runner, plan = self._runner(forced is not None)
        # Forced, the graph reads its durations from an input and reports its own as
        # PREDICTED_OUTPUT (parity.builders.forced_timing).
        if forced is not None:
            durations = [PREDICTED_OUTPUT]
        else:
            durations = [plan.durations] if plan.durations else []
        harmonics = [plan.harmonics] if plan.harmonics else []
        unrounded = [plan.unrounded] if plan.unrounded else []
        waveform, *values = runner.run(
            request,
            [
                runner.audio_name,
                *durations,
                *plan.generator_inputs,
                plan.source,
                *harmonics,
                *unrounded,
            ],
            forced,
        )
        found = values.pop(0) if durations else None
        before_rounding = values.pop() if unrounded else None
        heard = values.pop() if harmonics else None
        named = {
            f"{INPUT_PREFIX}{name}": value
            for name, value in zip(plan.generator_inputs, values[:-1], strict=True)
        }
        note = plan.durations_note()
        return {
            "waveform": waveform,
            "durations": found,
            "source": values[-1],
            "durations_note": None if note is None else np.asarray(note),
            "harmonics": heard,
            "unrounded": before_rounding,
            **named,
        }

    def run(self, request: KokoroInput, durations: np.ndarray | None = None) -> ForcingRun:
        """The graph on ``request``; with ``durations``, timing forced to them (the graph
        must have a duration chain: ``parity.builders.forced_timing``)."""
        forced = None if durations is None else np.asarray(durations, np.int64).reshape(1, -1)
        parts = onnxruntime_parts(
            content_digest(self.path),
            request,
            "forcing",
            threads=self.threads,
            provider=self.provider,
            scopes=self.scopes,
            **({} if forced is None else {"forced": array_digest(forced)}),
        )
        values = self.runs.arrays("onnxruntime", parts, lambda: self._compute(request, forced))
        inputs = {
            name[len(INPUT_PREFIX) :]: value
            for name, value in values.items()
            if name.startswith(INPUT_PREFIX)
        }
        found = values.get("durations")
        note = values.get("durations_note")
        unrounded = values.get("unrounded")
        return ForcingRun(
            values["waveform"].reshape(-1),
            None if found is None else found.reshape(-1),
            inputs,
            values["source"],
            None if note is None else str(note),
            values.get("harmonics"),
            None if unrounded is None else unrounded.reshape(-1),
        )


def match_generator_inputs(
    torch_args: list[np.ndarray], onnx_values: dict[str, np.ndarray]
) -> list[tuple[str, str, TensorComparison, np.ndarray]]:
    """Pair each PyTorch generator argument with the ONNX value that holds it."""
    pairs = []
    for name, reference in zip(GENERATOR_ARGS, torch_args, strict=False):
        best: tuple[str, TensorComparison, np.ndarray] | None = None
        for value_name, value in onnx_values.items():
            matched = match_layout(reference, value)
            if matched and (best is None or matched[0].rms_rel < best[1].rms_rel):
                best = (value_name, matched[0], matched[1])
        if best is None:
            raise ParityError(
                f"parity: no input of the graph's generator has the shape of PyTorch's {name} "
                f"{list(reference.shape)}; found {[list(v.shape) for v in onnx_values.values()]}"
            )
        pairs.append((name, best[0], best[1], best[2]))
    return pairs


@dataclass(frozen=True)
class ForcedGenerator:
    """PyTorch's generator run on ONNX Runtime's inputs, harmonic source and harmonic input:
    its audio; PyTorch's own source from the same F0 (empty when ORT's has another layout,
    and then not swapped); the F0 the source read (for a random source's draws); and
    PyTorch's STFT of ORT's source (empty where ORT's harmonic input was not swapped in)."""

    audio: np.ndarray
    torch_source: np.ndarray
    source_input: np.ndarray
    torch_harmonics: np.ndarray


def forced_generator(
    model: object,
    args: list[np.ndarray],
    onnx_source: np.ndarray,
    onnx_harmonics: np.ndarray | None = None,
) -> ForcedGenerator:
    """PyTorch's generator on ONNX Runtime's inputs, its harmonic source swapped for ORT's and,
    where given, its harmonic input too: STFTs differ in how they round a phase near +-pi
    (the published graph's atan2 gives -pi where torch gives +pi), and a phase that jumps by
    2 pi moves the audio though the spectra agree. The STFT is judged on its own instead
    (``compare_spectra``), on the same input."""
    import torch

    generator = model.decoder.generator  # type: ignore[attr-defined]
    seen: list[np.ndarray] = []
    read: list[np.ndarray] = []
    spectra: list[np.ndarray] = []

    def swap_source(_module: object, inputs: tuple, output: tuple) -> tuple:
        seen.append(output[0].numpy().copy())
        read.append(inputs[0].numpy().copy())
        matched = match_layout(seen[0], onnx_source)
        if matched is None:
            return output
        return (torch.from_numpy(np.ascontiguousarray(matched[1], dtype=np.float32)), *output[1:])

    original = generator.stft.transform

    def swap_harmonics(waveform: object) -> tuple:
        magnitude, phase = original(waveform)
        ours = torch.cat([magnitude, phase], dim=1).numpy()
        matched = match_layout(ours, onnx_harmonics) if onnx_harmonics is not None else None
        if matched is None:
            return magnitude, phase
        spectra.append(ours)
        forced = torch.from_numpy(np.ascontiguousarray(matched[1], dtype=np.float32))
        bins = magnitude.shape[1]
        return forced[:, :bins], forced[:, bins:]

    handle = generator.m_source.register_forward_hook(swap_source)
    generator.stft.transform = swap_harmonics
    try:
        with torch.no_grad():
            tensors = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in args]
            audio = generator(*tensors).numpy().reshape(-1)
    finally:
        handle.remove()
        del generator.stft.transform
    empty = np.zeros(0, np.float32)
    return ForcedGenerator(
        audio,
        seen[0] if seen else empty,
        read[0] if read else empty,
        spectra[0] if spectra else empty,
    )


def forced_generator_cached(
    model: object,
    args: list[np.ndarray],
    onnx_source: np.ndarray,
    onnx_harmonics: np.ndarray | None,
    runs: RunStore,
) -> ForcedGenerator:
    """``forced_generator`` through the store, keyed by the weights and the forced tensors."""
    forced_digest = array_digest(*args, onnx_source, onnx_harmonics)
    parts = torch_parts(model, None, "forced", forced=forced_digest)

    def compute() -> dict[str, np.ndarray]:
        forced = forced_generator(model, args, onnx_source, onnx_harmonics)
        return {
            "audio": forced.audio,
            "torch_source": forced.torch_source,
            "source_input": forced.source_input,
            "torch_harmonics": forced.torch_harmonics,
        }

    values = runs.arrays("torch", parts, compute)
    return ForcedGenerator(
        values["audio"], values["torch_source"], values["source_input"], values["torch_harmonics"]
    )
