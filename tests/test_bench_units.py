"""parity.measure.bench and .wasm on a small graph: records, ratios, the Node.js backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from parity.core import node_side
from parity.core.errors import ParityError
from parity.core.spec import SAMPLE_RATE
from parity.measure import bench, wasm

from kokoro_graphs import FIXTURE_INPUTS, fixture_sentences, timed_tiny_kokoro

WASM_MISSING = wasm.wasm_unavailable()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return timed_tiny_kokoro(tmp_path_factory.mktemp("bench") / "tiny.onnx")


@pytest.fixture(scope="module")
def requests() -> list:
    return fixture_sentences("greeting")[:1]


@pytest.mark.parametrize("provider", bench.BENCH_PROVIDERS)
def test_measure_reports_the_audio_it_timed(tiny, requests, provider) -> None:
    if provider.startswith("wasm") and WASM_MISSING:
        pytest.skip(WASM_MISSING)
    if provider == "webgpu" and node_side.browser_unavailable():
        pytest.skip(f"browser: {node_side.browser_unavailable()}")
    records = bench.measure({"a": tiny, "b": tiny}, provider, requests, repeats=3)
    # WebGPU's records name the adapter, and a software one's say theirs is no GPU's time.
    notes = {record.note for record in records}
    if provider == "webgpu":
        (note,) = notes
        assert ("software adapter" in note) == ("not a GPU's time" in note), note
        assert all(f"[{note}]" in record.line() for record in records)
    else:
        assert notes == {""}
    assert [record.model for record in records] == ["a", "b"]
    samples = 64 * requests[0].input_ids.size  # Tile copies x tokens (one output channel)
    for record in records:
        assert record.provider == provider
        assert record.audio_seconds == pytest.approx(samples / SAMPLE_RATE)
        assert record.rtf == pytest.approx(record.seconds / record.audio_seconds)
        assert record.size_bytes == tiny.stat().st_size
        assert record.repeats == 3
        assert 0 < record.fastest <= record.seconds
    # same audio for both, so b's ratio is its fastest repeat over a's, not the 1.0 of a to a
    a, b = records
    assert bench.speed_ratios(records, "b") == {
        "a": pytest.approx(a.fastest / b.fastest),
        "b": 1.0,
    }


def test_the_same_model_in_wasm_makes_the_same_audio_length(tiny, requests) -> None:
    if WASM_MISSING:
        pytest.skip(WASM_MISSING)
    from parity.judge.runners import OrtRunner

    with wasm.WasmSession(tiny) as session:
        timing = session.run(requests[0])
        assert session.version == "1.30.0"  # the lockfile's onnxruntime-web
    assert timing.samples == OrtRunner(tiny).infer(requests[0]).waveform.size
    assert timing.seconds > 0


def test_a_model_wasm_cannot_load_is_one_clear_line(tmp_path) -> None:
    if WASM_MISSING:
        pytest.skip(WASM_MISSING)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ParityError, match=r"wasm: .*broken\.onnx"):
        wasm.WasmSession(broken)


def test_a_missing_node_or_package_says_what_to_install(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(node_side.shutil, "which", lambda name: None)
    assert "Node.js is not on PATH" in (wasm.wasm_unavailable() or "")
    monkeypatch.undo()
    monkeypatch.setattr(wasm, "WEB_DIR", tmp_path)
    if node_side.shutil.which("node") is not None:
        assert f"npm ci --prefix {tmp_path}" in (wasm.wasm_unavailable() or "")
    with pytest.raises(ParityError, match=r"^wasm: "):
        wasm.WasmSession(Path("model.onnx"))


def test_speed_ratios_compare_fastest_repeats_so_a_burst_of_load_does_not_move_them() -> None:
    def record(model: str, median: float, fastest: float, audio: float = 2.0):
        return bench.LatencyRecord(model, "cpu", median, audio, 1000, 3, 0.5, fastest)

    # the variant's median is inflated by one loaded repeat; its fastest repeat is not:
    # 0.54 / 0.9 = 0.6 (medians would give 0.8). "long" made twice the audio, so it is
    # compared per second of it: (1.35 / 4.0) / (0.9 / 2.0) = 0.75 (per request: 1.5).
    records = [record("fp32", 1.0, 0.9), record("q", 0.8, 0.54), record("long", 1.5, 1.35, 4.0)]
    ratios = bench.speed_ratios(records, "fp32")
    assert ratios == {"fp32": 1.0, "q": pytest.approx(0.6), "long": pytest.approx(0.75)}


def test_measure_refuses_nothing_to_time(tiny) -> None:
    with pytest.raises(ParityError, match="at least one repeat"):
        bench.measure({"a": tiny}, "cpu", [], repeats=3)
    with pytest.raises(ParityError, match="unknown provider"):
        bench.open_timed(tiny, "gpu")  # type: ignore[arg-type]
    with pytest.raises(ParityError, match="baseline model 'c'"):
        bench.speed_ratios([], "c")


def test_cli_bench_prints_and_writes_one_record_per_model_and_provider(
    tiny, tmp_path, capsys
) -> None:
    import json

    from parity.cli import main

    out = tmp_path / "latency.json"
    argv = ["bench", f"again={tiny}", str(tiny), "--providers", "cpu,cpu-1t", "--repeats", "2"]
    assert main([*argv, "--inputs", str(FIXTURE_INPUTS), "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    assert [(r["model"], r["provider"]) for r in records] == [
        ("again", "cpu"),
        ("tiny", "cpu"),
        ("again", "cpu-1t"),
        ("tiny", "cpu-1t"),
    ]
    keys = {"model", "provider", "seconds", "audio_seconds", "rtf", "size_bytes", "repeats"}
    assert keys <= set(records[0])
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert "RTF" in capsys.readouterr().out


def test_cli_bench_refuses_unknown_providers_and_missing_models(tiny, capsys) -> None:
    from parity.cli import main

    assert main(["bench", str(tiny), "--providers", "gpu"]) == 2
    assert "unknown provider(s) ['gpu']" in capsys.readouterr().err
    assert main(["bench", str(tiny), str(tiny)]) == 2
    assert "two models share a name" in capsys.readouterr().err
    assert main(["bench", "absent.onnx"]) == 2
    assert "absent.onnx" in capsys.readouterr().err
