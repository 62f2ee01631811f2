"""Where a model's time goes, per op type and per module, on ONNX Runtime CPU or WebAssembly.

Both backends run ONNX Runtime's own profiler, so one parser reads both: on the CPU the
profile is the JSON file ``end_profiling`` writes; in onnxruntime-web (Node.js,
``web/profile.mjs``) the same events arrive on stdout. Each op's time is given per second of
audio, so the rows add up to the kernels' share of the real-time factor.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parity.core.errors import ParityError
from parity.core.inputs import KokoroInput
from parity.core.spec import SAMPLE_RATE
from parity.measure.bench import PROVIDERS, WASM_THREADS, Provider

__all__ = ["OpProfile", "OpTime", "profile", "summarize"]

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
        written = Path(runner.session.end_profiling())  # type: ignore[attr-defined]
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
