"""Project-level test settings; the harness itself is the ``parity`` plugin (pytest11)."""

import os

# pytester's in-process runs drop the modules first imported inside them, and a C extension
# cannot be loaded twice (onnx aborts on a duplicate nanobind enum). The plugin imports
# neither at load, so the suite imports them before any inner run does.
import onnx  # noqa: F401
import torch  # noqa: F401
from hypothesis import settings

# Torch ops have no stable duration, so no deadline; CI replays the same examples every run.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_collection_modifyitems(items: list) -> None:
    """``pytest -k parity`` must select exactly the parity tests: name and marker agree."""
    for item in items:
        named = "parity" in item.nodeid.split("::", 1)[-1] or "parity" in item.path.name
        marked = item.get_closest_marker("parity") is not None
        if named != marked:
            raise ValueError(
                f"{item.nodeid}: 'parity' in the id and the parity marker must go together"
            )
