"""Module paths and the scope names exporters derive from them."""

from __future__ import annotations


def unqualified_name(qualified: str) -> str:
    """The exporter's scope component: from the last non-numeric atom on (``resblocks.2``)."""
    atoms = qualified.split(".")
    for position in range(len(atoms) - 1, -1, -1):
        if not atoms[position].isnumeric():
            return ".".join(atoms[position:])
    return qualified
