"""parity.builders.quantize on a small graph with Kokoro's interface: modes, exclusions, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from parity.builders.calibration import calibrate_ranges
from parity.builders.quantize import OP_TYPES, QuantRecipe, quantize_cached, quantize_model
from parity.core.cache import ArtifactCache
from parity.core.config import default_inputs
from parity.core.errors import ParityError
from parity.core.inputs import load_input_set
from parity.core.ort_session import open_session
from parity.core.spec import load_config
from parity.judge.tolerances import SMALL_KOKORO_QUANTIZED_RMS_REL
from parity.search.optimize import load_recipe

from kokoro_graphs import tiny_kokoro

FIXTURES = default_inputs()
RECIPES = Path(__file__).parent.parent / "fixtures" / "recipes"
ANALYSIS_CONV = "/decoder/generator/analysis/Conv"


@pytest.fixture(scope="module")
def small_kokoro(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """input_ids, style, speed -> embedding, MatMuls, two Convs (one in the STFT scope)."""
    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Gather", ["embedding", "input_ids"], ["e"], name="/text/Gather"),
        helper.make_node("MatMul", ["e", "w1"], ["h"], name="/text/MatMul"),
        helper.make_node("MatMul", ["style", "w2"], ["s"], name="/style/MatMul"),
        helper.make_node("Add", ["h", "s"], ["hs"], name="/Add"),
        helper.make_node("Transpose", ["hs"], ["t"], name="/Transpose", perm=[0, 2, 1]),
        helper.make_node("Conv", ["t", "k1", "b1"], ["c"], name=ANALYSIS_CONV, pads=[1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="/decoder/Relu"),
        helper.make_node("Conv", ["r", "k2"], ["c2"], name="/decoder/Conv", pads=[1, 1]),
        helper.make_node("Mul", ["c2", "speed"], ["m"], name="/Mul"),
        helper.make_node("Reshape", ["m", "flat"], ["waveform"], name="/Reshape"),
    ]
    initializers = [
        weight("embedding", 178, 16),
        weight("w1", 16, 16),
        weight("w2", 256, 16),
        weight("k1", 8, 16, 3),
        weight("b1", 8),
        weight("k2", 1, 8, 3),
        numpy_helper.from_array(np.array([-1], np.int64), "flat"),
    ]
    graph = helper.make_graph(
        nodes,
        "small-kokoro",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "L"]),
            helper.make_tensor_value_info("style", TensorProto.FLOAT, [1, 256]),
            helper.make_tensor_value_info("speed", TensorProto.FLOAT, [1]),
        ],
        [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["N"])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path = tmp_path_factory.mktemp("quantize") / "small.onnx"
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def calibration() -> list:
    inputs = load_input_set(FIXTURES)
    return inputs.sentences(load_config("full")["vocab"], inputs.calibration)


def _waveform(path: Path, request) -> np.ndarray:
    feed = {
        "input_ids": request.input_ids,
        "style": request.style,
        "speed": np.ones(1, np.float32),
    }
    return open_session(path).run(None, feed)[0]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("recipe", "integer_op"),
    [
        (QuantRecipe(), "MatMulInteger"),
        (QuantRecipe(weight_type="int8", per_channel=True), "ConvInteger"),
        (QuantRecipe(mode="qdq", weight_type="int8"), "QuantizeLinear"),
        (
            QuantRecipe(mode="qoperator", weight_type="int8", calibration="percentile"),
            "QLinearConv",
        ),
        (QuantRecipe(mode="qdq", calibration="entropy"), "DequantizeLinear"),
    ],
    ids=["dynamic-uint8", "dynamic-int8-per-channel", "qdq", "qoperator-percentile", "qdq-entropy"],
)
def test_each_mode_quantizes_and_keeps_excluded_scopes_in_float(
    small_kokoro, tmp_path, calibration, recipe, integer_op
) -> None:
    build = quantize_model(small_kokoro, tmp_path / "q.onnx", recipe, calibration)
    assert build.integer_ops.get(integer_op, 0) > 0, build.summary()
    model = onnx.load(str(build.path))
    nodes = {node.name: node.op_type for node in model.graph.node}
    assert nodes.get(ANALYSIS_CONV) == "Conv"  # in KOKORO_EXCLUDE_SCOPES: left in float
    assert build.excluded == 1
    assert build.preprocess == "done"
    request = calibration[0]
    exact, quantized = _waveform(small_kokoro, request), _waveform(build.path, request)
    rms = np.linalg.norm(quantized - exact) / np.linalg.norm(exact)
    assert rms < SMALL_KOKORO_QUANTIZED_RMS_REL  # 8-bit weights (and activations), 3 layers
    assert not list(tmp_path.glob(".*.tmp"))


def test_convs_rewritten_as_int8_gemms_are_not_counted_as_kept_float(small_kokoro, tmp_path):
    """ONNX Runtime's quantizer skips the GEMM scopes' convs because the rewrite makes them
    int8 itself; the build's count of float candidates holds only the STFT analysis conv."""
    recipe = QuantRecipe(gemm_scopes=("/decoder/Conv",))  # Kokoro's exclusions by default
    build = quantize_model(small_kokoro, tmp_path / "q.onnx", recipe, [])
    assert build.integer_ops.get("MatMulIntegerToFloat", 0) >= 1, build.summary()
    assert build.excluded == 1, build.summary()


