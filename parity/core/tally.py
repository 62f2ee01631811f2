"""What a process computed (built or ran) and what it read back from the cache, per kind.

A cold run's time is mostly model runs no cache can skip; a warm one should compute nothing.
The tally says which it was, in the run's own summary: how many entries of each kind
(``export``, ``quantized``, ``runs-torch``, ``runs-onnxruntime``, ...) were built and in how
many seconds, and how many were read back. Seconds are exclusive: a build that builds
another inside it (a static int8 model and its calibration) counts only its own time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

__all__ = ["TALLY", "KindTally", "Tally"]


@dataclass
class KindTally:
    """One cache kind's entries this process built and read, and its building seconds."""

    built: int = 0
    read: int = 0
    seconds: float = 0.0


class Tally:
    """Per-kind counts of built and read cache entries, with exclusive building seconds."""

    def __init__(self) -> None:
        self.kinds: dict[str, KindTally] = {}
        self._open: list[float] = []  # the nested builds' seconds, one slot per open build

    def _kind(self, kind: str) -> KindTally:
        return self.kinds.setdefault(kind, KindTally())

    def read(self, kind: str) -> None:
        self._kind(kind).read += 1

    @contextlib.contextmanager
    def building(self, kind: str) -> Iterator[None]:
        """Time one build of ``kind``; counted only if it completes (a failed build's time
        stays its parent's)."""
        start = time.perf_counter()
        self._open.append(0.0)
        try:
            yield
        finally:
            nested = self._open.pop()
        spent = time.perf_counter() - start
        if self._open:
            self._open[-1] += spent
        entry = self._kind(kind)
        entry.built += 1
        entry.seconds += spent - nested

    def snapshot(self) -> dict[str, KindTally]:
        return {kind: replace(entry) for kind, entry in self.kinds.items()}

    def since(self, snapshot: dict[str, KindTally]) -> Tally:
        """What was built and read after ``snapshot`` was taken: one session's or one
        command's share of the process's tally (pytester runs sessions inside sessions)."""
        later = Tally()
        for kind, entry in self.kinds.items():
            before = snapshot.get(kind, KindTally())
            delta = KindTally(
                entry.built - before.built, entry.read - before.read, entry.seconds - before.seconds
            )
            if delta.built or delta.read:
                later.kinds[kind] = delta
        return later

    @property
    def seconds(self) -> float:
        return sum(entry.seconds for entry in self.kinds.values())

    def line(self) -> str:
        """``computed 3 in 127.0 s: runs-torch 2 in 118.0 s, ...; read back 2: ...``,
        the costliest kind first."""
        built = sorted(
            ((kind, e) for kind, e in self.kinds.items() if e.built), key=lambda i: -i[1].seconds
        )
        read = sorted(
            ((kind, e.read) for kind, e in self.kinds.items() if e.read), key=lambda i: -i[1]
        )
        text = f"computed {sum(e.built for _, e in built)} in {self.seconds:.1f} s"
        if built:
            text += ": " + ", ".join(f"{kind} {e.built} in {e.seconds:.1f} s" for kind, e in built)
        text += f"; read back {sum(n for _, n in read)}"
        if read:
            text += ": " + ", ".join(f"{kind} {n}" for kind, n in read)
        return text


# One per process: every ArtifactCache and RunStore in it reports here, so a pytest session
# (or a worker) and a CLI command each see what they alone built and read.
TALLY = Tally()
