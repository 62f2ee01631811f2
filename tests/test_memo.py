"""parity.core.memo: run outputs are stored by content, served when nothing changed, and
recomputed when anything that shapes them did."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from parity.core.cache import ArtifactCache, content_digest
from parity.core.inputs import KokoroInput
from parity.core.memo import RunStore, request_digest, torch_model_digest


def _counting(values: dict[str, object], calls: list[int]):
    def compute() -> dict[str, object]:
        calls.append(1)
        return values

    return compute


def test_a_stored_run_is_served_without_running_again(tmp_path: Path) -> None:
    store, calls = RunStore(ArtifactCache(tmp_path)), []
    values = {"waveform": np.arange(5, dtype=np.float32), "durations": None}
    first = store.arrays("torch", {"input": "a"}, _counting(values, calls))
    second = store.arrays("torch", {"input": "a"}, _counting(values, calls))
    assert len(calls) == 1
    np.testing.assert_array_equal(second["waveform"], values["waveform"])
    assert second["waveform"].dtype == np.float32
    assert "durations" not in first
    assert "durations" not in second


def test_another_key_part_runs_again(tmp_path: Path) -> None:
    store, calls = RunStore(ArtifactCache(tmp_path)), []
    for part in ("a", "b", "a"):
        store.arrays("torch", {"input": part}, _counting({"x": np.zeros(2)}, calls))
    assert len(calls) == 2


def test_without_a_cache_every_run_computes(tmp_path: Path) -> None:
    store, calls = RunStore(None), []
    for _ in range(2):
        store.arrays("torch", {"input": "a"}, _counting({"x": np.zeros(2)}, calls))
        store.record("latency", {"input": "a"}, lambda: calls.append(1) or [1.0])
    assert len(calls) == 4


@pytest.mark.parametrize("damage", ["truncated", "same-size-other-bytes", "sidecar-edited"])
def test_a_damaged_stored_run_is_rebuilt_not_trusted(tmp_path: Path, damage: str) -> None:
    store, calls = RunStore(ArtifactCache(tmp_path)), []
    good = {"x": np.arange(100, dtype=np.float64)}
    store.arrays("onnxruntime", {"input": "a"}, _counting(good, calls))
    (stored,) = tmp_path.glob("runs-onnxruntime/*.npz")
    if damage == "truncated":
        stored.write_bytes(stored.read_bytes()[:-40])
    elif damage == "same-size-other-bytes":
        raw = bytearray(stored.read_bytes())
        raw[-200] ^= 0xFF
        stored.write_bytes(bytes(raw))
    else:
        sidecar = stored.with_suffix(".npz.json")
        sidecar.write_text(sidecar.read_text().replace('"sha256": "', '"sha256": "0'))
    again = store.arrays("onnxruntime", {"input": "a"}, _counting(good, calls))
    assert len(calls) == 2
    np.testing.assert_array_equal(again["x"], good["x"])


def test_a_record_round_trips_json(tmp_path: Path) -> None:
    store, calls = RunStore(ArtifactCache(tmp_path)), []
    for _ in range(2):
        found = store.record("latency", {"m": 1}, lambda: calls.append(1) or {"rtf": [0.5, 1]})
    assert found == {"rtf": [0.5, 1]}
    assert len(calls) == 1


def test_request_digest_is_the_content_not_the_name() -> None:
    request = KokoroInput("a", "hi", np.array([[0, 5, 0]]), np.ones((1, 256), np.float32), 1.0)
    assert request_digest(request) == request_digest(replace(request, name="b"))
    assert request_digest(request) != request_digest(replace(request, speed=1.1))
    nudged = replace(request, style=request.style * np.float32(1 + 1e-7))
    assert request_digest(request) != request_digest(nudged)


def test_weights_digest_follows_an_in_place_write() -> None:
    model = torch.nn.Linear(3, 2)
    before = torch_model_digest(model)
    assert torch_model_digest(model) == before
    with torch.no_grad():
        model.bias.zero_()
    zeroed = torch_model_digest(model)
    assert zeroed != before
    with torch.no_grad():
        model.bias.add_(1.0)
    assert torch_model_digest(model) not in (before, zeroed)


def test_content_digest_sees_a_rewritten_file(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"one")
    first = content_digest(path)
    replacement = tmp_path / "new.onnx"
    replacement.write_bytes(b"two")
    replacement.replace(path)
    assert content_digest(path) != first


def test_model_digest_tells_the_sources_apart_though_their_weights_are_equal() -> None:
    # The deterministic source swaps a module and holds its harmonics in a non-persistent
    # buffer: the state_dicts are equal, the outputs are not.
    from parity.builders.model import build_model
    from parity.core.spec import KokoroSpec

    deterministic = build_model(KokoroSpec(preset="tiny"))
    stochastic = build_model(KokoroSpec(preset="tiny", source="stochastic"))
    assert deterministic.state_dict().keys() == stochastic.state_dict().keys()
    assert torch_model_digest(deterministic) != torch_model_digest(stochastic)
    assert torch_model_digest(deterministic) == torch_model_digest(
        build_model(KokoroSpec(preset="tiny"))
    )


def test_the_onnxruntime_web_build_keys_browser_runs_only() -> None:
    """A run on kokoro-js's onnxruntime-web is stored apart from one on parity's; CPU keys
    and parity's own build's keys stay as they were."""
    from parity.core.inputs import KokoroInput
    from parity.core.memo import onnxruntime_parts
    from parity.core.node_side import using_ort_web

    request = KokoroInput("r", "a", np.array([[0, 1, 0]]), np.zeros((1, 256), np.float32))

    def key(provider: str) -> dict:
        return onnxruntime_parts("digest", request, "run", threads=1, provider=provider)

    parity_build = key("webgpu"), key("cpu")
    with using_ort_web("kokoro-js"):
        client_build = key("webgpu"), key("cpu")
    assert "ort_web" not in parity_build[0]
    assert client_build[0] != parity_build[0]
    assert client_build[1] == parity_build[1]
