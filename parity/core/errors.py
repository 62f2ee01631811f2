"""The one error type users see: a single line saying what is wrong, where, and what to do."""

from __future__ import annotations


class ParityError(Exception):
    """Bad input or a broken artefact; the message is one line, fit for a terminal."""


def first_line(error: BaseException | str, limit: int = 300) -> str:
    """The first non-blank line of an error message, stripped and cut to ``limit`` characters;
    an exception with no message gives its type name."""
    text = str(error)
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not line and isinstance(error, BaseException):
        line = type(error).__name__
    return line[:limit]


class BackendLacksError(ParityError):
    """The backend cannot run the file at all, for want of a hardware feature (a WebGPU adapter
    without shader-f16): nothing was judged. A pytest gate skips with this line, as it does
    for a missing tool, and the summary lists it as skipped; the CLI stops with it."""
