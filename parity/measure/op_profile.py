"""Where a model's time goes, per op type and per module, on ONNX Runtime CPU or WebAssembly.

Both backends run ONNX Runtime's own profiler, so one parser reads both: on the CPU the
profile is the JSON file ``end_profiling`` writes; in onnxruntime-web (Node.js,
``web/profile.mjs``) the same events arrive on stdout. Each op's time is given per second of
audio, so the rows add up to the kernels' share of the real-time factor.

The same profile says which kernels ran: ``integer_kernels`` judges whether an integer
variant's integer nodes ran as integer kernels, which a speed ratio alone cannot tell.
"""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parity.core.errors import ParityError
from parity.core.inputs import KokoroInput
from parity.core.spec import SAMPLE_RATE
from parity.measure.bench import PROVIDERS, WASM_THREADS, Provider

if TYPE_CHECKING:
    import onnx

    from parity.core.memo import RunStore

__all__ = [
    "IntegerKernels",
    "OpProfile",
    "OpTime",
    "integer_kernels",
    "integer_kernels_cached",
    "profile",
    "profile_cached",
    "summarize",
]

KERNEL_SUFFIX = "_kernel_time"
# Op types that compute in integers or convert to and from them; every other op computes in float.
INTEGER_OPS = frozenset(
    {
        "QLinearConv",
        "QLinearMatMul",
        "QLinearAdd",
        "QLinearMul",
        "QLinearLeakyRelu",
        "QLinearSigmoid",
        "QLinearConcat",
        "QLinearAveragePool",
        "QLinearGlobalAveragePool",
        "ConvInteger",
        "MatMulInteger",
        "MatMulIntegerToFloat",
        "DynamicQuantizeMatMul",
        "DynamicQuantizeLinear",
        "DynamicQuantizeLSTM",
        "QuantizeLinear",
        "DequantizeLinear",
        "QGemm",
        "MatMulNBits",
    }
)
# Conversions into and out of integers: they run around integer kernels, but alone they leave
# the arithmetic in float. Every other op of INTEGER_OPS is an integer kernel.
CONVERSION_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"})
INTEGER_KERNELS = INTEGER_OPS - CONVERSION_OPS
# Float ops that ONNX Runtime runs as one integer kernel (QLinearConv, QLinearMatMul, QGemm)
# when both their data and their weight come from DequantizeLinear nodes: a QDQ group.
QDQ_FUSED_OPS = ("Conv", "MatMul", "Gemm")


@dataclass(frozen=True)
class OpTime:
    """One row: an op type or a module, its kernels' seconds per second of audio, and how many
    nodes of it one run executes."""

    name: str
    rtf: float
    nodes: int

    def share(self, total_rtf: float) -> float:
        return self.rtf / total_rtf if total_rtf else 0.0


@dataclass(frozen=True)
class OpProfile:
    """A profiled model: its real-time factor with the profiler on, and where the kernels'
    time went (rows sorted slowest first)."""

    model: str
    provider: str
    runs: int
    audio_seconds: float
    run_seconds: float
    kernel_seconds: float
    by_op: tuple[OpTime, ...]
    by_module: tuple[OpTime, ...]

    @property
    def rtf(self) -> float:
        return self.run_seconds / self.audio_seconds

    @property
    def float_rtf(self) -> float:
        """The kernels' time outside the integer ops, per second of audio."""
        return sum(row.rtf for row in self.by_op if row.name not in INTEGER_OPS)

    def table(self, top: int = 12) -> str:
        kernel_rtf = self.kernel_seconds / self.audio_seconds
        lines = [
            f"{self.model} on {self.provider}: RTF {self.rtf:.3f} with the profiler on, "
            f"{self.runs} run(s), {self.audio_seconds:.1f} s of audio; kernels {kernel_rtf:.3f}, "
            f"of which float ops {self.float_rtf:.3f}",
        ]
        for title, rows in (("op type", self.by_op), ("module", self.by_module)):
            lines.append(f"  {title:<44} {'RTF':>7} {'share':>6} {'nodes':>6}")
            for row in rows[:top]:
                lines.append(
                    f"  {row.name:<44} {row.rtf:7.3f} {row.share(kernel_rtf):6.1%} {row.nodes:6d}"
                )
        return "\n".join(lines)


