"""Tests kept out of ``-k parity`` (``harness``, and ``landscape`` given what it covers) rejoin
it when the code they cover changed since they last passed on this machine (the record is in
pytest's cache)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parity.core.cache import file_digest

HARNESS_CACHE = "parity/harness-passed"
REJOINING = ("harness", "landscape")


def _files_digest(root: Path, names: tuple[str, ...]) -> str:
    """SHA-256 of files under the repository root (a folder is every file in it)."""
    digest = hashlib.sha256()
    for name in names:
        path = root / name
        if not path.exists():  # a renamed or deleted file is a change, not a crash at collection
            digest.update(f"missing:{name}".encode())
            continue
        for file in sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]:
            digest.update(f"{file.relative_to(root).as_posix()}:{file_digest(file)}".encode())
    return digest.hexdigest()


def _harness_digest(item: pytest.Item) -> str | None:
    """The digest of what a rejoining test covers: the ``parity/`` modules its marker names,
    the files its ``files=`` names (from the repository root), and its own file. None for a
    test that never rejoins (neither marker, or a bare ``landscape``)."""
    from parity.core.memo import source_digest

    for name in REJOINING:
        marker = item.get_closest_marker(name)
        if marker is None or (name == "landscape" and not (marker.args or marker.kwargs)):
            continue
        covered = f"{source_digest(marker.args, ())}:{file_digest(Path(item.path))}"
        if files := tuple(marker.kwargs.get("files", ())):
            covered += ":" + _files_digest(Path(str(item.config.rootpath)), files)
        return hashlib.sha256(covered.encode()).hexdigest()
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Before ``-k`` deselects: a rejoining test whose covered code changed since it last
    passed here answers to ``parity`` too, so the main job runs it. One that never ran here
    is left to ``make test``, which runs every test on every commit (CI)."""
    store = getattr(config, "cache", None)
    if store is None:
        return
    for item in items:
        digest = _harness_digest(item)
        passed = store.get(f"{HARNESS_CACHE}/{item.nodeid}", None)
        if digest is not None and passed is not None and passed != digest:
            item.extra_keyword_matches.add("parity")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Remember what a passing rejoining test covered."""
    outcome: Any = yield
    report = outcome.get_result()
    store = getattr(item.config, "cache", None)
    if report.when == "call" and report.passed and store is not None:
        digest = _harness_digest(item)
        if digest is not None:
            store.set(f"{HARNESS_CACHE}/{item.nodeid}", digest)
