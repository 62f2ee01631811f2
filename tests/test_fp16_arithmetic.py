"""Float16 arithmetic on the CPU (``--provider cpu-fp16``): ORT's CPU provider computes a float16
file's chains in float32, and the rewrite makes it round to float16 after every op, as a GPU
does; bit for bit on a small graph, and further from PyTorch than the plain CPU on Kokoro."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from parity.builders.fp16.arithmetic import float16_arithmetic
from parity.judge.intermediate import expose, value_types
from parity.judge.tolerances import FP16_ARITHMETIC, FP16_ARITHMETIC_GAIN

pytestmark = pytest.mark.harness(
    "builders/fp16/arithmetic.py", "judge/runners.py", "core/memo.py", "judge/tolerances"
)

SIZE = 4096


def half_chain() -> onnx.ModelProto:
    """x cast to float16, (x + w) * x with a float16 weight w: a chain of ops that ORT's CPU
    provider has no float16 kernel for."""
    weight = numpy_helper.from_array(np.full(SIZE, 0.1, np.float16), "w")
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["x32"], ["x"], to=TensorProto.FLOAT16, name="/Cast"),
            helper.make_node("Add", ["x", "w"], ["a"], name="/Add"),
            helper.make_node("Mul", ["a", "x"], ["y"], name="/Mul"),
        ],
        "half_chain",
        [helper.make_tensor_value_info("x32", TensorProto.FLOAT, [SIZE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [SIZE])],
        [weight],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model: onnx.ModelProto, x: np.ndarray, name: str = "y") -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run([name], {"x32": x})[0]


def test_the_cpu_computes_a_float16_chain_in_float32_and_the_rewrite_rounds_every_op() -> None:
    x = np.random.default_rng(0).standard_normal(SIZE).astype(np.float32)
    w = np.float16(0.1)
    model = half_chain()
    # The premise: ORT CPU has no float16 Add or Mul; it computes the chain in float32 and even
    # drops the graph's own Cast to float16 ahead of it (x is not rounded), so the output is
    # float32 arithmetic rounded once. If a release changes that, this fails, and the rewrite's
    # reason with it.
    float32_arithmetic = ((x + np.float32(w)) * x).astype(np.float16)
    assert np.array_equal(run(model, x), float32_arithmetic)
    x16 = x.astype(np.float16)
    every_op = ((x16 + w).astype(np.float16) * x16).astype(np.float16)
    rewritten = float16_arithmetic(model, value_types(model))
    found = run(rewritten, x)
    assert found.dtype == np.float16
    assert np.array_equal(found, every_op)
    assert not np.array_equal(every_op, float32_arithmetic)


def test_values_keep_their_names_and_float16_type_so_they_can_be_exposed() -> None:
    model = half_chain()
    x = np.random.default_rng(1).standard_normal(SIZE).astype(np.float32)
    exposed = expose(model, ["a"])
    rewritten = float16_arithmetic(exposed, value_types(exposed))
    a = run(rewritten, x, "a")
    assert a.dtype == np.float16
    assert np.array_equal(a, (x.astype(np.float16) + np.float16(0.1)).astype(np.float16))


def test_a_subgraph_reads_the_float16_values_it_read_and_what_it_returns_is_rounded() -> None:
    model = half_chain()
    branch = helper.make_graph(
        [helper.make_node("Add", ["a", "w"], ["z"])],
        "branch",
        [],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT16, [SIZE])],
    )
    # A condition computed at run time: ORT inlines an If whose condition is a constant.
    model.graph.initializer.append(numpy_helper.from_array(np.array(1e9, np.float32), "big"))
    model.graph.node.extend(
        [
            helper.make_node("ReduceMax", ["x32"], ["top"], keepdims=0, name="/ReduceMax"),
            helper.make_node("Less", ["top", "big"], ["c"], name="/Less"),
            helper.make_node(
                "If", ["c"], ["u"], name="/If", then_branch=branch, else_branch=branch
            ),
        ]
    )
    model.graph.node.append(helper.make_node("Mul", ["u", "y"], ["v"], name="/Mul_1"))
    model.graph.output.append(helper.make_tensor_value_info("v", TensorProto.FLOAT16, [SIZE]))
    x = np.random.default_rng(2).standard_normal(SIZE).astype(np.float32)
    x16, w = x.astype(np.float16), np.float16(0.1)
    a = (x16 + w).astype(np.float16)
    y = (a * x16).astype(np.float16)
    u = (a + w).astype(np.float16)  # the branch rounds once: it is ORT's own arithmetic
    rewritten = float16_arithmetic(model, value_types(model))
    assert np.array_equal(run(rewritten, x, "v"), (u * y).astype(np.float16))


@pytest.fixture(scope="module")
def tiny_float16(parity_cache, parity_inputs):
    """The harness's float16 file of the tiny preset, its PyTorch model and the one-token case."""
    from tests.fp16_graphs import tiny_float16_file

    model, path = tiny_float16_file(parity_cache)
    return model, path, parity_inputs.case("one-token", model.vocab)


def test_kokoro_in_float16_arithmetic_is_further_from_pytorch_than_on_the_cpu(
    tiny_float16, parity_runs
) -> None:
    """The forced generator of the tiny float16 file: ORT CPU computes it in float32 between
    float16 weights; in float16 arithmetic every op's rounding is added, and the staged check
    judges it by the bounds measured for that (``FP16_ARITHMETIC``)."""
    from parity.judge.checks import check_against_pytorch
    from parity.judge.forcing import ForcingSession
    from parity.judge.verdict import staged_tolerance

    model, path, request = tiny_float16
    results = {
        provider: check_against_pytorch(
            model,
            ForcingSession(path, runs=parity_runs, provider=provider),
            request,
            staged_tolerance("fp16", provider),
        )
        for provider in ("cpu", "cpu-fp16")
    }
    assert all(results.values()), "\n".join(r.report() for r in results.values())
    assert staged_tolerance("fp16", "cpu-fp16") == FP16_ARITHMETIC
    cpu, arithmetic = (results[p].forced for p in ("cpu", "cpu-fp16"))
    assert cpu is not None
    assert cpu.error is not None
    assert arithmetic is not None
    assert arithmetic.error is not None
    assert arithmetic.error.rms_rel >= FP16_ARITHMETIC_GAIN * cpu.error.rms_rel
