"""Export Kokoro to ONNX with the TorchScript or the dynamo exporter; each attempt is a result.

The graph has the interface kokoro.js and the onnx-community export use: ``input_ids`` int64
[1, L], ``style`` float32 [1, 256], ``speed`` float32 [1] in; ``waveform`` float32 and
``durations`` int64 out. A failed export is a result too (error class and first line), so
the export matrix can record what works today and what does not.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
import torch

from parity.builders.dynamo import export_dynamo
from parity.builders.export_warnings import exporter_warnings
from parity.builders.padding import padding_as_pad
from parity.core.cache import ArtifactCache, CacheKey, atomic_path
from parity.core.errors import first_line
from parity.core.memo import source_digest, state_digest
from parity.core.spec import DEFAULT_OPSET, Exporter, KokoroSpec, Padding

INPUT_NAMES = ("input_ids", "style", "speed")
OUTPUT_NAMES = ("waveform", "durations")
# The modules whose source shapes an exported graph; their text is part of the cache key.
_SHAPING_MODULES = (
    "builders/model.py",
    "builders/stft.py",
    "builders/dft.py",
    "builders/export.py",
    "builders/padding.py",
    "builders/dynamo.py",
    "core/scopes.py",
)


@dataclass(frozen=True)
class ExportResult:
    """One export attempt: what was asked, what came out or why not, and how long it took."""

    exporter: Exporter
    stft: str
    seconds: float
    path: Path | None = None
    opset: int | None = None
    node_count: int | None = None
    size_bytes: int | None = None
    error_class: str | None = None
    error_line: str | None = None
    warnings: tuple[str, ...] = field(default=(), repr=False)
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.path is not None

    def summary(self) -> str:
        if not self.ok:
            return (
                f"{self.exporter}/{self.stft}: failed in {self.seconds:.1f}s: "
                f"{self.error_class}: {self.error_line}"
            )
        origin = (
            f"from cache (exported in {self.seconds:.1f}s)"
            if self.cached
            else f"exported in {self.seconds:.1f}s"
        )
        return (
            f"{self.exporter}/{self.stft}: {origin}, opset {self.opset}, "
            f"{self.node_count} nodes, {(self.size_bytes or 0) / 1e6:.1f} MB, "
            f"{len(self.warnings)} exporter warnings"
        )


@contextlib.contextmanager
def _forward_with_tokens(model: Any) -> Iterator[Any]:
    """Make ``model(input_ids, style, speed)`` call ``KModel.forward_with_tokens``.

    Exporting KModel itself (not a wrapper) keeps the node names the TorchScript exporter
    derives from module scopes free of a wrapper prefix: ``/decoder/generator/...``.
    """
    model.forward = model.forward_with_tokens
    try:
        yield model
    finally:
        del model.forward


def trace_inputs(
    seed: int = 0, length: int = 24
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seeded example to trace with; the token axis is dynamic, so its length is incidental."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 178, (1, length), generator=generator)
    ids[0, 0] = ids[0, -1] = 0
    style = torch.randn(1, 256, generator=generator) * 0.15
    return ids, style, torch.ones(1)


def _innermost(error: BaseException) -> BaseException:
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def _run_exporter(model: torch.nn.Module, target: Path, exporter: Exporter, opset: int) -> None:
    args = trace_inputs()
    if exporter == "torchscript":
        torch.onnx.export(
            model,
            args,
            str(target),
            dynamo=False,
            opset_version=opset,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={
                "input_ids": {1: "sequence_length"},
                "waveform": {0: "num_samples"},
                "durations": {0: "sequence_length"},
            },
        )
    else:
        export_dynamo(
            model,
            args,
            str(target),
            opset=opset,
            input_names=INPUT_NAMES,
            output_names=OUTPUT_NAMES,
        )


def export_kokoro(
    model: torch.nn.Module,
    out: Path,
    *,
    exporter: Exporter = "torchscript",
    opset: int = DEFAULT_OPSET,
    stft: str = "exact",
    padding: Padding = "pad",
) -> ExportResult:
    """Export ``model`` to ``out`` (written atomically); a failure is returned, not raised.
    ``padding``: "pad" writes the LSTM encoders' padding as Pad, "scatter" as kokoro wrote
    it (ScatterND; ``parity.builders.padding``)."""
    out = Path(out)
    start = time.perf_counter()
    noted: list[str] = []
    try:
        with atomic_path(out) as temporary:
            # The dynamo path has encoders of its own, which do not pad (builders/dynamo.py).
            as_pad = padding == "pad" and exporter == "torchscript"
            padded = padding_as_pad(model) if as_pad else contextlib.nullcontext()
            with _forward_with_tokens(model), padded, exporter_warnings() as noted:
                _run_exporter(model, temporary, exporter, opset)
            onnx.checker.check_model(str(temporary))
    except Exception as error:  # an exporter can fail in any way; the attempt records how
        cause = _innermost(error)
        return ExportResult(
            exporter,
            stft,
            time.perf_counter() - start,
            error_class=type(cause).__name__,
            error_line=first_line(cause),
            warnings=tuple(noted),
        )
    graph = onnx.load(str(out), load_external_data=False)
    opset_used = next((o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")), None)
    return ExportResult(
        exporter,
        stft,
        time.perf_counter() - start,
        path=out,
        opset=opset_used,
        node_count=len(graph.graph.node),
        size_bytes=out.stat().st_size,
        warnings=tuple(noted),
    )


def code_version() -> str:
    """Hash of the source of the modules that shape an export, plus library versions."""
    return source_digest(_SHAPING_MODULES, ("torch", "onnx", "kokoro", "transformers"))[:16]


def export_cached(
    cache: ArtifactCache,
    spec: KokoroSpec,
    model: torch.nn.Module,
    *,
    exporter: Exporter = "torchscript",
    opset: int = DEFAULT_OPSET,
    padding: Padding = "pad",
) -> ExportResult:
    """``export_kokoro`` through the cache, keyed by everything that shapes the graph.

    A failed attempt is not cached: it is cheap to repeat and may pass after an upgrade.
    """
    key = CacheKey(
        "export",
        {
            "spec": spec.key_parts(),
            "weights": state_digest(model),
            "exporter": exporter,
            "opset": opset,
            "padding": padding,
            "code": code_version(),
        },
    )
    attempts: list[ExportResult] = []

    def build(target: Path) -> dict[str, Any]:
        result = export_kokoro(
            model, target, exporter=exporter, opset=opset, stft=spec.stft, padding=padding
        )
        attempts.append(result)
        if not result.ok:
            raise _ExportFailedError(result)
        return {
            "seconds": result.seconds,
            "opset": result.opset,
            "node_count": result.node_count,
            "warnings": list(result.warnings),
        }

    try:
        artefact = cache.get_or_build(key, ".onnx", build)
    except _ExportFailedError as failed:
        return failed.result
    meta = artefact.meta
    return ExportResult(
        exporter,
        spec.stft,
        attempts[0].seconds if attempts else float(meta["seconds"]),
        path=artefact.path,
        opset=int(meta["opset"]),
        node_count=int(meta["node_count"]),
        size_bytes=int(meta["size"]),
        warnings=tuple(meta.get("warnings", ())),
        cached=artefact.hit,
    )


class _ExportFailedError(Exception):
    def __init__(self, result: ExportResult) -> None:
        super().__init__(result.error_line)
        self.result = result
