"""Which input and output of a Kokoro graph plays which role, whatever the exporter named it.

Kokoro graphs in the wild name the same five values differently: ours and kokoro-js's
(onnx-community) take ``input_ids``, kokoro-onnx's ``tokens``; the waveform is ``waveform``
or ``audio``; the durations are ``durations``, ``pred_dur``, or an unnamed ``onnx::Shape_3318``
where ``output_names`` listed only the waveform (the blog post's ``KModelForONNX`` export),
or missing. A role is found by name first, then by dtype and shape: int64 ids ``[1, L]``, a
float ``[1, 256]`` style, a float speed, a float waveform, int64 durations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from parity.core.errors import ParityError

__all__ = [
    "FORCED_INPUT",
    "PREDICTED_OUTPUT",
    "KokoroInterface",
    "find_interface",
    "session_interface",
]

FORCED_INPUT = "forced_durations"  # int64 [1, L], boundary tokens included
PREDICTED_OUTPUT = "predicted_durations"  # what the graph would have used, same shape

_NAMES = {
    "ids": ("input_ids", "tokens", "ids", "token_ids"),
    "style": ("style", "ref_s", "voice", "s"),
    "speed": ("speed",),
    "waveform": ("waveform", "audio", "wav"),
    "durations": ("durations", "duration", "pred_dur", "pred_durations"),
}
_ORT_TYPES = {
    "float": TensorProto.FLOAT,
    "float16": TensorProto.FLOAT16,
    "double": TensorProto.DOUBLE,
    "bfloat16": TensorProto.BFLOAT16,
    "int64": TensorProto.INT64,
    "int32": TensorProto.INT32,
}
_FLOATS = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}
_INTEGERS = {TensorProto.INT64, TensorProto.INT32}
_EXPECTED = (
    "inputs ids (int64 [1, L]), style (float [1, 256]), speed (float [1]) and outputs "
    "waveform (float) [, durations (int64)]"
)


@dataclass(frozen=True)
class _Value:
    name: str
    elem_type: int
    dims: tuple[int | str, ...]

    @classmethod
    def of(cls, info: onnx.ValueInfoProto) -> _Value:
        tensor = info.type.tensor_type
        dims = tuple(
            d.dim_value if d.HasField("dim_value") else d.dim_param for d in tensor.shape.dim
        )
        return cls(info.name, tensor.elem_type, dims)

    @classmethod
    def of_session(cls, arg: Any) -> _Value:
        """From ONNX Runtime's ``NodeArg`` (``tensor(int64)``, shape with names or None)."""
        dtype = str(arg.type).removeprefix("tensor(").removesuffix(")")
        elem_type = _ORT_TYPES.get(dtype, TensorProto.UNDEFINED)
        dims = tuple(d if isinstance(d, int) else str(d) for d in (arg.shape or ()))
        return cls(arg.name, elem_type, dims)

    def describe(self) -> str:
        kind = onnx.helper.tensor_dtype_to_np_dtype(self.elem_type).name if self.elem_type else "?"
        return f"{self.name} ({kind} {list(self.dims)})"


