"""``harness`` tests: they rejoin ``-k parity`` when the code they cover changed since they last
passed on this machine (the record is in pytest's cache)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

HARNESS_CACHE = "parity/harness-passed"


def _harness_digest(item: pytest.Item) -> str | None:
    """The digest of what a ``harness`` test covers, or None for any other test."""
    marker = item.get_closest_marker("harness")
    if marker is None:
        return None
    import hashlib

    from parity.core.memo import source_digest

    own = hashlib.sha256(item.path.read_bytes()).hexdigest()
    return hashlib.sha256(f"{source_digest(marker.args, ())}:{own}".encode()).hexdigest()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Before ``-k`` deselects: a ``harness`` test whose covered code changed since it last
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
    """Remember what a passing ``harness`` test covered."""
    outcome: Any = yield
    report = outcome.get_result()
    store = getattr(item.config, "cache", None)
    if report.when == "call" and report.passed and store is not None:
        digest = _harness_digest(item)
        if digest is not None:
            store.set(f"{HARNESS_CACHE}/{item.nodeid}", digest)
