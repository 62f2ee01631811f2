"""Project-level test settings; the harness itself is the ``parity`` plugin (pytest11)."""

import os

from hypothesis import settings

# Torch ops have no stable duration, so no deadline; CI replays the same examples every run.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

pytest_plugins = ["pytester"]


def pytest_collection_modifyitems(items: list) -> None:
    """``pytest -k parity`` must select exactly the parity tests: name and marker agree."""
    for item in items:
        named = "parity" in item.nodeid.split("::", 1)[-1] or "parity" in item.path.name
        marked = item.get_closest_marker("parity") is not None
        if named != marked:
            raise ValueError(
                f"{item.nodeid}: 'parity' in the id and the parity marker must go together"
            )
