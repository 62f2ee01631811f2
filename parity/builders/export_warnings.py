"""What an exporter warns about, kept as lines for its result rather than raised or printed.

Below both ``export`` and ``stft`` (whose self-check exports a module), so neither imports
the other.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator

__all__ = ["exporter_warnings"]


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Collect what torch's C++ side and loggers print to fd 2 during an export."""
    lines: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(
                line for line in sink.read().decode(errors="replace").splitlines() if line.strip()
            )


@contextlib.contextmanager
def exporter_warnings() -> Iterator[list[str]]:
    """Record, rather than raise or print, what an exporter warns about.

    The TorchScript exporter warns on every run (its own deprecation, constant folding
    notes) and, more usefully, with TracerWarnings where a trace may have specialised on
    the example input. They are kept as lines, one per distinct message, for the result.
    """
    lines: list[str] = []
    with warnings.catch_warnings(record=True) as caught, _captured_stderr() as native:
        warnings.simplefilter("always")
        try:
            yield lines
        finally:
            found = [f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught]
            found += [line for line in native if "Warning" in line or line.startswith("W")]
            lines.extend(dict.fromkeys(found))
