"""What a converted model gets wrong, whichever converter made it: the strict checker, an ONNX
Runtime session, redundant Casts, duplicate names, a changed interface; stored in the run store."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import onnx

from parity.builders.fp16.schema import all_nodes, declared_types
from parity.core.cache import content_digest
from parity.core.errors import ParityError, first_line
from parity.core.graph import load_model
from parity.core.jsonable import to_jsonable
from parity.core.memo import RunStore, source_digest

__all__ = ["Fp16Audit", "audit", "audit_files"]


@dataclass(frozen=True)
class Fp16Audit:
    """What a converter's output gets wrong, whichever converter made it."""

    checker_error: str | None
    runtime_error: str | None
    casts: int
    redundant_casts: tuple[str, ...]  # reading another Cast, or to the type they have
    duplicate_names: tuple[str, ...]
    changed_interface: tuple[str, ...] = ()  # graph inputs/outputs whose type changed

    def __bool__(self) -> bool:
        problems = (self.redundant_casts, self.duplicate_names, self.changed_interface)
        return not (self.checker_error or self.runtime_error or any(problems))

    def summary(self) -> str:
        problems = [
            f"onnx.checker: {self.checker_error}" if self.checker_error else "",
            f"ONNX Runtime: {self.runtime_error}" if self.runtime_error else "",
            f"{len(self.redundant_casts)} redundant Casts ({', '.join(self.redundant_casts[:3])})"
            if self.redundant_casts
            else "",
            f"duplicate names {', '.join(self.duplicate_names[:3])}"
            if self.duplicate_names
            else "",
            f"interface type changed: {', '.join(self.changed_interface)}"
            if self.changed_interface
            else "",
        ]
        found = "; ".join(p for p in problems if p)
        return f"{self.casts} Casts; " + (found or "valid, no redundant Casts")


def audit(model: onnx.ModelProto, original: onnx.ModelProto | None = None) -> Fp16Audit:
    """Check a converted model: strict checker, an ONNX Runtime session, redundant Casts.

    Given the ``original``, also that the graph's inputs and outputs kept their types (what
    ``keep_io_types`` promises).
    """
    try:
        onnx.checker.check_model(model, full_check=True)
        checker_error = None
    except Exception as error:  # the message is the finding
        checker_error = first_line(error, 200)
    runtime_error = None
    try:
        from parity.core.ort_session import open_session

        open_session(Path("<converted>"), model_bytes=model.SerializeToString())
    except ParityError as error:
        runtime_error = str(error).split("(", 1)[-1].rsplit(")", 1)[0]
    casts, redundant = _casts(model)
    nodes = list(all_nodes(model.graph))
    node_names = Counter(node.name for node in nodes if node.name)
    produced = Counter(output for node in nodes for output in node.output if output)
    # Node names and value names are separate namespaces in ONNX; each must be unique.
    duplicates = [name for counts in (node_names, produced) for name, n in counts.items() if n > 1]
    changed: list[str] = []
    if original is not None:
        before = _interface_types(original)
        changed = [name for name, kind in _interface_types(model).items() if before[name] != kind]
        already = set(_casts(original)[1])  # once: each call infers the whole graph's shapes
        redundant = [name for name in redundant if name not in already]
    return Fp16Audit(
        checker_error, runtime_error, casts, tuple(redundant), tuple(duplicates), tuple(changed)
    )


def audit_files(path: Path, original: Path, runs: RunStore | None = None) -> Fp16Audit:
    """``audit`` of the converted file at ``path`` against ``original``, from the run store
    when these two files were audited with this code and these versions before (a strict
    check of a full-size model takes about a minute)."""

    def compute() -> dict[str, object]:
        return to_jsonable(audit(load_model(path), load_model(original)))

    parts = {
        "converted": content_digest(path),
        "original": content_digest(original),
        "code": source_digest(("builders/fp16", "judge/runners.py"), ("onnx", "onnxruntime")),
    }
    found = (runs or RunStore(None)).record("fp16-audit", parts, compute)
    return Fp16Audit(
        found["checker_error"],
        found["runtime_error"],
        int(found["casts"]),
        tuple(found["redundant_casts"]),
        tuple(found["duplicate_names"]),
        tuple(found["changed_interface"]),
    )


def _casts(model: onnx.ModelProto) -> tuple[int, list[str]]:
    """How many Casts, and which are redundant: reading a Cast, or to the type they have."""
    try:
        types = declared_types(onnx.shape_inference.infer_shapes(model))
    except Exception:  # the checker reports why; judge the Casts without types
        types = {}
    nodes = list(all_nodes(model.graph))
    producers = {output: node for node in nodes for output in node.output}
    casts = [node for node in nodes if node.op_type == "Cast"]
    redundant = []
    for cast in casts:
        producer = producers.get(cast.input[0])
        to = next(attribute.i for attribute in cast.attribute if attribute.name == "to")
        if (producer is not None and producer.op_type == "Cast") or types.get(cast.input[0]) == to:
            redundant.append(cast.name or cast.output[0])
    return len(casts), redundant


def _interface_types(model: onnx.ModelProto) -> dict[str, int]:
    graph = model.graph
    return {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.output]}