def test_unknown_exclusion_is_one_error_line(small_kokoro, tmp_path) -> None:
    with pytest.raises(ParityError, match="names no node") as error:
        quantize_model(small_kokoro, tmp_path / "q.onnx", QuantRecipe(exclude_nodes=("/nope",)))
    assert "\n" not in str(error.value)
    assert not (tmp_path / "q.onnx").exists()


@pytest.mark.parametrize(
    ("recipe", "named"),
    [
        (QuantRecipe(exclude_scopes=("/decoder/", "/nope/")), "/nope/"),
        (QuantRecipe(int8_weights_except=("/nope/",)), "/nope/"),
        # A stored recipe holds the trained model's names (/decoder/decoder/...): on another
        # naming it once built with nothing kept float, and said "0 candidates kept float".
        (load_recipe(RECIPES / "cpu.json")[2], "/decoder/decoder/generator/m_source/"),
    ],
    ids=["scope-naming-nothing", "int8-storage-scope-naming-nothing", "stored-recipe-other-names"],
)
def test_a_scope_naming_no_node_is_one_error_line(small_kokoro, tmp_path, recipe, named) -> None:
    with pytest.raises(ParityError, match=f"scope '{named}' names no node") as error:
        quantize_model(small_kokoro, tmp_path / "q.onnx", recipe)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "q.onnx").exists()


def test_the_stock_scopes_may_be_absent_one_by_one_but_not_all(small_kokoro, tmp_path) -> None:
    # small_kokoro has the STFT analysis scope only, as the test above shows it kept float.
    assert quantize_model(small_kokoro, tmp_path / "q.onnx", QuantRecipe()).excluded == 1
    elsewhere = tiny_kokoro(tmp_path / "other-names.onnx", np.ones((1, 8, 3), np.float32))
    with pytest.raises(ParityError, match="scope '/decoder/generator/m_source/' names no node"):
        quantize_model(elsewhere, tmp_path / "q2.onnx", QuantRecipe())
    # ... nor when a scope of the recipe's own does name nodes there.
    beside = QuantRecipe(int8_weights_except=("/dec/",))
    with pytest.raises(ParityError, match="scope '/decoder/generator/m_source/' names no node"):
        quantize_model(elsewhere, tmp_path / "q3.onnx", beside)


def test_static_mode_without_calibration_inputs_is_refused(small_kokoro, tmp_path) -> None:
    with pytest.raises(ParityError, match="calibration inputs"):
        quantize_model(small_kokoro, tmp_path / "q.onnx", QuantRecipe(mode="qdq"))
    assert not (tmp_path / "q.onnx").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("mode", "int4"), ("calibration", "magic"), ("op_types", ("Add",)), ("stft_basis", "fftw")],
)
def test_a_bad_recipe_is_refused_when_written(field, value) -> None:
    with pytest.raises(ParityError, match="quantize"):
        QuantRecipe(**{field: value})


def test_cached_variant_is_built_once_per_recipe(small_kokoro, tmp_path, calibration) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    first = quantize_cached(cache, small_kokoro, QuantRecipe(), calibration)
    again = quantize_cached(cache, small_kokoro, QuantRecipe(), calibration)
    other = quantize_cached(cache, small_kokoro, QuantRecipe(per_channel=True), calibration)
    assert (first.cached, again.cached, other.cached) == (False, True, False)
    assert again.path == first.path != other.path
    assert again.integer_ops == first.integer_ops
    assert again.size_after == first.size_after == first.path.stat().st_size


def test_cli_quantize_prints_and_writes_the_record(small_kokoro, tmp_path, capsys) -> None:
    import json

    from parity.cli import main

    out, record = tmp_path / "q.onnx", tmp_path / "q.json"
    argv = [
        "quantize",
        str(small_kokoro),
        "-o",
        str(out),
        "--mode",
        "qdq",
        "--inputs",
        str(FIXTURES),
    ]
    assert main([*argv, "--json", str(record)]) == 0
    assert "qdq wuint8 auint8 minmax per-tensor" in capsys.readouterr().out
    assert json.loads(record.read_text())["integer_ops"]["QuantizeLinear"] > 0
    assert main(["quantize", str(small_kokoro), "-o", str(out), "--op-types", "Add"]) == 2


