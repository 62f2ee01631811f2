"""Artefacts cached on disk by a hash of everything that shapes them, written atomically.

A key names every input of a build (config, weight digest, exporter, opset, code version);
its SHA-256 names the file, so a changed input can never reuse a stale artefact. A file
lock per key makes concurrent builders (pytest-xdist workers) wait for one build.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from parity.core.errors import ParityError
from parity.core.tally import TALLY

__all__ = [
    "ArtifactCache",
    "CacheKey",
    "CachedArtifact",
    "atomic_path",
    "content_digest",
    "external_data_files",
    "file_digest",
]


def _file_mode() -> int:
    """0o666 less the umask: what ``open`` would give (``mkstemp`` gives 0o600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _file_mode()


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` only on success.

    The file ends with the permissions a plain write would give, so reports and tables
    are readable by whoever could read the folder.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, _FILE_MODE)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(target: Path, text: str) -> None:
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return _scan(path)[0]


# The key ONNX writes beside every externally stored tensor (``StringStringEntryProto``:
# field 1, 8 bytes, "location"). A model whose bytes lack it references no data file, so
# only a model that holds it is parsed. Looking for it as the bytes are hashed took 0.33 s
# instead of 0.22 s on the 326 MB trained float32; reading the locations from its parsed
# graph (``onnx.load`` without external data) would take 0.36 s more, and hold 326 MB.
_EXTERNAL_KEY = b"\n\x08location"
_MARKED_META = "external_data_key"  # the sidecar's record of it, so a hit need not look again
_digests: dict[tuple[object, ...], str] = {}
_marked: dict[tuple[object, ...], bool] = {}  # the file holds _EXTERNAL_KEY
_locations: dict[tuple[object, ...], tuple[str, ...]] = {}


def _scan(path: Path, needle: bytes = b"") -> tuple[str, bool]:
    """(SHA-256 of a file's bytes, whether ``needle`` occurs in them), in one read."""
    digest, found, tail = hashlib.sha256(), False, b""
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            if needle and not found:
                found = needle in tail + block[: len(needle) - 1] or needle in block
                tail = block[-(len(needle) - 1) :]
    return digest.hexdigest(), found


def _identity(path: Path) -> tuple[object, ...]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def _is_model(path: Path) -> bool:
    return path.suffix.lower() == ".onnx"


def _own_digest(path: Path) -> tuple[str, bool]:
    """A file's SHA-256 and whether it may reference external data (only ``.onnx`` files
    can), once per process while the file is unchanged (same inode, size and times)."""
    identity = _identity(path)
    if identity not in _marked:
        digest, marked = _scan(path, _EXTERNAL_KEY if _is_model(path) else b"")
        _digests[identity], _marked[identity] = digest, marked
    return _digests[identity], _marked[identity]


def content_digest(path: Path) -> str:
    """SHA-256 of a file's bytes; for an ONNX model saved with external data, of its bytes and
    every data file it references, so a rewritten data file gives another key.

    Hashed once per process while a file is unchanged (same inode, size and times); about
    0.3 s for a 326 MB model here. A model without external data keeps the plain SHA-256 of
    its bytes. Cache hits are verified afresh (``ArtifactCache``), not from this memo.
    """
    path = Path(path)
    own, marked = _own_digest(path)
    locations = external_data_files(path) if marked else ()
    if not locations:
        return own
    digest = hashlib.sha256(own.encode())
    for location in locations:
        data = path.parent / location
        if not data.is_file():
            raise ParityError(
                f"{path}: its external data file {location} is missing (looked for {data})"
            )
        digest.update(f"\n{location}:{_own_digest(data)[0]}".encode())
    return digest.hexdigest()


def external_data_files(path: Path) -> tuple[str, ...]:
    """The data files an ONNX model's tensors are stored in, relative to its folder (sorted,
    each once), read from the graph without loading them; once per unchanged model file."""
    identity = _identity(path)
    if identity not in _locations:
        _locations[identity] = _read_locations(path)
    return _locations[identity]


def _read_locations(path: Path) -> tuple[str, ...]:
    import onnx

    from parity.core.graph import load_model

    model = load_model(path, external_data=False)
    found = set()
    for tensor in _model_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entries = {entry.key: entry.value for entry in tensor.external_data}
            found.add(entries.get("location", ""))
    if "" in found:
        raise ParityError(f"{path}: a tensor is stored externally but names no location")
    return tuple(sorted(found))


def _model_tensors(model: Any) -> Iterator[Any]:
    """Every tensor of a model: initializers (sparse ones too) and attribute values, in the
    main graph, its subgraphs and its functions."""
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        for node in function.node:
            yield from _attribute_tensors(node)


def _graph_tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        yield from _attribute_tensors(node)


def _attribute_tensors(node: Any) -> Iterator[Any]:
    for attribute in node.attribute:
        if attribute.HasField("t"):
            yield attribute.t
        yield from attribute.tensors
        sparse = [attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else []
        for value in [*sparse, *attribute.sparse_tensors]:
            yield from (value.values, value.indices)
        subgraphs = [attribute.g] if attribute.HasField("g") else []
        for subgraph in [*subgraphs, *attribute.graphs]:
            yield from _graph_tensors(subgraph)


@dataclass(frozen=True)
class CacheKey:
    """What an artefact is built from; ``digest`` is the SHA-256 of its canonical JSON."""

    kind: str
    parts: Mapping[str, Any]

    @property
    def digest(self) -> str:
        canonical = json.dumps({"kind": self.kind, **self.parts}, sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class CachedArtifact:
    """A built file, the metadata its builder returned, and whether it came from the cache."""

    path: Path
    meta: Mapping[str, Any]
    hit: bool


class ArtifactCache:
    """A folder of artefacts named by content hash, with a JSON sidecar per artefact."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, key: CacheKey, suffix: str) -> Path:
        return self.root / key.kind / f"{key.digest[:20]}{suffix}"

    def get_or_build(
        self,
        key: CacheKey,
        suffix: str,
        build: Callable[[Path], Mapping[str, Any]],
    ) -> CachedArtifact:
        """Return the cached artefact for ``key``, building it (once, under a lock) if needed.

        ``build`` writes the artefact to the path it is given and returns metadata to keep.
        The sidecar records the file's size and SHA-256; a file that no longer matches it (a
        truncated or edited artefact) is rebuilt rather than trusted.
        """
        path = self.path_for(key, suffix)
        sidecar = path.with_suffix(path.suffix + ".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            meta = self._valid_meta(path, sidecar, key)
            if meta is not None:
                TALLY.read(key.kind)
                return CachedArtifact(path, meta, hit=True)
            with TALLY.building(key.kind), atomic_path(path) as temporary:
                built = dict(build(temporary))
                built["size"] = temporary.stat().st_size
                needle = _EXTERNAL_KEY if _is_model(path) else b""
                built["sha256"], built[_MARKED_META] = _scan(temporary, needle)
            record = {"key": {"kind": key.kind, **key.parts}, "meta": built}
            write_text_atomic(sidecar, json.dumps(record, indent=2, sort_keys=True, default=str))
            return CachedArtifact(path, built, hit=False)

    @staticmethod
    def _valid_meta(path: Path, sidecar: Path, key: CacheKey) -> dict[str, Any] | None:
        if not (path.is_file() and sidecar.is_file()):
            return None
        try:
            record = json.loads(sidecar.read_text("utf-8"))
        except (OSError, ValueError):
            return None
        meta = record.get("meta", {})
        if record.get("key") != json.loads(
            json.dumps({"kind": key.kind, **key.parts}, default=str)
        ):
            return None  # a sidecar from another key (a digest collision, or an edited one)
        if meta.get("size") != path.stat().st_size:
            return None
        identity = _identity(path)
        # Every hit is verified (a damaged entry is never trusted). Whether the bytes may
        # reference external data was recorded with them; a sidecar from before that is
        # answered by the same read.
        recorded = meta.get(_MARKED_META)
        needle = _EXTERNAL_KEY if recorded is None and _is_model(path) else b""
        digest, found = _scan(path, needle)
        if meta.get("sha256") != digest:
            return None
        _digests[identity] = digest
        _marked[identity] = found if recorded is None else bool(recorded)
        return dict(meta)


def default_cache_root(rootdir: Path | None = None) -> Path:
    """``$PARITY_CACHE_DIR``, else ``.parity-cache`` in the project root (or the cwd)."""
    configured = os.environ.get("PARITY_CACHE_DIR")
    if configured:
        return Path(configured)
    return (rootdir or Path.cwd()) / ".parity-cache"


def require_writable(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ParityError(
            f"cache: cannot create {root} ({error.strerror}); set PARITY_CACHE_DIR"
        ) from error
