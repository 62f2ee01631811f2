"""WebGPU parity: onnxruntime-web's WebGPU backend in headless Chromium and, for float16, on
Dawn in Node.js (``--webgpu-adapter dawn``), on the tiny preset.

The staged float32 check runs there by its own measured bound (``WEBGPU_FP32``), a fault that
exists only on WebGPU is named at its module, and float16 is walked to its module and replayed
op by op to its kernel. On a machine without a GPU the adapters are software (SwiftShader in
Chromium, lavapipe under Dawn): they run WebGPU's own shaders, so the numbers are WebGPU's;
their times are not a GPU's and nothing here times anything. Without Chromium (or Dawn's
driver) these gates skip, and say so.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from parity.judge.tolerances import (
    BROWSER_CONV,
    FP16_ARITHMETIC,
    FP16_GRAPH_REL,
    FP16_INTERMEDIATE,
    FP16_MAX_SIZE_RATIO,
    INTERMEDIATE,
    OP_REPLAY,
    WEBGPU_FP32,
)

# Measured 2026-12-06 (this file, on this machine, SwiftShader): kokoro-js's own
# onnxruntime-web (1.22.0-dev) on WebGPU moved the tiny model's durations on held-yes/af_heart
# (15 frames, against 12 on WebAssembly) while parity's export padded its LSTM encoders as
# kokoro wrote them. The walk on that runtime (--ort-web kokoro-js) names the module, and its
# ScatterND is the op; since 2026-12-07 the export pads with Pad (parity.builders.padding).
CLIENT_FAULT_MODULE = "predictor.text_encoder"  # its ScatterND pads the duration encoder's LSTM

pytestmark = pytest.mark.needs("browser")

CASE = "one-token"  # the shortest fixture case: a tiny-preset run takes ~20 s on SwiftShader
# A planted op in the decoder's encoder, before anything WebGPU moves by itself.
FAULT_NODE = "/decoder/encode/conv2/Conv"
FAULT_MODULE = "decoder.encode"
# Where float16 on a WebGPU adapter with shader-f16 first leaves float16's rounding (the walk).
FP16_WEBGPU_MODULE = "decoder.generator.noise_res.0"
# The op inside it whose WebGPU kernel leaves float16's rounding (op replay): its Conv, 30x
# ORT CPU's error, as a float16 running sum of the same products (docs/webgpu.md).
FP16_WEBGPU_OP = "Conv"


@pytest.fixture(scope="module")
def tiny_model() -> object:
    from parity.builders.model import build_model
    from parity.core.spec import KokoroSpec

    return build_model(KokoroSpec(preset="tiny"))


def export_tiny(cache, model, padding: str = "pad"):
    from parity.builders.export import export_cached
    from parity.core.spec import KokoroSpec

    result = export_cached(cache, KokoroSpec(preset="tiny"), model, padding=padding)  # type: ignore[arg-type]
    assert result.ok, result.error_line
    assert result.path is not None
    return result.path


@pytest.fixture(scope="module")
def tiny_export(parity_cache, tiny_model):
    return export_tiny(parity_cache, tiny_model)


@pytest.fixture(scope="module")
def tiny_export_as_kokoro_wrote_it(parity_cache, tiny_model):
    """The LSTM encoders padded by kokoro's slice assignment: ScatterND (--padding scatter)."""
    return export_tiny(parity_cache, tiny_model, "scatter")


@pytest.fixture(scope="module")
def tiny_request(parity_inputs, tiny_model):
    return parity_inputs.case(CASE, tiny_model.vocab)