def test_quantize_with_a_cache_builds_once_and_writes_the_same_bytes(
    small_kokoro, tmp_path, capsys
):
    """``--cache-dir``: the second build of the same recipe is read back, and the file the
    command writes is byte for byte the first one."""
    from parity.cli import main

    argv = ["quantize", str(small_kokoro), "--cache-dir", str(tmp_path / "cache")]
    for name in ("first", "second"):
        assert main([*argv, "-o", str(tmp_path / f"{name}.onnx")]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert "quantized 1 in" in lines[0]  # built (and pre-processed) once
    assert "read back 1: quantized 1" in lines[-1]
    assert (tmp_path / "first.onnx").read_bytes() == (tmp_path / "second.onnx").read_bytes()


def test_preprocessing_leaves_nothing_in_the_working_directory(
    small_kokoro, tmp_path, monkeypatch
) -> None:
    """ORT's symbolic shape inference drops temp files into the cwd (325 MB for Kokoro)."""
    from parity.builders.quantize import _scratch_cwd, preprocess_model

    monkeypatch.chdir(tmp_path)
    with _scratch_cwd():
        Path("sym_shape_infer_temp.onnx").write_bytes(b"left behind")
        inner = Path.cwd()
    assert Path.cwd() == tmp_path
    assert not inner.exists()
    assert preprocess_model(small_kokoro, Path("pre.onnx")).startswith("done")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pre.onnx"]


def test_quantizing_never_writes_beside_the_source(small_kokoro, tmp_path, monkeypatch) -> None:
    """ORT's quantizer writes ``<input>-inferred.onnx`` beside its input. Two pytest-xdist
    workers quantizing one cached model deleted each other's; the input is a private link."""
    written: list[Path] = []
    infer = onnx.shape_inference.infer_shapes_path

    def spy(model_path, output_path="", *args, **kwargs):  # type: ignore[no-untyped-def]
        written.append(Path(output_path or model_path).parent)
        return infer(model_path, output_path, *args, **kwargs)

    monkeypatch.setattr(onnx.shape_inference, "infer_shapes_path", spy)
    recipe = QuantRecipe(exclude_scopes=(), preprocess=False)
    quantize_model(small_kokoro, tmp_path / "q.onnx", recipe)
    assert written  # the spy saw ORT's shape inference ...
    assert small_kokoro.parent not in written  # ... and it never wrote next to the source


@pytest.mark.parametrize(
    "recipe",
    [
        QuantRecipe(mode="qdq", weight_type="int8", preprocess=False),
        QuantRecipe(mode="qoperator", weight_type="int8", preprocess=False),
        QuantRecipe(mode="qdq", op_types=("Conv",), exclude_scopes=(), preprocess=False),
        QuantRecipe(mode="qdq", calibration="entropy", preprocess=False),
        QuantRecipe(mode="qoperator", calibration="percentile", preprocess=False),
    ],
    ids=[
        "qdq",
        "qoperator",
        "qdq-conv-only-nothing-excluded",
        "qdq-entropy",
        "qoperator-percentile",
    ],
)
def test_a_build_from_shared_ranges_writes_the_bytes_a_calibrating_build_writes(
    small_kokoro, tmp_path, calibration, recipe
) -> None:
    """Ranges are calibrated once over every quantizable op type and read by every static
    recipe, whatever its format, op types or exclusions; that must change no byte."""
    ranges = tmp_path / "ranges.json"
    calibrate_ranges(small_kokoro, ranges, recipe.calibration, calibration, OP_TYPES)
    calibrating = quantize_model(small_kokoro, tmp_path / "a.onnx", recipe, calibration)
    reading = quantize_model(small_kokoro, tmp_path / "b.onnx", recipe, calibration, ranges)
    assert calibrating.path.read_bytes() == reading.path.read_bytes()


def test_static_recipes_from_one_source_calibrate_once(
    small_kokoro, tmp_path, calibration, monkeypatch
) -> None:
    """ORT's calibrator runs once per source and method: the builds read the shared ranges
    instead of calibrating inside ``quantize_static``."""
    import importlib

    import onnxruntime.quantization.calibrate as ort_calibrate

    # The package's ``quantize`` function hides the submodule of that name from attribute access.
    ort_quantize = importlib.import_module("onnxruntime.quantization.quantize")

    created = []

    def counting(*args, **kwargs):
        created.append(kwargs.get("calibrate_method"))
        return real(*args, **kwargs)

    real = ort_calibrate.create_calibrator
    monkeypatch.setattr(ort_calibrate, "create_calibrator", counting)
    monkeypatch.setattr(ort_quantize, "create_calibrator", counting)
    cache = ArtifactCache(tmp_path / "cache")
    for recipe in (QuantRecipe(mode="qdq"), QuantRecipe(mode="qoperator", op_types=("Conv",))):
        quantize_cached(cache, small_kokoro, recipe, calibration)
    assert len(created) == 1
    entropy = QuantRecipe(mode="qdq", calibration="entropy")
    quantize_cached(cache, small_kokoro, entropy, calibration)
    assert len(created) == 2