def module_of(node: str, depth: int = 4) -> str:
    """The exporter scope a node came from, cut to ``depth`` components
    (``/decoder/decoder/generator/resblocks.3``); nodes the optimiser made have none."""
    if not node.startswith("/"):
        return "(no scope: made by the optimiser)"
    parts = node.strip("/").split("/")[:-1][:depth]  # the last component names the node itself
    return "/" + "/".join(parts)


def summarize(
    events: Iterable[dict[str, Any]],
    samples: Sequence[int],
    *,
    model: str,
    provider: str,
    warmup: int = 1,
) -> OpProfile:
    """Aggregate ORT profiler events of ``len(samples)`` runs, dropping the first ``warmup``."""
    events = list(events)
    runs = sorted(
        (e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
        key=lambda e: int(e["ts"]),
    )
    if len(runs) != len(samples):
        raise ParityError(
            f"profile: {model}: {len(runs)} profiled runs for {len(samples)} requests; "
            "the profile is incomplete"
        )
    kept = runs[warmup:]
    if not kept:
        raise ParityError(f"profile: {model}: no run left after {warmup} warm-up run(s)")
    spans = [(int(r["ts"]), int(r["ts"]) + int(r["dur"])) for r in kept]
    by_op: dict[str, float] = defaultdict(float)
    by_module: dict[str, float] = defaultdict(float)
    op_nodes: dict[str, set[str]] = defaultdict(set)
    module_nodes: dict[str, set[str]] = defaultdict(set)
    for event in events:
        name = str(event.get("name", ""))
        if event.get("cat") != "Node" or not name.endswith(KERNEL_SUFFIX):
            continue
        start = int(event["ts"])
        if not any(low <= start <= high for low, high in spans):
            continue
        node = name[: -len(KERNEL_SUFFIX)]
        op = str(event.get("args", {}).get("op_name", "?"))
        module = module_of(node)
        seconds = int(event["dur"]) / 1e6
        by_op[op] += seconds
        by_module[module] += seconds
        op_nodes[op].add(node)
        module_nodes[module].add(node)
    audio = sum(samples[warmup:]) / SAMPLE_RATE
    return OpProfile(
        model=model,
        provider=provider,
        runs=len(kept),
        audio_seconds=audio,
        run_seconds=sum(int(r["dur"]) for r in kept) / 1e6,
        kernel_seconds=sum(by_op.values()),
        by_op=_rows(by_op, op_nodes, audio),
        by_module=_rows(by_module, module_nodes, audio),
    )


def _rows(
    seconds: dict[str, float], nodes: dict[str, set[str]], audio: float
) -> tuple[OpTime, ...]:
    rows = (OpTime(name, total / audio, len(nodes[name])) for name, total in seconds.items())
    return tuple(sorted(rows, key=lambda row: -row.rtf))


def profile(
    path: Path, provider: Provider, requests: Sequence[KokoroInput], *, warmup: int = 1
) -> OpProfile:
    """Run ``requests`` (the first ``warmup`` of them untimed) on ``provider`` with ORT's
    profiler on, and say where the time went."""
    if provider not in PROVIDERS:
        raise ParityError(f"profile: unknown provider {provider!r}; use {', '.join(PROVIDERS)}")
    if len(requests) <= warmup:
        raise ParityError(
            f"profile: {len(requests)} request(s) for {warmup} warm-up run(s); give more"
        )
    if provider in WASM_THREADS:
        events, samples = _wasm_events(Path(path), requests, WASM_THREADS[provider])
    else:
        events, samples = _cpu_events(Path(path), requests, threads=0 if provider == "cpu" else 1)
    return summarize(events, samples, model=Path(path).name, provider=provider, warmup=warmup)


def _cpu_events(
    path: Path, requests: Sequence[KokoroInput], threads: int
) -> tuple[list[dict[str, Any]], list[int]]:
    from parity.judge.runners import OrtRunner

    with tempfile.TemporaryDirectory(prefix="parity-profile-") as folder:
        runner = OrtRunner(path, threads=threads, profile_prefix=str(Path(folder) / "ort"))
        samples = [int(runner.run(r, [runner.audio_name])[0].size) for r in requests]
        written = Path(runner.session.end_profiling())
        events: list[dict[str, Any]] = json.loads(written.read_text())
    return events, samples


def _wasm_events(
    path: Path, requests: Sequence[KokoroInput], threads: int
) -> tuple[list[dict[str, Any]], list[int]]:
    from parity.measure.wasm import SCRIPT, WEB_DIR, request_message, wasm_unavailable

    reason = wasm_unavailable()
    if reason is not None:
        raise ParityError(f"profile: wasm: {reason}")
    payload = [request_message(r) for r in requests]
    # stdout to a file, not a pipe: the WebAssembly build writes the events synchronously and
    # stalls Node on a full pipe (seen here with a 6,000-event profile).
    with tempfile.TemporaryDirectory(prefix="parity-profile-") as folder:
        requests_path, out_path = Path(folder) / "requests.json", Path(folder) / "out.txt"
        requests_path.write_text(json.dumps(payload))
        started = time.perf_counter()
        with out_path.open("w") as out:
            done = subprocess.run(
                ["node", str(SCRIPT.with_name("profile.mjs")), str(path.resolve()), str(threads),
                 str(requests_path)],
                cwd=WEB_DIR,
                stdout=out,
                stderr=subprocess.PIPE,
                text=True,
                check=False,
            )  # fmt: skip
        text = out_path.read_text()
    lines = text.splitlines()
    head = json.loads(lines[0]) if lines and lines[0].startswith("{") else {}
    if done.returncode != 0 or "runs" not in head:
        detail = head.get("error") or (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ParityError(
            f"profile: wasm: {path}: onnxruntime-web stopped after "
            f"{time.perf_counter() - started:.0f} s ({str(detail)[:300]})"
        )
    # The events are printed one per line, each followed by a comma except the last.
    events = [json.loads(line.rstrip(",")) for line in lines[1:] if line.startswith('{"cat"')]
    return events, [int(run["samples"]) for run in head["runs"]]


def profile_cached(
    path: Path,
    provider: Provider,
    requests: Sequence[KokoroInput],
    *,
    warmup: int = 1,
    runs: RunStore,
) -> OpProfile:
    """``profile`` through the run store: the same file on the same machine, runtimes and
    requests is read back, not profiled again (``--parity-rerun`` profiles again)."""
    from dataclasses import replace

    from parity.core.cache import content_digest
    from parity.core.jsonable import to_jsonable
    from parity.core.memo import request_digest, source_digest
    from parity.measure.bench import machine_identity

    parts = {
        "model": content_digest(Path(path)),
        "provider": provider,
        "requests": [request_digest(request) for request in requests],
        "warmup": warmup,
        "machine": machine_identity(),
        "code": source_digest(
            ("measure/op_profile.py", "measure/wasm.py", "measure/web", "judge/runners.py"), ()
        ),
    }

    def compute() -> Any:
        return to_jsonable(profile(path, provider, requests, warmup=warmup))

    stored = runs.record("op-profile", parts, compute)
    return replace(_profile_from_json(stored), model=Path(path).name)


def _profile_from_json(data: Mapping[str, Any]) -> OpProfile:
    rows = {key: tuple(OpTime(**row) for row in data[key]) for key in ("by_op", "by_module")}
    return OpProfile(**{**data, **rows})


@dataclass(frozen=True)
class IntegerKernels:
    """An integer variant's integer nodes against the integer kernels ONNX Runtime's profile
    counts. A variant whose kernels fell back to float ops can still be fast enough for its
    speed bound; this tells it apart. A graph that quantizes nothing (float32, float16, int8
    weights dequantized before float ops) has nothing to check."""

    model: str
    provider: str
    graph: Mapping[str, int]  # the graph's integer nodes by op type; QDQ groups as "QDQ <op>"
    ran: Mapping[str, int]  # the profile's integer kernels and conversions, by op type
    min_share: float  # tolerances.INTEGER_KERNELS_RAN

    @property
    def expected(self) -> int:
        """Integer kernels the graph asks for: its integer nodes and QDQ groups."""
        return sum(count for op, count in self.graph.items() if op not in CONVERSION_OPS)

    @property
    def kernels(self) -> int:
        return sum(count for op, count in self.ran.items() if op in INTEGER_KERNELS)

    @property
    def integer(self) -> bool:
        """The graph asks for integer arithmetic: integer nodes, QDQ groups, or activations
        quantized (which only an integer kernel would read)."""
        quantizes = {"QuantizeLinear", "DynamicQuantizeLinear"} & set(self.graph)
        return self.expected > 0 or bool(quantizes)

    @property
    def needed(self) -> int:
        return max(1, math.ceil(self.min_share * self.expected))

    def __bool__(self) -> bool:
        return not self.integer or self.kernels >= self.needed

    def summary(self) -> str:
        head = f"{self.model} on {self.provider}: "
        if not self.integer:
            return head + "no integer nodes in the graph, no integer kernel to check"
        counts = f"ran {_counts(self.ran) or 'no integer op'}; graph {_counts(self.graph)}"
        if self:
            return (
                f"{head}{self.kernels} integer kernel(s) ran for the graph's {self.expected} "
                f"integer node(s); {counts}"
            )
        return (
            f"{head}integer kernels lost: {self.kernels} integer kernel(s) ran where the graph "
            f"asks for at least {self.needed}; {counts}"
        )


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{count} {op}" for op, count in sorted(counts.items()))


def integer_kernels(
    model: onnx.ModelProto, measured: OpProfile, *, min_share: float | None = None
) -> IntegerKernels:
    """Judge a profile of ``model`` by the graph: did its integer nodes run as integer
    kernels? ``min_share`` defaults to ``tolerances.INTEGER_KERNELS_RAN``."""
    from parity.judge.tolerances import INTEGER_KERNELS_RAN

    ran = {row.name: row.nodes for row in measured.by_op if row.name in INTEGER_OPS}
    share = INTEGER_KERNELS_RAN if min_share is None else min_share
    return IntegerKernels(measured.model, measured.provider, integer_nodes(model), ran, share)


def integer_nodes(model: onnx.ModelProto) -> dict[str, int]:
    """The main graph's integer nodes by op type, and its QDQ groups (a Conv, MatMul or Gemm
    whose data and weight come from DequantizeLinear) as "QDQ <op>". A branch's nodes are
    left out: a request may not run them."""
    producers = {output: node.op_type for node in model.graph.node for output in node.output}
    counts: Counter[str] = Counter()
    for node in model.graph.node:
        if node.op_type in INTEGER_OPS:
            counts[node.op_type] += 1
        elif _qdq_group(node, producers):
            counts[f"QDQ {node.op_type}"] += 1
    return dict(counts)


def _qdq_group(node: onnx.NodeProto, producers: Mapping[str, str]) -> bool:
    data_and_weight = node.input[:2]
    return (
        node.op_type in QDQ_FUSED_OPS
        and len(data_and_weight) == 2
        and all(producers.get(name) == "DequantizeLinear" for name in data_and_weight)
    )


def integer_kernels_cached(
    path: Path,
    provider: Provider,
    request: KokoroInput,
    *,
    runs: RunStore,
    name: str | None = None,
) -> IntegerKernels:
    """``integer_kernels`` of one request's profile on ``provider``, through the run store,
    named ``name`` (default: the file's name); a graph with no integer nodes is not profiled."""
    from dataclasses import replace

    from parity.core.graph import load_model
    from parity.judge.tolerances import INTEGER_KERNELS_RAN

    model = load_model(Path(path), external_data=False)
    label = name or Path(path).name
    unprofiled = IntegerKernels(label, provider, integer_nodes(model), {}, INTEGER_KERNELS_RAN)
    if not unprofiled.integer:
        return unprofiled
    measured = profile_cached(path, provider, [request], warmup=0, runs=runs)
    return integer_kernels(model, replace(measured, model=label))
