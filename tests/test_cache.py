"""parity.core.cache: content-hash keys, one build, atomic writes, stale and broken files."""

from __future__ import annotations

from pathlib import Path

import pytest

from parity.core.cache import ArtifactCache, CacheKey, atomic_path


def _writer(content: bytes, calls: list[int]):
    def build(target: Path) -> dict[str, object]:
        calls.append(1)
        target.write_bytes(content)
        return {"note": "built"}

    return build


def test_second_request_is_served_from_the_cache(tmp_path: Path) -> None:
    cache, calls = ArtifactCache(tmp_path), []
    key = CacheKey("thing", {"a": 1})
    first = cache.get_or_build(key, ".bin", _writer(b"x" * 10, calls))
    second = cache.get_or_build(key, ".bin", _writer(b"x" * 10, calls))
    assert (first.hit, second.hit, len(calls)) == (False, True, 1)
    assert second.path.read_bytes() == b"x" * 10
    assert second.meta["note"] == "built"


def test_any_changed_key_part_builds_anew(tmp_path: Path) -> None:
    cache, calls = ArtifactCache(tmp_path), []
    one = cache.get_or_build(CacheKey("thing", {"a": 1}), ".bin", _writer(b"1", calls))
    two = cache.get_or_build(CacheKey("thing", {"a": 2}), ".bin", _writer(b"2", calls))
    assert one.path != two.path
    assert len(calls) == 2


def test_a_damaged_artefact_is_rebuilt_not_trusted(tmp_path: Path) -> None:
    cache, calls = ArtifactCache(tmp_path), []
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
