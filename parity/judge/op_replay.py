"""Name the op a backend computes differently: every node of one scope replayed alone on ORT CPU
from the values the backend itself fed it.

The module walk (``parity.judge.localize``) names the first module out of tolerance, but inside
a module errors compound, so its first large value need not come from its first bad kernel.
A node replayed from the backend's own inputs has no upstream drift left in it: its row is the
backend's kernel against ORT CPU's on identical inputs. A float16 node is also replayed with
its inputs widened to float32, the arithmetic float16 only rounds, so both kernels are measured
against the same exact answer and the row reads as "this many times ORT CPU's own error".
Polygraphy's ``--mark all`` compares a whole chain run twice; this judges each link.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from parity.core.cache import content_digest
from parity.core.errors import ParityError, first_line
from parity.core.graph import load_model
from parity.core.inputs import KokoroInput
from parity.core.memo import RunStore, onnxruntime_parts
from parity.core.node_side import runs_on
from parity.judge.boundaries import IntermediateSession
from parity.judge.comparators import TensorComparison, compare_tensors
from parity.judge.intermediate import expose, renamed_variants, scope_nodes, value_types
from parity.judge.runners import OrtRunner
from parity.judge.tolerances import OpReplayTolerance

__all__ = ["OpReplayReport", "OpRow", "module_scope", "replay_nodes", "replay_scope"]

# Ops whose output type an attribute or a second input fixes: widening their inputs would
# change what they compute, so they are replayed as they are.
KEEP_TYPES = frozenset({"Cast", "CastLike"})


@dataclass(frozen=True)
class OpRow:
    """One node: the backend's output and ORT CPU's, both from the backend's inputs, against
    the node in float32 arithmetic (for a float32 node: against ORT CPU's kernel)."""

    order: int
    node: str
    op_type: str
    value: str
    dtype: str
    backend: TensorComparison | None  # None: the shapes differ
    cpu: TensorComparison
    bound: float  # the tolerance's, given the CPU's error
    within: bool

    @property
    def excess(self) -> float:
        """The backend's error over its bound (above 1: out)."""
        if self.backend is None or not self.backend.finite:
            return float("inf")
        if self.bound == 0:
            return 0.0 if self.backend.rms_rel == 0 else float("inf")
        return self.backend.rms_rel / self.bound

    def describe(self) -> str:
        if self.backend is None:
            return f"{self.op_type} {self.node}: the backend's output has another shape"
        finite = "" if self.backend.finite else " NON-FINITE"
        return (
            f"{self.op_type} {self.node}: rms_rel {self.backend.rms_rel:.3g}{finite}, bound "
            f"{self.bound:.3g} (ORT CPU's kernel {self.cpu.rms_rel:.3g}), {self.dtype}"
        )

    def line(self) -> str:
        mark = " " if self.within else "!"
        backend = "shape" if self.backend is None else f"{self.backend.rms_rel:.3g}"
        return (
            f"{mark}{self.order:4d} {self.op_type:22s} {backend:>10s} {self.cpu.rms_rel:10.3g} "
            f"{self.bound:10.3g}  {self.dtype:8s} {self.node}"
        )


@dataclass(frozen=True)
class OpReplayReport:
    """Every node of ``scope`` with a tensor output, in graph order, as one backend ran it."""

    path: str
    provider: str
    scope: str
    request: str
    rows: tuple[OpRow, ...]
    notes: tuple[str, ...]  # nodes not replayed, or replayed against ORT CPU only, with why
    tolerance: OpReplayTolerance

    @property
    def failures(self) -> list[OpRow]:
        return [row for row in self.rows if not row.within]

    @property
    def first_failure(self) -> OpRow | None:
        return next(iter(self.failures), None)

    @property
    def worst(self) -> OpRow | None:
        """The row furthest over (or nearest to) its bound."""
        return max(self.rows, key=lambda row: row.excess, default=None)

    def __bool__(self) -> bool:
        return not self.failures

    def report(self) -> str:
        """The verdict and the rows that decide it: those out, else the five nearest their
        bound (``table()`` has every row)."""
        head = f"op replay of {self.scope} in {Path(self.path).name} on {self.provider}"
        first = self.first_failure
        if first is None:
            verdict = f"every op within ({self.tolerance.describe()})"
            shown = sorted(self.rows, key=lambda row: row.excess, reverse=True)[:5]
        else:
            kinds = sorted({row.op_type for row in self.failures})
            verdict = (
                f"{len(self.failures)} op(s) out ({', '.join(kinds)}); first {first.describe()}"
            )
            shown = self.failures
        rest = len(self.rows) - len(shown)
        return f"{head} ({self.request}): {verdict}\n{self.table(shown)}" + (
            f"\n  ({rest} other ops within)" if rest else ""
        )

    def table(self, rows: Sequence[OpRow] | None = None) -> str:
        lines = [
            f"  {'#':>4s} {'op':22s} {'backend':>10s} {'ORT CPU':>10s} {'bound':>10s}  "
            f"{'type':8s} node   (rms_rel against the node in float32, from the backend's "
            "inputs; ! = out)"
        ]
        lines += [row.line() for row in (self.rows if rows is None else rows)]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _values_to_expose(
    model: onnx.ModelProto, nodes: Sequence[onnx.NodeProto], types: Mapping[str, onnx.TypeProto]
) -> list[str]:
    """Every computed tensor the nodes read or write (constants are read from the file; a
    sequence is not exposed, and the nodes reading it are listed as not replayed)."""
    constants = _constant_names(model)
    names: dict[str, None] = {}
    for node in nodes:
        if node.op_type == "Constant":
            continue
        for name in [*node.input, *node.output]:
            known = types.get(name)
            tensor = known is None or known.HasField("tensor_type")
            if name and name not in constants and tensor:
                names.setdefault(name)
    return list(names)


def _constant_names(model: onnx.ModelProto) -> set[str]:
    """Names of the initializers and Constant nodes' outputs."""
    names = {tensor.name for tensor in model.graph.initializer}
    names.update(node.output[0] for node in model.graph.node if node.op_type == "Constant")
    return names


def _constants(model: onnx.ModelProto, wanted: set[str]) -> dict[str, np.ndarray]:
    """The values of the initializers and Constant nodes named in ``wanted``. Only those are
    converted: a trained model's initializers are 325 MB, and a scope reads a few."""
    values = {
        tensor.name: numpy_helper.to_array(tensor)
        for tensor in model.graph.initializer
        if tensor.name in wanted
    }
    for node in model.graph.node:
        if (
            node.op_type == "Constant"
            and node.output[0] in wanted
            and node.attribute
            and node.attribute[0].name == "value"
        ):
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _run_alone(
    model: onnx.ModelProto, node: onnx.NodeProto, inputs: Sequence[np.ndarray | None]
) -> list[np.ndarray]:
    """``node`` on ORT CPU with nothing else in its graph (and no graph optimisation)."""
    import onnxruntime as ort

    names = ["" if value is None else f"input{i}" for i, value in enumerate(inputs)]
    outputs = [f"output{i}" if name else "" for i, name in enumerate(node.output)]
    alone = helper.make_node(node.op_type, names, outputs, domain=node.domain)
    alone.attribute.extend(node.attribute)
    feed = {name: value for name, value in zip(names, inputs, strict=True) if value is not None}
    graph = helper.make_graph(
        [alone],
        "replay",
        [
            helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape
            )
            for name, value in feed.items()
        ],
        [helper.make_empty_tensor_value_info(name) for name in outputs if name],
    )
    replay = helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(
        replay.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run([name for name in outputs if name], feed)


def _widened(
    node: onnx.NodeProto, inputs: Sequence[np.ndarray | None]
) -> list[np.ndarray | None] | None:
    """The inputs with float16 widened to float32; None where there is nothing to widen."""
    halves = [value is not None and value.dtype == np.float16 for value in inputs]
    if node.op_type in KEEP_TYPES or not any(halves):
        return None
    return [
        value.astype(np.float32) if half and value is not None else value
        for value, half in zip(inputs, halves, strict=True)
    ]


def replay_nodes(
    model: onnx.ModelProto,
    nodes: Sequence[onnx.NodeProto],
    values: Mapping[str, np.ndarray],
    tolerance: OpReplayTolerance,
) -> tuple[list[OpRow], list[str]]:
    """Rows for ``nodes`` (from ``model``) given every value a backend computed for them;
    and notes on the nodes not replayed, or judged against ORT CPU's kernel alone."""
    read = {name for node in nodes for name in node.input if name and name not in values}
    known = {**_constants(model, read), **values}
    rows: list[OpRow] = []
    notes: list[str] = []
    upstream = 0
    for order, node in enumerate(nodes):
        if node.op_type == "Constant":
            continue
        if any(attribute.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
               for attribute in node.attribute):  # fmt: skip
            notes.append(f"{node.name} ({node.op_type}): holds a subgraph, not replayed")
            continue
        missing = [name for name in node.input if name and name not in known]
        if missing:
            notes.append(f"{node.name}: not replayed, the backend gave no value for {missing[0]!r}")
            continue
        inputs = [known[name] if name else None for name in node.input]
        if any(_not_finite(value) for value in inputs):
            upstream += 1  # a kernel cannot be judged on inf or NaN its inputs carry
            continue
        widened = _widened(node, inputs)
        # ORT's own errors (no kernel for the node alone, a type it refuses) are listed with
        # the node, not raised: one node ORT cannot replay does not hide the rest.
        try:
            native = _run_alone(model, node, inputs)
        except Exception as error:  # ORT raises its own pybind classes
            why = f"not replayed, ORT CPU refuses it alone: {first_line(error)}"
            notes.append(f"{node.name} ({node.op_type}): {why}")
            continue
        try:
            exact = native if widened is None else _run_alone(model, node, widened)
        except Exception as error:
            why = f"judged against ORT CPU's own kernel, no float32 replay: {first_line(error)}"
            notes.append(f"{node.name} ({node.op_type}): {why}")
            exact = native
        row = _worst_output(order, node, (native, exact), values, tolerance)
        if row is not None:
            rows.append(row)
    if upstream:
        notes.append(f"{upstream} node(s) not replayed: their inputs are not finite (upstream)")
    return rows, notes


def _not_finite(value: np.ndarray | None) -> bool:
    return value is not None and value.dtype.kind == "f" and not bool(np.isfinite(value).all())


def _worst_output(
    order: int,
    node: onnx.NodeProto,
    replayed: tuple[Sequence[np.ndarray], Sequence[np.ndarray]],
    values: Mapping[str, np.ndarray],
    tolerance: OpReplayTolerance,
) -> OpRow | None:
    """The row of the node's output the backend got furthest from the exact answer;
    ``replayed`` is ORT CPU's outputs as the node is, and with float16 widened."""
    native, exact = replayed
    found: list[OpRow] = []
    produced = [name for name in node.output if name]
    for name, cpu_out, exact_out in zip(produced, native, exact, strict=True):
        if name not in values or not isinstance(cpu_out, np.ndarray) or cpu_out.size == 0:
            continue
        reference = exact_out.astype(cpu_out.dtype) if cpu_out.dtype.kind != "f" else exact_out
        cpu = _compare(reference, cpu_out)
        backend = _compare(reference, values[name]) if values[name].shape == cpu_out.shape else None
        dtype = str(values[name].dtype)
        bound = tolerance.bound(cpu, dtype)
        within = backend is not None and backend.finite and backend.rms_rel <= bound
        row = OpRow(order, node.name, node.op_type, name, dtype, backend, cpu, bound, within)
        found.append(row)
    return max(found, key=lambda row: row.excess, default=None)


def _compare(reference: np.ndarray, candidate: np.ndarray) -> TensorComparison:
    candidate = np.asarray(candidate)
    if _not_finite(candidate):  # an overflow: no statistic to take, and out by definition
        inf = float("inf")
        return TensorComparison(tuple(candidate.shape), inf, inf, inf, float("nan"), finite=False)
    comparison = compare_tensors(reference.astype(np.float64), candidate.astype(np.float64))
    assert comparison is not None  # same shape: the caller checked
    return comparison


def replay_scope(
    path: Path,
    scope: str | Sequence[str],
    request: KokoroInput,
    tolerance: OpReplayTolerance,
    *,
    provider: str = "cpu",
    threads: int = 0,
    runs: RunStore | None = None,
    transform: Callable[[onnx.ModelProto], onnx.ModelProto] | None = None,
) -> OpReplayReport:
    """Run the file on ``provider`` with every value of ``scope`` (a prefix such as
    ``/decoder/generator/noise_res.0/``, with its renamed variants) exposed, and replay each
    node on ORT CPU. ``transform`` edits the graph the backend runs, not the nodes replayed:
    a planted kernel fault."""
    model = load_model(path)
    prefixes = [scope] if isinstance(scope, str) else list(scope)
    prefixes = [variant for prefix in prefixes for variant in renamed_variants(model, prefix)]
    nodes = scope_nodes(model, prefixes)
    types = value_types(model)
    names = _values_to_expose(model, nodes, types)
    backend_model = model if transform is None else transform(_copy(model))
    artefact = (
        content_digest(Path(path))
        if transform is None
        else hashlib.sha256(backend_model.SerializeToString()).hexdigest()
    )

    def compute() -> dict[str, np.ndarray]:
        runner = OrtRunner(
            Path(path),
            threads=threads,
            model_bytes=expose(backend_model, names, types).SerializeToString(),
            provider=provider,
        )
        return dict(zip(names, runner.run(request, names), strict=True))

    parts = onnxruntime_parts(
        artefact, request, "op-replay", threads=threads, provider=provider, names=names
    )
    values = (runs or RunStore(None)).arrays("onnxruntime", parts, compute)
    rows, notes = replay_nodes(model, nodes, values, tolerance)
    if not rows:
        raise ParityError(f"op replay: scope {prefixes[0]!r} has no node with a tensor output")
    where = f"{provider}, {runs_on(provider)}"
    return OpReplayReport(
        str(path), where, prefixes[0], request.name, tuple(rows), tuple(notes), tolerance
    )


def module_scope(
    path: Path,
    model: object,
    request: KokoroInput,
    target: str,
    *,
    runs: RunStore | None = None,
    overrides: Mapping[str, str] | None = None,
) -> str:
    """The graph scope of ``target``: a scope given as such (``/decoder/generator/``), or a
    PyTorch module path placed in the graph as the module walk places it."""
    if target.startswith("/"):
        return target if target.endswith("/") else f"{target}/"
    session = IntermediateSession.for_kokoro(
        path, model, request, modules=[target], runs=runs, overrides=overrides
    )
    boundary = session.boundaries.get(target)
    if boundary is None:
        raise ParityError(
            f"op replay: {target!r} has no scope in {Path(path).name}; give its graph scope "
            "instead (`parity compare MODEL --list-scopes` lists them)"
        )
    return boundary.prefix


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copied = onnx.ModelProto()
    copied.CopyFrom(model)
    return copied
