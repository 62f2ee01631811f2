"""The gate re-measures exactly what a change can move, and nothing else (``parity.core.memo``).

One staged fp32 check on the tiny preset, then one change at a time: nothing, a tolerance,
a line of model code, an export change that alters the file, a line of export code that
does not, ONNX Runtime's version, a weight. Each test counts the PyTorch passes, forced
generator runs and ONNX Runtime runs the second check makes.
"""

from __future__ import annotations

import copy
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import onnx
import pytest
import torch

import parity.builders.export
import parity.core.memo
import parity.judge.forcing
from parity.builders.export import export_cached
from parity.builders.model import build_model
from parity.core.cache import ArtifactCache
from parity.core.config import default_inputs
from parity.core.inputs import load_input_set
from parity.core.memo import RunStore
from parity.core.spec import KokoroSpec
from parity.judge.checks import check_against_pytorch
from parity.judge.forcing import ForcingSession
from parity.judge.runners import OrtRunner, TorchRunner
from parity.judge.tolerances import FP32

pytestmark = pytest.mark.harness("core/memo.py", "core/cache.py", "judge/checks.py")

INPUTS = default_inputs()


def _count_runs(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times each engine runs from now on."""
    counted: Counter[str] = Counter()

    def counting(name: str, original):
        def wrapper(*args, **kwargs):
            counted[name] += 1
            return original(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(TorchRunner, "infer", counting("torch", TorchRunner.infer))
    monkeypatch.setattr(OrtRunner, "run", counting("onnxruntime", OrtRunner.run))
    monkeypatch.setattr(
        parity.judge.forcing,
        "forced_generator",
        counting("forced", parity.judge.forcing.forced_generator),
    )
    return counted


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    return _count_runs(monkeypatch)


class Tiny:
    """The tiny preset exported into a private cache, and one staged check of it."""

    def __init__(self, root: Path, model: torch.nn.Module | None = None) -> None:
        self.spec = KokoroSpec(preset="tiny")
        self.model = model if model is not None else build_model(self.spec)
        self.cache = ArtifactCache(root)
        self.store = RunStore(self.cache)
        self.request = load_input_set(INPUTS).case("sentence", self.model.vocab)

    def check(self, tolerance=FP32):
        exported = export_cached(self.cache, self.spec, self.model)
        assert exported.ok, exported.summary()
        session = ForcingSession(exported.path, runs=self.store)
        return check_against_pytorch(self.model, session, self.request, tolerance)


@pytest.fixture(scope="module")
def primed(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    """Exported and checked once, so its cache holds the export and every run."""
    built = Tiny(tmp_path_factory.mktemp("primed"))
    with pytest.MonkeyPatch.context() as patch:
        runs = _count_runs(patch)
        first = built.check()
    assert first, first.report()
    assert (runs["torch"], runs["forced"], runs["onnxruntime"]) == (1, 1, 1)
    return built


@pytest.fixture
def tiny(primed: Tiny, tmp_path: Path, runs: Counter[str]) -> Tiny:
    """A private copy of the primed cache and model; ``runs`` counts from here."""
    shutil.copytree(primed.cache.root, tmp_path / "cache")
    return Tiny(tmp_path / "cache", copy.deepcopy(primed.model))


def test_nothing_changed_runs_nothing(tiny: Tiny, runs: Counter[str]) -> None:
    again = tiny.check()
    assert again
    assert runs == Counter()


def test_a_changed_tolerance_rejudges_and_runs_nothing(tiny: Tiny, runs: Counter[str]) -> None:
    tighter = replace(FP32, forced_rms_rel=1e-12, forced_max_rel=1e-12)
    judged = tiny.check(tighter)
    assert not judged
    assert any("forced generator" in failure for failure in judged.failures)
    assert runs == Counter()


def _parity_copy(tmp_path: Path, edited: str) -> Path:
    """Our package's source with one line added to ``edited``."""
    copy = tmp_path / "source"
    # The package root: keys name files relative to it (``builders/model.py``).
    shutil.copytree(
        Path(parity.core.memo.__file__).parents[1],
        copy,
        ignore=shutil.ignore_patterns("node_modules"),
    )
    with (copy / edited).open("a") as handle:
        handle.write("# one changed line\n")
    return copy


def test_changed_model_code_reruns_pytorch_not_onnxruntime(
    tiny: Tiny, runs: Counter[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # model.py shapes the export too; here only its effect on PyTorch's outputs is measured,
    # so the export key keeps its old code version and the same file is reused.
    monkeypatch.setattr(parity.core.memo, "_HERE", _parity_copy(tmp_path, "builders/model.py"))
    assert tiny.check()
    assert (runs["torch"], runs["forced"], runs["onnxruntime"]) == (1, 1, 0)


def test_export_change_that_alters_the_file_reruns_onnxruntime_not_pytorch(
    tiny: Tiny, runs: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = parity.builders.export.export_kokoro

    def export_with_a_note(model, out, **options):
        result = original(model, out, **options)
        graph = onnx.load(str(out))
        graph.doc_string = "exported by a changed exporter"
        onnx.save(graph, str(out))
        return result

    monkeypatch.setattr(parity.builders.export, "export_kokoro", export_with_a_note)
    monkeypatch.setattr(parity.builders.export, "code_version", lambda: "changed-export-code")
    assert tiny.check()
    assert (runs["torch"], runs["forced"], runs["onnxruntime"]) == (0, 0, 1)


def test_export_code_change_that_leaves_the_file_alike_reruns_nothing(
    tiny: Tiny, runs: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outputs are keyed by the artefact's bytes: a re-export that writes the same graph
    (a comment, a refactor) has nothing for ONNX Runtime to re-measure."""
    first = export_cached(tiny.cache, tiny.spec, tiny.model)
    monkeypatch.setattr(parity.builders.export, "code_version", lambda: "refactored-export-code")
    second = export_cached(tiny.cache, tiny.spec, tiny.model)
    assert second.path != first.path
    assert not second.cached
    assert second.path.read_bytes() == first.path.read_bytes()
    assert tiny.check()
    assert runs["onnxruntime"] == 0
    assert runs["torch"] == 0


def test_another_onnxruntime_version_reruns_onnxruntime_not_pytorch(
    tiny: Tiny, runs: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = parity.core.memo.metadata.version

    def version(package: str) -> str:
        return "9.99.0" if package == "onnxruntime" else real(package)

    monkeypatch.setattr(parity.core.memo.metadata, "version", version)
    assert tiny.check()
    assert (runs["torch"], runs["forced"], runs["onnxruntime"]) == (0, 0, 1)


def test_a_changed_weight_reruns_everything(tiny: Tiny, runs: Counter[str]) -> None:
    with torch.no_grad():
        tiny.model.decoder.generator.conv_post.bias.add_(1e-3)
    assert tiny.check()  # re-exported from the new weights, so still in parity
    assert (runs["torch"], runs["forced"], runs["onnxruntime"]) == (1, 1, 1)


def test_rerun_ignores_the_store(tiny: Tiny, runs: Counter[str]) -> None:
    tiny.store = RunStore(None)
    assert tiny.check()
    assert (runs["torch"], runs["forced"], runs["onnxruntime"]) == (1, 1, 1)
