"""The one error type users see: a single line saying what is wrong, where, and what to do."""

from __future__ import annotations


class ParityError(Exception):
    """Bad input or a broken artefact; the message is one line, fit for a terminal."""
