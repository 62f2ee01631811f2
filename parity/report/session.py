"""What a run measured: the recorder shared by the pytest plugin and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from parity.core.errors import ParityError


@dataclass(frozen=True)
class Measurement:
    """One measured figure for the summary: a section, a readable line, the raw numbers."""

    section: str
    line: str
    data: dict[str, Any] = field(default_factory=dict)
    test: str | None = None  # the pytest node id that measured it (its gate)


class Recorder:
    """Collects measurements during a run, in order, for the terminal summary and reports.

    ``data`` may hold result objects (a ``SweepResult``, a ``LatencyRecord``): the report
    draws its plots from them and stores them as JSON. ``audio`` keeps one waveform per name
    (the first recorded) for the report's spectrograms and WAV samples.
    """

    def __init__(self) -> None:
        self.measurements: list[Measurement] = []
        self.sounds: dict[str, Any] = {}
        self.spoken: str | None = None  # the one request every sound speaks
        self.current_test: str | None = None

    def add(self, section: str, line: str, **data: Any) -> None:
        self.measurements.append(Measurement(section, line, data, self.current_test))

    def audio(self, name: str, waveform: Any, *, spoken: str | None = None) -> None:
        """Keep ``name``'s waveform (the first recorded) for the report; ``spoken`` names the
        request, which must be the same for every sound, since the report sets them side by
        side."""
        if spoken is not None and self.spoken not in (None, spoken):
            raise ParityError(
                f"recorder: sound {name!r} speaks {spoken!r} but the run's sounds speak "
                f"{self.spoken!r}; record the same request for every model"
            )
        self.spoken = self.spoken or spoken
        self.sounds.setdefault(name, waveform)

    def to_bytes(self) -> bytes:
        """Measurements and sounds for a pytest-xdist worker to hand to the controller.

        Pickled, not JSON, so the controller's report gets the result objects its plots are
        drawn from (the worker runs this same package); data that cannot be pickled goes
        as plain JSON data instead.
        """
        import json
        import pickle

        from parity.core.jsonable import to_jsonable

        unpicklable = (pickle.PicklingError, TypeError, AttributeError)
        try:
            return pickle.dumps((self.measurements, self.sounds, self.spoken))
        except unpicklable:
            pass  # find the measurements at fault; only they go as JSON data

        def picklable(measurement: Measurement) -> Measurement:
            try:
                pickle.dumps(measurement.data)
            except unpicklable:
                # to_jsonable passes unknown objects through: str() is their JSON form here.
                plain = json.loads(json.dumps(to_jsonable(measurement.data), default=str))
                return replace(measurement, data=plain)
            return measurement

        measurements = [picklable(measurement) for measurement in self.measurements]
        return pickle.dumps((measurements, self.sounds, self.spoken))

    def merge_bytes(self, payload: bytes) -> None:
        """Add a worker's ``to_bytes`` (on the controller, after the worker finished)."""
        import pickle

        measurements, sounds, spoken = pickle.loads(payload)  # our own worker's, same package
        self.measurements.extend(measurements)
        for name, waveform in sounds.items():
            self.audio(name, waveform, spoken=spoken)

    def sections(self) -> dict[str, list[Measurement]]:
        grouped: dict[str, list[Measurement]] = {}
        for measurement in self.measurements:
            grouped.setdefault(measurement.section, []).append(measurement)
        return grouped
