"""Module paths and the scope names exporters derive from them."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def unqualified_name(qualified: str) -> str:
    """The exporter's scope component: from the last non-numeric atom on (``resblocks.2``)."""
    atoms = qualified.split(".")
    for position in range(len(atoms) - 1, -1, -1):
        if not atoms[position].isnumeric():
            return ".".join(atoms[position:])
    return qualified


def scope_naming_nothing(
    scopes: Sequence[str], node_names: Collection[str], optional: Collection[str] = ()
) -> str | None:
    """The first scope (node-name prefix) that should name nodes and names none, else None.

    A scope that names nothing silently changes what a build keeps: a recipe chosen on the
    trained model (``/decoder/decoder/...``, kokoro-onnx's wrapper) kept nothing float on our
    own export (``/decoder/generator/...``). Entries of ``optional``, the stock Kokoro lists,
    may be absent one by one (the STFT variants differ), but not all at once.
    """
    empty = [scope for scope in scopes if not any(name.startswith(scope) for name in node_names)]
    required = [scope for scope in empty if scope not in optional]
    if required:
        return required[0]
    if scopes and len(empty) == len(scopes):
        return empty[0]
    return None
