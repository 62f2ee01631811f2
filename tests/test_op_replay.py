"""Op replay: each node of a scope, replayed alone on ORT CPU from the values a backend fed it,
names the kernel that computes differently, not the module its error shows up in.

A planted kernel fault scales one node's output in the graph the backend runs, under the same
value name, while the replay reads the file's own node: what a backend kernel that is off
looks like. The faults prove the harness, so they run in ``make test`` (``harness`` marker).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from parity.judge.intermediate import expose
from parity.judge.op_replay import replay_nodes, replay_scope
from parity.judge.tolerances import OP_REPLAY

pytestmark = pytest.mark.harness(
    "judge/op_replay.py", "judge/intermediate.py", "judge/comparators.py", "judge/tolerances"
)

CASE = "one-token"
KOKORO_SCOPE = "/decoder/generator/noise_res.0/"  # where float16 leaves WebGPU (test_webgpu)


def scaled_kernel(node_name: str, gain: float) -> Callable[[onnx.ModelProto], onnx.ModelProto]:
    """``node_name``'s output times ``gain``, under the output's own name: a kernel off by
    ``gain - 1`` in the graph the backend runs (the replay still reads the true node)."""

    def plant(model: onnx.ModelProto) -> onnx.ModelProto:
        index, node = next((i, n) for i, n in enumerate(model.graph.node) if n.name == node_name)
        value, raw = node.output[0], f"{node.output[0]}_unscaled"
        node.output[0] = raw
        dtype = np.float16 if _elem_type(model, raw) == TensorProto.FLOAT16 else np.float32
        gain_name = f"{node_name}/planted_gain"
        model.graph.initializer.append(numpy_helper.from_array(np.array(gain, dtype), gain_name))
        scale = helper.make_node("Mul", [raw, gain_name], [value], name=f"{node_name}/planted")
        model.graph.node.insert(index + 1, scale)
        return model

    return plant


def _elem_type(model: onnx.ModelProto, name: str) -> int:
    inferred = onnx.shape_inference.infer_shapes(model)
    for info in inferred.graph.value_info:
        if info.name == name:
            return info.type.tensor_type.elem_type
    return TensorProto.FLOAT


def conv_sine_chain(dtype: type) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """Conv -> Sin -> Mul -> Conv in ``dtype``: a long accumulation, then elementwise ops."""
    rng = np.random.default_rng(1)
    elem = TensorProto.FLOAT16 if dtype is np.float16 else TensorProto.FLOAT
    weights = [
        numpy_helper.from_array((rng.standard_normal((32, 32, 5)) * 0.1).astype(dtype), name)
        for name in ("W1", "W2")
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "W1"], ["c"], name="/chain/conv1/Conv", pads=[2, 2]),
            helper.make_node("Sin", ["c"], ["s"], name="/chain/Sin"),
            helper.make_node("Mul", ["s", "c"], ["m"], name="/chain/Mul"),
            helper.make_node("Conv", ["m", "W2"], ["y"], name="/chain/conv2/Conv", pads=[2, 2]),
        ],
        "chain",
        [helper.make_tensor_value_info("x", elem, [1, 32, "T"])],
        [helper.make_tensor_value_info("y", elem, None)],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model, {"x": rng.standard_normal((1, 32, 500)).astype(dtype)}


def backend_values(
    model: onnx.ModelProto, feed: dict[str, np.ndarray], transform=None
) -> dict[str, np.ndarray]:
    """Every value of ``model`` as ORT CPU computes it in the (transformed) graph."""
    names = ["c", "s", "m", "y"]
    run = (
        model if transform is None else transform(onnx.load_from_string(model.SerializeToString()))
    )
    session = ort.InferenceSession(
        expose(run, names).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return {**feed, **dict(zip(names, session.run(names, feed), strict=True))}


def out_of_tolerance(model, values) -> list[str]:
    rows, skipped = replay_nodes(model, list(model.graph.node), values, OP_REPLAY)
    assert not skipped
    return [row.node for row in rows if not row.within]


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["float32", "float16"])
def test_each_kernel_matches_its_replay_where_nothing_is_planted(dtype) -> None:
    model, feed = conv_sine_chain(dtype)
    assert out_of_tolerance(model, backend_values(model, feed)) == []


@pytest.mark.parametrize(
    ("dtype", "node", "gain"),
    [
        (np.float32, "/chain/Sin", 1 + 1e-4),  # 10x the float32 floor, as SwiftShader's Sin
        (np.float32, "/chain/conv1/Conv", 1 + 1e-4),
        (np.float16, "/chain/conv2/Conv", 1 + 2**-7),  # 4 float16 ulps: Dawn's Conv is 6
    ],
    ids=["float32-sin", "float32-first-conv", "float16-last-conv"],
)
def test_a_kernel_that_is_off_is_named_and_what_reads_it_is_not(dtype, node, gain) -> None:
    """The node after a faulty one reads the faulty value and replays from it, so it is not
    named: the fault does not propagate down the table as it does down the module walk."""
    model, feed = conv_sine_chain(dtype)
    values = backend_values(model, feed, scaled_kernel(node, gain))
    assert out_of_tolerance(model, values) == [node]


def test_an_overflow_is_named_where_it_starts_not_where_it_flows() -> None:
    """A float16 kernel that overflows (as WebGPU's float16 ReduceMean did over 8,401 frames)
    is the row out; the nodes downstream read inf and are counted in a note, not named."""
    model, feed = conv_sine_chain(np.float16)
    values = backend_values(model, feed, scaled_kernel("/chain/conv1/Conv", 3e4))
    rows, notes = replay_nodes(model, list(model.graph.node), values, OP_REPLAY)
    assert [row.node for row in rows if not row.within] == ["/chain/conv1/Conv"]
    assert notes == ["3 node(s) not replayed: their inputs are not finite (upstream)"]


def test_float16_is_read_against_float32_arithmetic() -> None:
    """A float16 node's reference is the node on widened inputs, so ORT CPU's own kernel reads
    as float16's rounding (about 2e-4) rather than zero, and a backend is measured in those."""
    model, feed = conv_sine_chain(np.float16)
    rows, _ = replay_nodes(model, list(model.graph.node), backend_values(model, feed), OP_REPLAY)
    conv = next(row for row in rows if row.op_type == "Conv")
    assert OP_REPLAY.floor("float32") < conv.cpu.rms_rel < OP_REPLAY.floor("float16")
    assert conv.bound == OP_REPLAY.floor("float16")


def test_a_node_holding_a_subgraph_is_listed_not_replayed() -> None:
    from tests.fp16_graphs import feed_for, if_reads_outer

    model = if_reads_outer()
    feed = feed_for(model)
    names = [output for node in model.graph.node for output in node.output]
    session = ort.InferenceSession(
        expose(model, names).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    values = {**feed, **dict(zip(names, session.run(names, feed), strict=True))}
    _, skipped = replay_nodes(model, list(model.graph.node), values, OP_REPLAY)
    assert any("(If): holds a subgraph, not replayed" in why for why in skipped)


@pytest.fixture(scope="module")
def tiny_float16(parity_cache):
    from tests.fp16_graphs import tiny_float16_file

    return tiny_float16_file(parity_cache)


@pytest.mark.parametrize("planted", [False, True], ids=["clean", "instance-norm-off"])
def test_kokoro_float16_resblock_kernel_fault_is_named(
    planted, tiny_float16, parity_inputs, parity_runs
) -> None:
    """The harness's float16 file on ORT CPU: every kernel of the generator's first noise
    resblock within float16's rounding; one InstanceNormalization off by 1% is the one named."""
    model, path = tiny_float16
    request = parity_inputs.case(CASE, model.vocab)
    node = next(
        n.name for n in onnx.load(str(path)).graph.node
        if n.op_type == "InstanceNormalization" and n.name.startswith(KOKORO_SCOPE)
    )  # fmt: skip
    report = replay_scope(
        path,
        KOKORO_SCOPE,
        request,
        OP_REPLAY,
        runs=parity_runs,
        transform=scaled_kernel(node, 1.01) if planted else None,
    )
    assert len(report.rows) > 50, report.table()
    if planted:
        assert [row.node for row in report.failures] == [node], report.report()
    else:
        assert report, report.report()