def conv_then_sine(path) -> np.ndarray:
    """A 64-channel convolution, then sin(c) * c: the op WebGPU computes differently is Sin."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array((rng.standard_normal((64, 64, 7)) * 0.1).astype(np.float32))
    weight.name = "W"
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "W"], ["c"], pads=[3, 3]),
            helper.make_node("Sin", ["c"], ["s"]),
            helper.make_node("Mul", ["s", "c"], ["y"]),
        ],
        "conv_then_sine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, "T"])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in ("c", "y")],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return rng.standard_normal((1, 64, 4000)).astype(np.float32)


def rms_rel(value: np.ndarray, reference: np.ndarray) -> float:
    return float(np.sqrt(np.mean((value - reference) ** 2) / np.mean(reference**2)))


@pytest.mark.parametrize("provider", ["wasm", "webgpu"])
def test_browser_session_speaks_ort_session_interface(provider, tmp_path, parity_record) -> None:
    """Inputs and outputs described as ONNX Runtime does; a convolution as CPU computes it."""
    import onnxruntime as ort

    from parity.judge.browser_session import BrowserSession

    x = conv_then_sine(tmp_path / "small.onnx")
    cpu = ort.InferenceSession(str(tmp_path / "small.onnx")).run(["c", "y"], {"x": x})
    session = BrowserSession(tmp_path / "small.onnx", provider=provider)
    try:
        assert [(v.name, v.type) for v in session.get_inputs()] == [("x", "tensor(float)")]
        conv, sine = session.run(["c", "y"], {"x": x})
    finally:
        session.close()
    assert conv.shape == cpu[0].shape
    assert conv.dtype == np.float32
    assert rms_rel(conv, cpu[0]) <= BROWSER_CONV
    where = session.adapter.describe() if session.adapter else "WebAssembly"
    parity_record.add(
        "webgpu",
        f"{provider} ({where}): conv rms_rel {rms_rel(conv, cpu[0]):.2g}, "
        f"sin(c)*c rms_rel {rms_rel(sine, cpu[1]):.2g} against ORT CPU",
    )


def test_op_replay_names_swiftshaders_sine_not_the_conv_around_it(tmp_path) -> None:
    """Each node replayed alone on ORT CPU from the values SwiftShader's WebGPU fed it: its Sin
    is out (1.1e-4), the Conv before it and the Mul reading it are not."""
    from parity.core.node_side import using_adapter
    from parity.judge.browser_session import BrowserSession
    from parity.judge.intermediate import expose
    from parity.judge.op_replay import replay_nodes

    x = conv_then_sine(tmp_path / "small.onnx")
    model = onnx.load(str(tmp_path / "small.onnx"))
    exposed = expose(model, ["s"]).SerializeToString()
    with using_adapter("software"):
        session = BrowserSession(tmp_path / "small.onnx", provider="webgpu", model_bytes=exposed)
        try:
            values = dict(zip(["c", "s", "y"], session.run(["c", "s", "y"], {"x": x}), strict=True))
        finally:
            session.close()
    rows, _ = replay_nodes(model, list(model.graph.node), {"x": x, **values}, OP_REPLAY)
    assert [row.op_type for row in rows if not row.within] == ["Sin"], [r.line() for r in rows]


@pytest.mark.parametrize(
    "adapter", ["software", pytest.param("dawn", marks=pytest.mark.needs("dawn"))]
)
def test_float16_needs_shader_f16_and_says_so(adapter, tmp_path) -> None:
    """A float16 op on an adapter without shader-f16 (Chromium's SwiftShader) is one clear line;
    on one with it (Dawn on lavapipe), the op runs as ORT CPU runs it, to float16 rounding."""
    import onnxruntime as ort

    from parity.core.errors import BackendLacksError
    from parity.core.node_side import using_adapter
    from parity.judge.browser_session import BrowserSession

    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["x"], ["h"], to=TensorProto.FLOAT16),
            helper.make_node("ReduceL2", ["h"], ["n"], keepdims=1),
            helper.make_node("Cast", ["n"], ["y"], to=TensorProto.FLOAT),
        ],
        "half",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "half.onnx")
    x = np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32)
    with using_adapter(adapter):
        session = BrowserSession(tmp_path / "half.onnx", provider="webgpu")
    try:
        assert session.adapter is not None
        assert session.adapter.f16 == (adapter == "dawn"), session.adapter
        if session.adapter.f16:
            (found,) = session.run(None, {"x": x})
            (cpu,) = ort.InferenceSession(str(tmp_path / "half.onnx")).run(None, {"x": x})
            assert rms_rel(found, cpu) <= FP16_GRAPH_REL
        else:
            with pytest.raises(BackendLacksError, match=r"shader-f16 feature, which .* lacks"):
                session.run(None, {"x": x})
    finally:
        session.close()


@pytest.mark.parity
def test_parity_webgpu_staged_tiny(
    tiny_model, tiny_export, tiny_request, parity_runs, parity_record
) -> None:
    """The staged float32 check on WebGPU: same durations, generator inputs, source and forced
    generator within WebGPU's own measured bound."""
    from parity.judge.checks import check_against_pytorch
    from parity.judge.forcing import ForcingSession

    session = ForcingSession(tiny_export, runs=parity_runs, provider="webgpu")
    result = check_against_pytorch(tiny_model, session, tiny_request, WEBGPU_FP32)
    parity_record.add("webgpu", f"tiny {CASE}: {result.summary()}")
    assert result, result.report()


@pytest.mark.needs("dawn")
def test_dawn_without_a_driver_it_accepts_says_what_to_install(monkeypatch, tmp_path) -> None:
    """Where Dawn finds no Vulkan driver (here: none named), the dawn adapter's sessions stop
    with one line naming the package, and its gates skip with that line."""
    from parity.core import node_side
    from parity.core.errors import ParityError
    from parity.judge.browser_session import BrowserSession

    monkeypatch.setenv("VK_ICD_FILENAMES", str(tmp_path / "none.json"))
    description, why = node_side._dawn_probe.__wrapped__()
    assert description == ""
    assert why is not None
    assert "no WebGPU adapter" in why
    assert "mesa-vulkan-drivers" in why
    monkeypatch.setattr(node_side, "_dawn_probe", lambda: (description, why))
    conv_then_sine(tmp_path / "small.onnx")
    with node_side.using_adapter("dawn"), pytest.raises(ParityError, match=r"^webgpu: Dawn found"):
        BrowserSession(tmp_path / "small.onnx", provider="webgpu")


@pytest.mark.parity
@pytest.mark.parametrize(
    ("provider", "adapter"),
    [("cpu", "software"), pytest.param("webgpu", "dawn", marks=pytest.mark.needs("dawn"))],
    ids=["cpu", "webgpu-dawn"],
)
def test_parity_webgpu_float16_is_walked_to_the_module_it_leaves(
    provider, adapter, parity_cache, tiny_model, tiny_export, tiny_request, parity_runs,
    parity_record,
) -> None:  # fmt: skip
    """The harness's own float16 file, walked with durations forced. On ORT CPU every module
    keeps float16's rounding; on WebGPU with shader-f16 (Dawn on lavapipe) the generator's first
    noise resblock leaves it, ten times past the CPU: the blog post's float16 discrepancy,
    named. A fact about onnxruntime-web 1.30 and Mesa 25's lavapipe (docs/webgpu.md)."""
    from parity.builders.fp16 import KOKORO_FP16, convert_cached
    from parity.core.node_side import using_adapter
    from parity.judge.boundaries import IntermediateSession
    from parity.judge.localize import compare_intermediates
    from parity.judge.op_replay import replay_scope

    half = convert_cached(parity_cache, tiny_export, KOKORO_FP16).path
    with using_adapter(adapter):  # sessions open on first run, so the walk runs inside
        session = IntermediateSession.for_kokoro(
            half, tiny_model, tiny_request, runs=parity_runs, provider=provider
        )
        report = compare_intermediates(tiny_model, session, tiny_request, FP16_INTERMEDIATE)
        scope = session.boundaries[FP16_WEBGPU_MODULE].prefix
        ops = replay_scope(
            half, scope, tiny_request, OP_REPLAY, provider=provider, runs=parity_runs
        )
    first = report.first_failure
    named = first.describe() if first else "none"
    parity_record.add("webgpu", f"tiny float16 walked on {provider} ({adapter}): first {named}")
    worst = ops.worst.describe() if ops.worst else "none"
    parity_record.add("webgpu", f"its ops replayed on ORT CPU, {provider}: worst {worst}")
    if provider == "cpu":
        assert first is None, report.table()
        assert ops, ops.report()
    else:
        assert first is not None, report.table()
        assert first.module == FP16_WEBGPU_MODULE, report.table()
        # Inside it, the kernels that differ are its convolutions (float16 accumulation).
        assert {row.op_type for row in ops.failures} == {FP16_WEBGPU_OP}, ops.report()


@pytest.mark.parity
@pytest.mark.needs("dawn")
def test_parity_webgpu_float16_passes_with_its_sums_kept_float32(
    parity_cache, tiny_model, tiny_export, tiny_request, parity_runs
) -> None:
    """The staged check on WebGPU (Dawn) by the bounds of float16 arithmetic (``FP16_ARITHMETIC``,
    measured where every op rounds to float16): the harness's float16 file fails it, its
    convolutions summing in float16; with the ops WebGPU sums in float16 kept float32 (``parity
    fp16 --webgpu``) it passes, and the file is still a float16 file's size."""
    from parity.builders.fp16 import KOKORO_FP16, KOKORO_FP16_WEBGPU, convert_cached
    from parity.core.node_side import using_adapter
    from parity.judge.checks import check_against_pytorch
    from parity.judge.forcing import ForcingSession
    from parity.judge.verdict import staged_tolerance

    build = convert_cached(parity_cache, tiny_export, KOKORO_FP16_WEBGPU)
    assert build.report.size_ratio <= FP16_MAX_SIZE_RATIO, build.report.summary()
    plain = convert_cached(parity_cache, tiny_export, KOKORO_FP16).path
    tolerance = staged_tolerance("fp16", "webgpu")
    assert tolerance == FP16_ARITHMETIC
    with using_adapter("dawn"):
        kept, summed = (
            check_against_pytorch(
                tiny_model,
                ForcingSession(path, runs=parity_runs, provider="webgpu"),
                tiny_request,
                tolerance,
            )
            for path in (build.path, plain)
        )
    assert kept, kept.report()
    assert not summed, summed.report()
    assert any(failure.startswith("forced generator") for failure in summed.failures)


def amplified_sine_identity(
    node_name: str, gain: float
) -> Callable[[onnx.ModelProto], onnx.ModelProto]:
    """x + gain * (sin(x)^2 + cos(x)^2 - 1) * x after ``node_name``: the identity holds to
    float32 rounding (1e-7) where Sin and Cos are exact, and moves by gain times WebGPU's
    Sin/Cos error (1e-4 on SwiftShader) where they are not. A fault only WebGPU shows."""

    def plant(model: onnx.ModelProto) -> onnx.ModelProto:
        node = next(n for n in model.graph.node if n.name == node_name)
        value, faulty = node.output[0], f"{node.output[0]}_webgpu_fault"
        for consumer in model.graph.node:
            consumer.input[:] = [faulty if name == value else name for name in consumer.input]
        scope = node_name.rsplit("/", 1)[0] + "/webgpu_fault"
        names = {step: f"{scope}/{step}" for step in ("s", "c", "ss", "cc", "one", "d", "g", "e")}
        constants = [
            numpy_helper.from_array(np.array(1.0, np.float32), f"{scope}/unit"),
            numpy_helper.from_array(np.array(gain, np.float32), f"{scope}/gain"),
        ]
        steps = [
            ("Sin", [value], "s"),
            ("Cos", [value], "c"),
            ("Mul", [names["s"], names["s"]], "ss"),
            ("Mul", [names["c"], names["c"]], "cc"),
            ("Add", [names["ss"], names["cc"]], "one"),
            ("Sub", [names["one"], f"{scope}/unit"], "d"),
            ("Mul", [names["d"], f"{scope}/gain"], "g"),
            ("Mul", [names["g"], value], "e"),
        ]
        position = list(model.graph.node).index(node) + 1
        added = [
            helper.make_node(op, inputs, [names[out]], name=names[out]) for op, inputs, out in steps
        ]
        added.append(helper.make_node("Add", [value, names["e"]], [faulty], name=f"{scope}/y"))
        for offset, new in enumerate(added):
            model.graph.node.insert(position + offset, new)
        model.graph.initializer.extend(constants)
        return model

    return plant


@pytest.mark.parity
@pytest.mark.parametrize("provider", ["cpu", "webgpu"])
def test_parity_webgpu_only_fault_is_named(
    provider, tiny_model, tiny_export, tiny_request, parity_runs, parity_record
) -> None:
    """The planted WebGPU-only fault: CPU passes the intermediate walk, WebGPU fails it first at
    the module the fault sits in."""
    from parity.judge.boundaries import IntermediateSession
    from parity.judge.localize import compare_intermediates

    session = IntermediateSession.for_kokoro(
        tiny_export,
        tiny_model,
        tiny_request,
        transform=amplified_sine_identity(FAULT_NODE, gain=1000.0),
        runs=parity_runs,
        provider=provider,
    )
    report = compare_intermediates(tiny_model, session, tiny_request, INTERMEDIATE)
    first = report.first_failure
    named = first.describe() if first else "none"
    parity_record.add("webgpu", f"planted sin/cos fault on {provider}: first {named}")
    if provider == "cpu":
        assert first is None, report.table()
    else:
        assert first is not None, report.table()
        assert first.module == FAULT_MODULE, report.table()


@pytest.mark.needs("node")
@pytest.mark.parametrize(
    "adapter", ["software", pytest.param("dawn", marks=pytest.mark.needs("dawn"))]
)
def test_kokoro_js_on_webgpu_speaks_as_on_webassembly(
    adapter, tiny_model, tiny_export, parity_inputs, parity_runs, parity_record
) -> None:
    """kokoro-js with ``device: "webgpu"``, offline, in Chromium (software: SwiftShader) and
    under Node.js on Dawn, against kokoro-js on WebAssembly: the same durations (the same
    length), and sound within WebGPU's free-running bound. It moved them while the export
    padded by ScatterND (the next test)."""
    from parity.builders.voices import load_voices
    from parity.core.node_side import using_adapter
    from parity.judge.metrics import log_mel_distance
    from parity.measure.kokoro_js import spoken_by_kokoro_js

    requests = load_voices().held_out(parity_inputs, 1)[:1]  # held-yes, the shortest
    vocab = tiny_model.vocab
    (wasm,) = spoken_by_kokoro_js(parity_runs, tiny_export, vocab, requests, device="wasm")
    with using_adapter(adapter):
        (webgpu,) = spoken_by_kokoro_js(parity_runs, tiny_export, vocab, requests, device="webgpu")
    assert np.isfinite(webgpu).all()
    assert np.abs(webgpu).max() > 0
    distance = log_mel_distance(wasm, webgpu)
    parity_record.add(
        "webgpu",
        f"kokoro-js tiny {requests[0].name} on {adapter}: webgpu {len(webgpu)} samples, "
        f"wasm {len(wasm)}; log-mel {distance:.3f}",
    )
    assert len(webgpu) == len(wasm), "durations moved"
    assert distance <= WEBGPU_FP32.free_mel


@pytest.mark.needs("node")
def test_kokoro_js_runtime_on_webgpu_is_walked_to_the_module_it_breaks(
    tiny_model, tiny_export_as_kokoro_wrote_it, tiny_request, parity_runs, parity_record
) -> None:
    """The tiny model exported as kokoro wrote its padding (``--padding scatter``), on the
    onnxruntime-web kokoro-js ships (--ort-web kokoro-js): the walk names the duration encoder,
    whose ScatterND that runtime's WebGPU gets wrong, and why parity's export pads with Pad.
    A fact about kokoro-js's pinned runtime: it fails the day an update mends the kernel, and
    docs/webgpu.md is updated then."""
    from parity.core.node_side import using_ort_web
    from parity.judge.boundaries import IntermediateSession
    from parity.judge.localize import compare_intermediates

    with using_ort_web("kokoro-js"):
        session = IntermediateSession.for_kokoro(
            tiny_export_as_kokoro_wrote_it,
            tiny_model,
            tiny_request,
            runs=parity_runs,
            provider="webgpu",
        )
        report = compare_intermediates(tiny_model, session, tiny_request, INTERMEDIATE)
    first = report.first_failure
    named = first.describe() if first else "none"
    parity_record.add("webgpu", f"kokoro-js's onnxruntime-web on WebGPU: first {named}")
    assert first is not None, report.table()
    assert first.module == CLIENT_FAULT_MODULE, report.table()
