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
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_digests: dict[tuple[object, ...], str] = {}


def _identity(path: Path) -> tuple[object, ...]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def content_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, hashed once per process while the file is unchanged (same
    inode, size and times); about 0.3 s for a 326 MB model here. Cache hits are verified
    afresh (``ArtifactCache``), not from this memo."""
    identity = _identity(Path(path))
    if identity not in _digests:
        _digests[identity] = file_digest(Path(path))
    return _digests[identity]


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
                built["sha256"] = file_digest(temporary)
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
        digest = file_digest(path)  # every hit is verified: a damaged entry is never trusted
        if meta.get("sha256") != digest:
            return None
        _digests[identity] = digest
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
