"""parity.measure.op_profile: where a model's time goes, read from ONNX Runtime's own profiler on
the CPU and in onnxruntime-web, and `parity profile` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parity.cli import main
from parity.core.errors import ParityError
from parity.core.spec import SAMPLE_RATE
from parity.measure import op_profile, wasm

from kokoro_graphs import FIXTURE_INPUTS, fixture_sentences, timed_tiny_kokoro

WASM_MISSING = wasm.wasm_unavailable()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return timed_tiny_kokoro(tmp_path_factory.mktemp("profile") / "tiny.onnx")


@pytest.fixture(scope="module")
def requests() -> list:
    return fixture_sentences("greeting", "question")[:3]


def _run(ts: int, dur: int) -> dict[str, object]:
    return {"cat": "Session", "name": "model_run", "ts": ts, "dur": dur}


def _kernel(node: str, op: str, ts: int, dur: int) -> dict[str, object]:
    return {"cat": "Node", "name": f"{node}_kernel_time", "ts": ts, "dur": dur,
            "args": {"op_name": op}}  # fmt: skip


def test_rows_are_kernel_seconds_per_second_of_audio_without_the_warm_up_run() -> None:
    events = [
        _run(0, 1000),
        _kernel("/dec/a/Conv", "Conv", 10, 900),  # warm-up: dropped
        _run(2000, 1000),
        _kernel("/dec/a/Conv", "Conv", 2010, 300),
        _kernel("/dec/b/Conv", "Conv", 2400, 200),
        _kernel("/enc/proj/MatMul", "MatMul", 2700, 100),
        _kernel("Transpose_token_7", "Transpose", 2850, 50),
        {"cat": "Node", "name": "/dec/a/Conv_fence_before", "ts": 2005, "dur": 5},  # not a kernel
        _kernel("/dec/a/Conv", "Conv", 5000, 999),  # outside every run: not counted
    ]
    result = op_profile.summarize(events, [SAMPLE_RATE, SAMPLE_RATE // 2], model="m", provider="x")
    assert (result.runs, result.audio_seconds, result.run_seconds) == (1, 0.5, 0.001)
    assert result.kernel_seconds == pytest.approx(650e-6)
    assert [(row.name, row.nodes) for row in result.by_op] == [
        ("Conv", 2), ("MatMul", 1), ("Transpose", 1)
    ]  # fmt: skip
    assert result.by_op[0].rtf == pytest.approx(500e-6 / 0.5)
    assert {row.name: row.nodes for row in result.by_module} == {
        "/dec/a": 1, "/dec/b": 1, "/enc/proj": 1, "(no scope: made by the optimiser)": 1
    }  # fmt: skip
    assert result.float_rtf == pytest.approx(result.kernel_seconds / 0.5)
    assert "Conv" in result.table()
    assert "/dec/a" in result.table()


def test_a_profile_missing_runs_is_refused() -> None:
    with pytest.raises(ParityError, match="1 profiled runs for 2 requests"):
        op_profile.summarize([_run(0, 10)], [100, 100], model="m", provider="x")


@pytest.mark.parametrize("provider", ["cpu", "cpu-1t", "wasm", "wasm-2t"])
def test_every_kernel_of_a_run_is_counted_once(tiny, requests, provider) -> None:
    if provider.startswith("wasm") and WASM_MISSING:
        pytest.skip(WASM_MISSING)
    result = op_profile.profile(tiny, provider, requests, warmup=1)
    tokens = sum(r.input_ids.size for r in requests[1:])
    assert result.runs == 2
    assert result.audio_seconds == pytest.approx(64 * tokens / SAMPLE_RATE)
    # A share of one profile's own span, not a time: kernels run inside their session.run,
    # so a kernel counted twice, or one of the warm-up run's, can push it past 1.
    kernel_share = result.kernel_seconds / result.run_seconds
    assert 0 < kernel_share <= 1
    by_op = {row.name: row.nodes for row in result.by_op}
    assert by_op["Conv"] == 2
    assert by_op["Tile"] == 1
    modules = {row.name: row.nodes for row in result.by_module}
    assert modules["/dec/a"] == 1
    assert modules["/dec/b"] == 1
    for rows in (result.by_op, result.by_module):
        assert sum(row.rtf for row in rows) * result.audio_seconds == pytest.approx(
            result.kernel_seconds
        )


def test_too_few_requests_for_the_warm_up_is_one_clear_line(tiny, requests) -> None:
    with pytest.raises(ParityError, match="1 request"):
        op_profile.profile(tiny, "cpu", requests[:1], warmup=1)


def test_cli_profile_prints_the_tables_and_writes_json(tiny, tmp_path, capsys) -> None:
    out = tmp_path / "profile.json"
    args = ["profile", str(tiny), "--provider", "cpu-1t", "--sentences", "greeting,question"]
    assert main([*args, "--inputs", str(FIXTURE_INPUTS), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "on cpu-1t: RTF" in printed
    assert "op type" in printed
    assert "/dec/b" in printed
    written = json.loads(out.read_text())
    assert written["runs"] == 2
    assert {row["name"] for row in written["by_op"]} >= {"Conv", "Tile"}


def test_cli_profile_of_an_unknown_sentence_is_one_clear_line(tiny, capsys) -> None:
    args = ["profile", str(tiny), "--sentences", "nope", "--inputs", str(FIXTURE_INPUTS)]
    assert main(args) == 2
    assert capsys.readouterr().err.strip().startswith("parity: error: profile: no phoneme entry")
