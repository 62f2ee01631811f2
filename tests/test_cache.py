"""parity.core.cache: content-hash keys, one build, atomic writes, stale and broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from parity.core.cache import (
    ArtifactCache,
    CacheKey,
    atomic_path,
    content_digest,
    external_data_files,
    file_digest,
)
from parity.core.errors import ParityError


def _writer(content: bytes, calls: list[int]):
    def build(target: Path) -> dict[str, object]:
        calls.append(1)
        target.write_bytes(content)
        return {"note": "built"}

    return build


def test_second_request_is_served_from_the_cache(tmp_path: Path) -> None:
    cache, calls = ArtifactCache(tmp_path), list[int]()
    key = CacheKey("thing", {"a": 1})
    first = cache.get_or_build(key, ".bin", _writer(b"x" * 10, calls))
    second = cache.get_or_build(key, ".bin", _writer(b"x" * 10, calls))
    assert (first.hit, second.hit, len(calls)) == (False, True, 1)
    assert second.path.read_bytes() == b"x" * 10
    assert second.meta["note"] == "built"


def test_any_changed_key_part_builds_anew(tmp_path: Path) -> None:
    cache, calls = ArtifactCache(tmp_path), list[int]()
    one = cache.get_or_build(CacheKey("thing", {"a": 1}), ".bin", _writer(b"1", calls))
    two = cache.get_or_build(CacheKey("thing", {"a": 2}), ".bin", _writer(b"2", calls))
    assert one.path != two.path
    assert len(calls) == 2


def test_a_damaged_artefact_is_rebuilt_not_trusted(tmp_path: Path) -> None:
    cache, calls = ArtifactCache(tmp_path), list[int]()
    key = CacheKey("thing", {"a": 1})
    built = cache.get_or_build(key, ".bin", _writer(b"good bytes", calls))
    built.path.write_bytes(b"bad bytes!")  # same size, other content
    again = cache.get_or_build(key, ".bin", _writer(b"good bytes", calls))
    assert again.hit is False
    assert again.path.read_bytes() == b"good bytes"
    assert len(calls) == 2


def test_a_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)

    def fails(target: Path) -> dict[str, object]:
        target.write_bytes(b"half")
        raise RuntimeError("exporter crashed")

    with pytest.raises(RuntimeError, match="exporter crashed"):
        cache.get_or_build(CacheKey("thing", {"a": 1}), ".bin", fails)
    leftovers = [
        p.name for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".lock")
    ]
    assert leftovers == []


def test_atomic_path_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")

    def write_then_fail() -> None:
        with atomic_path(target) as temporary:
            temporary.write_text("new")
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        write_then_fail()
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_writes_get_the_permissions_a_plain_write_would(tmp_path) -> None:
    import os

    from parity.core.cache import write_text_atomic

    plain, atomic = tmp_path / "plain.txt", tmp_path / "atomic.txt"
    plain.write_text("x")
    write_text_atomic(atomic, "x")
    assert os.stat(atomic).st_mode & 0o777 == os.stat(plain).st_mode & 0o777


def _model_with_a_branch() -> onnx.ModelProto:
    """Add(x, W), then an If whose branch adds a Constant V: two tensors, one in a subgraph."""
    weight = numpy_helper.from_array(np.arange(64, dtype=np.float32).reshape(8, 8), "W")
    value = numpy_helper.from_array(np.ones((8, 8), np.float32), "V")
    branch = helper.make_graph(
        [
            helper.make_node("Constant", [], ["v"], value=value),
            helper.make_node("Add", ["y", "v"], ["z"]),
        ],
        "branch",
        [],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [8, 8])],
    )
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["x", "W"], ["y"]),
            helper.make_node("If", ["flag"], ["out"], then_branch=branch, else_branch=branch),
        ],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 8]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [8, 8])],
        [weight],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def test_a_model_digest_covers_each_external_data_file_it_references(tmp_path: Path) -> None:
    """The .onnx holds only where its tensors are; a data file rewritten beside an unchanged
    model (the main graph's initializer, or a constant inside a branch) gives another key."""
    from onnx.external_data_helper import convert_model_to_external_data

    model = _model_with_a_branch()
    convert_model_to_external_data(
        model, all_tensors_to_one_file=False, size_threshold=0, convert_attribute=True
    )
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    assert external_data_files(path) == ("V", "W")
    before, graph_bytes = content_digest(path), file_digest(path)
    assert before != graph_bytes
    seen = {before}
    for location in ("W", "V"):
        _flip_one_byte(tmp_path / location)
        assert file_digest(path) == graph_bytes  # the model file itself did not change
        seen.add(content_digest(path))
    assert len(seen) == 3


def test_a_model_saved_in_one_piece_keeps_the_digest_of_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    onnx.save(_model_with_a_branch(), path)
    assert content_digest(path) == file_digest(path)


def test_a_missing_external_data_file_is_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    onnx.save(_model_with_a_branch(), path, save_as_external_data=True, location="model.data",
              size_threshold=0)  # fmt: skip
    (tmp_path / "model.data").unlink()
    with pytest.raises(ParityError, match=r"external data file model\.data is missing") as error:
        content_digest(path)
    assert "\n" not in str(error.value)
