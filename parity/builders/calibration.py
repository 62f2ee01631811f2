"""Calibration for static int8: Kokoro requests as ONNX Runtime's data reader, and activation
ranges computed once per source model and shared by every static build from it."""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from parity.builders.ort_tools import private_link, quiet
from parity.core.cache import ArtifactCache, CacheKey, content_digest
from parity.core.errors import ParityError
from parity.core.inputs import KokoroInput
from parity.core.interface import KokoroInterface, find_interface
from parity.core.memo import request_digest, source_digest

__all__ = [
    "CALIBRATIONS",
    "CalibrationKind",
    "calibrate_ranges",
    "calibration_method",
    "calibration_ranges_cached",
    "calibration_reader",
    "read_ranges",
    "requests_digest",
]

CalibrationKind = Literal["minmax", "entropy", "percentile"]
CALIBRATIONS: tuple[CalibrationKind, ...] = ("minmax", "entropy", "percentile")


class _KokoroReader:
    """A ``CalibrationDataReader`` over Kokoro requests (input_ids, style, speed).

    It serves one range of requests at a time (``set_range``), so ONNX Runtime's calibrator
    can take them one by one (its ``CalibStridedMinMax`` option, which every calibrator
    honours). That matters twice for Kokoro: the histogram calibrators (Entropy, Percentile)
    stack each tensor across inputs and fail on sequences of different lengths
    ("inhomogeneous shape", measured with ORT 1.32), and holding every intermediate tensor
    of every input at once costs memory in proportion to the audio.
    """

    def __init__(self, requests: Sequence[KokoroInput], interface: KokoroInterface | None) -> None:
        self.requests = list(requests)
        self.interface = interface
        self.start, self.end = 0, len(self.requests)
        self.position = 0

    def __len__(self) -> int:
        return len(self.requests)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.start, self.end = start_index, min(end_index, len(self.requests))
        self.position = start_index

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= self.end:
            return None
        request = self.requests[self.position]
        self.position += 1
        assert self.interface is not None, "set the reader's interface before it is read"
        return self.interface.feed(request.input_ids, request.style, request.speed)

    def rewind(self) -> None:
        self.position = self.start


def requests_digest(requests: Sequence[KokoroInput]) -> str:
    """SHA-256 of what calibration reads from each request: its token ids, style and speed."""
    return hashlib.sha256("".join(request_digest(r) for r in requests).encode()).hexdigest()


def calibration_method(kind: CalibrationKind) -> Any:
    """ONNX Runtime's ``CalibrationMethod`` for a recipe's calibration name."""
    from onnxruntime.quantization import CalibrationMethod

    names = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
    return getattr(CalibrationMethod, names[kind])


def calibration_reader(requests: Sequence[KokoroInput], interface: KokoroInterface | None) -> Any:
    """An ``onnxruntime.quantization.CalibrationDataReader`` fed by ``requests`` through the
    graph's ``interface`` (``input_ids`` in our exports, ``tokens`` in kokoro-onnx's)."""
    from onnxruntime.quantization import CalibrationDataReader

    class KokoroCalibrationReader(_KokoroReader, CalibrationDataReader):
        pass

    if not requests:
        raise ParityError("quantize: static modes need calibration inputs; none were given")
    return KokoroCalibrationReader(requests, interface)


def calibration_ranges_cached(
    cache: ArtifactCache,
    source: Path,
    method: CalibrationKind,
    calibration: Sequence[KokoroInput],
    op_types: Sequence[str],
) -> Path:
    """ONNX Runtime's activation ranges for every tensor ``op_types`` touch in ``source``,
    computed once and read by every static build from it (``calibration_cache_path``).

    Calibration is most of a static build's time, and it does not depend on the recipe's
    exclusions, format or op types: its session runs unoptimised, so a tensor's range is the
    same however many others are recorded beside it. ``tests/test_quantize.py`` checks that
    a build from stored ranges writes the same bytes as one that calibrates.
    """
    from onnxruntime import __version__ as ort_version

    from parity.core.ort_session import effective_threads

    key = CacheKey(
        "calibration",
        {
            "source": content_digest(source),
            "threads": effective_threads(0),  # its session runs on the run's --threads
            "method": method,
            "op_types": list(op_types),
            "inputs": requests_digest(calibration),
            "code": source_digest(("builders/calibration.py",), ())[:16],
            "onnxruntime": ort_version,
        },
    )

    def build(temporary: Path) -> dict[str, object]:
        start = time.perf_counter()
        calibrate_ranges(source, temporary, method, calibration, op_types)
        return {"seconds": time.perf_counter() - start}

    return cache.get_or_build(key, ".json", build).path


def calibrate_ranges(
    source: Path,
    target: Path,
    method: CalibrationKind,
    calibration: Sequence[KokoroInput],
    op_types: Sequence[str],
) -> None:
    """What ``quantize_static`` does before it quantizes (ORT 1.32's calibration block),
    one request at a time, written as its own range cache file."""
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    reader = calibration_reader(calibration, None)  # refuses an empty set before any work
    with tempfile.TemporaryDirectory() as scratch, quiet():
        calibrator = create_calibrator(
            private_link(Path(source), Path(scratch)),
            list(op_types),
            augmented_model_path=str(Path(scratch) / "augmented.onnx"),
            calibrate_method=calibration_method(method),
        )
        _use_run_threads(calibrator)
        # The model the calibrator loaded, not a second load; its outputs are extended.
        reader.interface = find_interface(calibrator.model, str(source), inputs_only=True)
        for start in range(len(reader)):  # CalibStridedMinMax=1, as the builds use
            reader.set_range(start_index=start, end_index=start + 1)
            calibrator.collect_data(reader)
        save_tensors_data(calibrator.compute_data(), target)


def _use_run_threads(calibrator: Any) -> None:
    """ORT's calibrator opens its own session with ORT's default threads; the run's
    ``--threads`` (``parity.core.ort_session.use_threads``) reopens it through
    ``open_session``, unoptimised as ORT's is."""
    from parity.core.ort_session import effective_threads, open_session

    if effective_threads(0):
        path = Path(calibrator.augmented_model_path)
        calibrator.infer_session = open_session(path, optimization="disable")


def read_ranges(path: Path) -> dict[str, tuple[float, float]]:
    """A range cache file (``calibrate_ranges``) as tensor name -> (lowest, highest)."""
    from onnxruntime.quantization.calibrate import load_tensors_data

    data = load_tensors_data(path)
    return {
        name: (float(np.min(value.range_value[0])), float(np.max(value.range_value[1])))
        for name, value in data.data.items()
    }