@dataclass(frozen=True)
class KokoroInterface:
    """The graph's name for each role, how each was found, and its speed's dtype."""

    ids: str
    style: str
    speed: str
    waveform: str
    durations: str | None  # a graph output, or None: the duration chain may still be exposed
    forced_durations: str | None = None  # set on a graph rewired by parity.builders.forced_timing
    dtypes: tuple[str, str, str] = ("int64", "float32", "float32")  # of ids, style, speed
    speed_rank: int = 1
    found_by_shape: tuple[str, ...] = ()  # roles whose names were not the usual ones

    def feed(
        self, ids: np.ndarray, style: np.ndarray, speed: float, durations: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """The session inputs for one request, in the dtypes and ranks the graph declares."""
        ids_type, style_type, speed_type = self.dtypes
        fed = {
            self.ids: np.asarray(ids, dtype=ids_type),
            self.style: np.asarray(style, dtype=style_type),
            self.speed: np.asarray(speed, dtype=speed_type).reshape((1,) * self.speed_rank),
        }
        if self.forced_durations is not None:
            if durations is None:
                durations = np.ones(np.shape(ids), dtype=np.int64)
            fed[self.forced_durations] = np.asarray(durations, dtype=np.int64).reshape(1, -1)
        return fed

    @property
    def inputs(self) -> tuple[str, ...]:
        names = (self.ids, self.style, self.speed)
        return (*names, self.forced_durations) if self.forced_durations else names

    def describe(self) -> str:
        durations = self.durations or "none (taken from the graph's duration chain)"
        shape = (
            f"; by dtype and shape: {', '.join(self.found_by_shape)}" if self.found_by_shape else ""
        )
        return (
            f"ids={self.ids}, style={self.style}, speed={self.speed} -> waveform={self.waveform}, "
            f"durations={durations}{shape}"
        )


def _is_ids(value: _Value) -> bool:
    return value.elem_type in _INTEGERS and len(value.dims) == 2


def _is_style(value: _Value) -> bool:
    last = value.dims[-1] if value.dims else None
    return (
        value.elem_type in _FLOATS
        and len(value.dims) == 2
        and (last == 256 or isinstance(last, str))
    )


def _is_speed(value: _Value) -> bool:
    one = len(value.dims) == 1 and (value.dims[0] == 1 or isinstance(value.dims[0], str))
    return (value.elem_type in _FLOATS or value.elem_type in _INTEGERS) and (not value.dims or one)


def _is_waveform(value: _Value) -> bool:
    return value.elem_type in _FLOATS and 1 <= len(value.dims) <= 3


def _is_durations(value: _Value) -> bool:
    return value.elem_type in _INTEGERS and 1 <= len(value.dims) <= 2


_CHECKS = {
    "ids": _is_ids,
    "style": _is_style,
    "speed": _is_speed,
    "waveform": _is_waveform,
    "durations": _is_durations,
}


def _pick(role: str, candidates: list[_Value], found_by_shape: list[str]) -> _Value | None:
    """The value that plays ``role``: by its usual names, else the only one of its dtype and
    shape left; it is removed from ``candidates``."""
    for name in _NAMES[role]:
        for value in candidates:
            if value.name == name:
                candidates.remove(value)
                return value
    fitting = [value for value in candidates if _CHECKS[role](value)]
    if len(fitting) == 1:
        candidates.remove(fitting[0])
        found_by_shape.append(f"{role}={fitting[0].name}")
        return fitting[0]
    return None


def find_interface(
    model: onnx.ModelProto, where: str = "graph", *, inputs_only: bool = False
) -> KokoroInterface:
    """The roles of ``model``'s inputs and outputs, or one line saying what does not fit.

    ``inputs_only`` judges the inputs alone, for a graph whose outputs a tool has extended
    (ONNX Runtime's calibrator exposes every tensor it measures).
    """
    initializers = {tensor.name for tensor in model.graph.initializer}
    inputs = [_Value.of(info) for info in model.graph.input if info.name not in initializers]
    outputs = [_Value.of(info) for info in model.graph.output]
    if inputs_only:
        outputs = [_Value(outputs[0].name, TensorProto.FLOAT, ("n",))] if outputs else []
    return _interface(inputs, outputs, where)


def session_interface(session: Any, where: str) -> KokoroInterface:
    """``find_interface`` from an open ONNX Runtime session (no second load of the model)."""
    inputs = [_Value.of_session(arg) for arg in session.get_inputs()]
    return _interface(inputs, [_Value.of_session(arg) for arg in session.get_outputs()], where)


def _interface(inputs: list[_Value], outputs: list[_Value], where: str) -> KokoroInterface:
    found = f"found inputs {', '.join(v.describe() for v in inputs) or 'none'} and outputs " + (
        ", ".join(v.describe() for v in outputs) or "none"
    )
    forced = next((value for value in inputs if value.name == FORCED_INPUT), None)
    free_inputs = [value for value in inputs if value is not forced]
    by_shape: list[str] = []
    roles = {role: _pick(role, free_inputs, by_shape) for role in ("ids", "style", "speed")}
    free_outputs = [value for value in outputs if value.name != PREDICTED_OUTPUT]
    waveform = _pick("waveform", free_outputs, by_shape)
    durations = _pick("durations", free_outputs, by_shape)
    missing = [role for role, value in roles.items() if value is None]
    if len(missing) >= 2:
        raise ParityError(f"{where}: not a Kokoro graph: expected {_EXPECTED}; {found}")
    if waveform is None:
        missing.append("waveform")
    if missing:
        raise ParityError(
            f"{where}: a Kokoro graph needs {', '.join(missing)} and none fits; expected "
            f"{_EXPECTED}; {found}"
        )
    if free_inputs:
        extra = ", ".join(value.describe() for value in free_inputs)
        raise ParityError(
            f"{where}: extra input(s) {extra}: Kokoro takes only ids, style and speed; export "
            "without them (or give them defaults as initializers)"
        )
    ids, style, speed = roles["ids"], roles["style"], roles["speed"]
    if ids is None or style is None or speed is None or waveform is None:  # refused above
        raise AssertionError("unreachable: a missing role is reported above")
    return KokoroInterface(
        ids=ids.name,
        style=style.name,
        speed=speed.name,
        waveform=waveform.name,
        durations=PREDICTED_OUTPUT if forced else durations.name if durations else None,
        forced_durations=forced.name if forced else None,
        dtypes=(_numpy_name(ids), _numpy_name(style), _numpy_name(speed)),
        speed_rank=len(speed.dims),
        found_by_shape=tuple(by_shape),
    )


def _numpy_name(value: _Value) -> str:
    return onnx.helper.tensor_dtype_to_np_dtype(value.elem_type).name
