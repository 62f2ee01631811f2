"""Running ONNX Runtime's Python tools (quantization, pre-processing, calibration) without
their side effects: they write beside their input, and print advice."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

__all__ = ["private_link", "quiet"]


def private_link(source: Path, folder: Path) -> Path:
    """``source`` seen from ``folder`` (a hard link, else a copy).

    ORT's quantizer writes ``<input>-inferred.onnx`` beside its input and deletes it after:
    two processes quantizing one cached model (pytest-xdist workers) removed each other's
    file (measured: 9 of 31 sweep items failed with -n 2). Each build gets its own name.
    """
    target = folder / f"source-{source.name}"
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return target


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the quantization tools' advice (logging, warnings, and the calibrators'
    progress, which they print to stdout); errors still raise."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)
