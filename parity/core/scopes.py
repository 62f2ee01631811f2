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


def first_naming_nothing(
    wanted: Sequence[str],
    present: Collection[str],
    optional: Collection[str] = (),
    *,
    prefix: bool = True,
) -> str | None:
    """The first of ``wanted`` (name prefixes, or exact names) that should name something in
    ``present`` and names nothing, else None.

    A name that matches nothing silently changes what a build keeps: a recipe chosen on the
    trained model (``/decoder/decoder/...``, kokoro-onnx's wrapper) kept nothing float on our
    own export (``/decoder/generator/...``). Entries of ``optional``, the stock Kokoro lists,
    may be absent one by one (the STFT variants differ), but not all of them at once.
    """

    def names_nothing(name: str) -> bool:
        if prefix:
            return not any(candidate.startswith(name) for candidate in present)
        return name not in present

    empty = [name for name in wanted if names_nothing(name)]
    required = [name for name in empty if name not in optional]
    if required:
        return required[0]
    stock = [name for name in wanted if name in optional]
    if stock and all(name in empty for name in stock):
        return stock[0]
    return None
