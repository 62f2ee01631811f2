"""parity.measure.op_profile: where a model's time goes, read from ONNX Runtime's own profiler on
the CPU and in onnxruntime-web, and `parity profile` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

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
    args = ["profile", str(tiny), "--provider", "cpu-1t", "--requests", "greeting,question"]
    assert main([*args, "--inputs", str(FIXTURE_INPUTS), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "on cpu-1t: RTF" in printed
    assert "op type" in printed
    assert "/dec/b" in printed
    written = json.loads(out.read_text())
    assert written["runs"] == 2
    assert {row["name"] for row in written["by_op"]} >= {"Conv", "Tile"}


def test_cli_profile_of_an_unknown_sentence_is_one_clear_line(tiny, capsys) -> None:
    args = ["profile", str(tiny), "--requests", "nope", "--inputs", str(FIXTURE_INPUTS)]
    assert main(args) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .startswith("parity: error: profile: --requests 'nope' names no phoneme entry")
    )


def _matmul_graph(integer: bool) -> onnx.ModelProto:
    """x quantized on the fly (DynamicQuantizeLinear), times a stored uint8 weight: by
    MatMulInteger, or (``integer=False``) by the same op rewritten to a float MatMul."""
    weight = np.arange(12, dtype=np.uint8).reshape(3, 4)
    quantize = helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "x_scale", "x_zero"])
    if integer:
        stored = [
            numpy_helper.from_array(weight, "W"),
            numpy_helper.from_array(np.array(0, np.uint8), "W_zero"),
        ]
        product = [
            helper.make_node("MatMulInteger", ["xq", "W", "x_zero", "W_zero"], ["product"]),
            helper.make_node("Cast", ["product"], ["product_float"], to=TensorProto.FLOAT),
        ]
    else:
        stored = [numpy_helper.from_array(weight.astype(np.float32), "W_float")]
        product = [
            helper.make_node("Cast", ["xq"], ["xq_float"], to=TensorProto.FLOAT),
            helper.make_node("MatMul", ["xq_float", "W_float"], ["product_float"]),
        ]
    graph = helper.make_graph(
        [quantize, *product, helper.make_node("Mul", ["product_float", "x_scale"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        stored,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _profiled(model: onnx.ModelProto, folder: Path) -> op_profile.OpProfile:
    """One run of ``model`` on ONNX Runtime's CPU provider, with its profiler on."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(folder / "ort")
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    session.run(None, {"x": np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)})
    events = json.loads(Path(session.end_profiling()).read_text())
    return op_profile.summarize(events, [SAMPLE_RATE], model="m.onnx", provider="cpu", warmup=0)


def test_an_integer_op_that_ran_as_an_integer_kernel_passes(tmp_path) -> None:
    model = _matmul_graph(integer=True)
    check = op_profile.integer_kernels(model, _profiled(model, tmp_path))
    assert check, check.summary()
    assert check.graph == {"DynamicQuantizeLinear": 1, "MatMulInteger": 1}
    assert check.kernels == 1
    assert check.summary().startswith("m.onnx on cpu: 1 integer kernel(s) ran for the graph's 1")


def test_an_integer_op_rewritten_to_float_fails_in_one_readable_line(tmp_path) -> None:
    """The rewritten graph still quantizes its input, but no integer kernel reads it; judged
    by the integer graph it came from, its MatMulInteger is the kernel that was lost."""
    rewritten = _matmul_graph(integer=False)
    ran = _profiled(rewritten, tmp_path)
    alone = op_profile.integer_kernels(rewritten, ran)
    assert not alone
    assert alone.summary() == (
        "m.onnx on cpu: integer kernels lost: 0 integer kernel(s) ran where the graph asks for "
        "at least 1; ran 1 DynamicQuantizeLinear; graph 1 DynamicQuantizeLinear"
    )
    replaced = op_profile.integer_kernels(_matmul_graph(integer=True), ran)
    assert not replaced
    assert "graph 1 DynamicQuantizeLinear, 1 MatMulInteger" in replaced.summary()
    assert "\n" not in replaced.summary()


def test_a_qdq_group_counts_as_the_integer_kernel_it_fuses_into(tmp_path) -> None:
    """QDQ graphs hold no integer op, only DequantizeLinear around float ones: a Conv or
    MatMul whose data and weight are both dequantized is what ONNX Runtime runs in integers."""
    from onnxruntime.quantization import QuantFormat, quantize_static
    from onnxruntime.quantization.calibrate import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter([{"x": np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)}])

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    source, target = tmp_path / "float.onnx", tmp_path / "qdq.onnx"
    weight = numpy_helper.from_array(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "float",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        [weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), source)
    quantize_static(source, target, Reader(), quant_format=QuantFormat.QDQ)
    model = onnx.load(target)
    check = op_profile.integer_kernels(model, _profiled(model, tmp_path))
    assert check.graph["QDQ MatMul"] == 1
    assert check, check.summary()


def test_the_gate_profiles_an_integer_variant_once_and_skips_a_float_one(
    tiny, requests, tmp_path
) -> None:
    from onnxruntime.quantization import quantize_dynamic

    from parity.core.cache import ArtifactCache
    from parity.core.memo import RunStore
    from parity.core.tally import TALLY

    runs = RunStore(ArtifactCache(tmp_path / "cache"))
    floating = op_profile.integer_kernels_cached(tiny, "cpu", requests[0], runs=runs)
    assert floating
    assert (
        floating.summary()
        == "tiny.onnx on cpu: no integer nodes in the graph, no integer kernel to check"
    )
    quantized = tmp_path / "tiny-int8.onnx"
    quantize_dynamic(tiny, quantized)
    before = TALLY.snapshot()
    first = op_profile.integer_kernels_cached(quantized, "cpu", requests[0], runs=runs)
    again = op_profile.integer_kernels_cached(quantized, "cpu", requests[0], runs=runs)
    assert first, first.summary()
    assert first.kernels == first.expected > 0
    assert again == first
    tally = TALLY.since(before).kinds["runs-op-profile"]
    assert (tally.built, tally.read) == (1, 1)  # profiled once, read back once
