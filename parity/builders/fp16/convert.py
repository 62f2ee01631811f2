"""The float16/bfloat16 conversion's entry points: precisions decided, Casts placed, the result
checked, written atomically and cached under a key that covers this whole package."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import onnx

from parity.builders.fp16.casts import CastPlacer
from parity.builders.fp16.constants import LowConstants, prune_unread_constants
from parity.builders.fp16.kernels import unsupported_on_cpu
from parity.builders.fp16.precision import PrecisionPlan
from parity.builders.fp16.schema import all_nodes
from parity.builders.fp16.settings import (
    KOKORO_BLOCK_NODES,
    KOKORO_BLOCK_SCOPES,
    KOKORO_ONNX_FP16_WEBGPU,
    LOW_TYPES,
    WEBGPU_ACCUMULATING_OPS,
    WEBGPU_TAIL_NODES,
    WEBGPU_TAIL_SCOPES,
    Fp16Options,
    Fp16Report,
    Layout,
    kokoro_layout,
    stock_options,
)
from parity.builders.fp16.storage import store_weights_low
from parity.core.cache import ArtifactCache, CacheKey, atomic_path, content_digest
from parity.core.errors import ParityError, first_line
from parity.core.graph import UniqueNames, load_model
from parity.core.jsonable import to_jsonable
from parity.core.memo import RunStore, source_digest
from parity.core.scopes import first_naming_nothing

__all__ = [
    "Fp16Build",
    "Fp16Converter",
    "check",
    "convert_cached",
    "convert_file",
    "convert_float",
    "kokoro_options",
]

# The stock lists, in both layouts: each entry may name nothing on its own (the STFT variants
# differ), but not all of them at once.
_STOCK_SCOPES = (*KOKORO_BLOCK_SCOPES, *WEBGPU_TAIL_SCOPES, *KOKORO_ONNX_FP16_WEBGPU.block_scopes)
_STOCK_NODES = KOKORO_BLOCK_NODES | WEBGPU_TAIL_NODES | KOKORO_ONNX_FP16_WEBGPU.block_nodes

# Why our own: onnxconverter-common's ``convert_float_to_float16`` leaves Kokoro's export
# unloadable (a Cast it rewrites no longer matches the type ONNX Runtime infers), and both it
# and ONNX Runtime's ``transformers.float16`` put a Cast pair around every blocked node, even
# between two blocked neighbours, and lose track of float tensors that ``If``/``Loop``/``Scan``
# bodies read from the enclosing graph (tests/test_fp16.py records both).
#
# The conversion decides one precision per node (low, or float32 when blocked) and one
# precision per float tensor (its producer's); then, for every place a tensor is read, the
# reader's precision comes from the op schema (schema.roles). A Cast goes in only where what
# is available differs from what is wanted, once per tensor and precision.

_DEFAULT_OPTIONS = Fp16Options()  # frozen, so one shared default is safe


class Fp16Converter:
    """Converts ``model`` in place: precisions (PrecisionPlan), then constants and Casts
    (LowConstants, CastPlacer), then each scope's nodes and interface rewritten."""

    def __init__(self, model: onnx.ModelProto, options: Fp16Options, unsupported: set[str]) -> None:
        self.plan = PrecisionPlan(model, options, unsupported)
        self.model, self.options = model, options
        self.names = UniqueNames(model)
        self.constants = LowConstants(options.low, self.names)
        self.placer = CastPlacer(self.plan, self.names, self.constants)
        self.storage_casts = 0

    def run(self) -> None:
        self.plan.assign()
        self.placer.place()
        # Innermost scopes first: rebuilding a graph's node list copies its nodes, and with
        # them the subgraphs they hold, so a subgraph must be final before its parent is.
        for scope in reversed(self.plan.scopes):
            self.constants.convert_attributes(scope, self.plan)
            self.placer.place_insertions(scope)
            self.placer.retype_interface(scope)
        if self.options.low_storage_ops:
            self.storage_casts = store_weights_low(
                self.model, self.options, self.constants, self.names
            )

    def report(self, before: onnx.ModelProto, after: onnx.ModelProto) -> Fp16Report:
        """What ``run`` did, with the two models' serialized sizes."""
        plan, constants = self.plan, self.constants
        return Fp16Report(
            target=plan.options.target,
            nodes_converted=plan.nodes_converted,
            nodes_blocked=sum(plan.blocked_by.values()),
            blocked_by=dict(plan.blocked_by),
            casts_inserted=self.placer.casts + self.storage_casts,
            initializers_converted=constants.converted,
            values_clamped=constants.clamped,
            values_flushed=constants.flushed,
            size_before=before.ByteSize(),
            size_after=after.ByteSize(),
            unsupported_ops=tuple(sorted(plan.unsupported)),
        )


def _check_block_lists(model: onnx.ModelProto, options: Fp16Options) -> None:
    """Stop on a block-list entry that matches nothing in ``model``: what it should keep
    float32 would be converted without a word."""
    nodes = list(all_nodes(model.graph))
    names = {node.name for node in nodes}
    unmatched = {
        "--block-scope": first_naming_nothing(options.block_scopes, names, _STOCK_SCOPES),
        "--block-node": first_naming_nothing(
            sorted(options.block_nodes), names, _STOCK_NODES, prefix=False
        ),
        "--block-op": first_naming_nothing(
            sorted(options.block_ops),
            {node.op_type for node in nodes},
            WEBGPU_ACCUMULATING_OPS,  # --webgpu's: a graph need not have them all
            prefix=False,
        ),
    }
    for flag, entry in unmatched.items():
        if entry is not None:
            raise ParityError(
                f"fp16: {flag} {entry!r} matches nothing in the model, so what it should keep "
                "float32 would be converted; see its node names with "
                "`parity compare MODEL --list-scopes`"
            )


def convert_float(
    model: onnx.ModelProto, options: Fp16Options = _DEFAULT_OPTIONS
) -> tuple[onnx.ModelProto, Fp16Report]:
    """A copy of ``model`` with float32 computation in ``options.target``, and a report."""
    unknown_target = options.target not in LOW_TYPES
    if unknown_target:
        raise ParityError(f"fp16: unknown target {options.target!r}; use float16 or bfloat16")
    _check_block_lists(model, options)
    converted = onnx.ModelProto()
    converted.CopyFrom(model)
    unsupported = unsupported_on_cpu(model, options.target)
    converter = Fp16Converter(converted, options, unsupported)
    converter.run()
    prune_unread_constants(converted.graph)
    return converted, converter.report(model, converted)


def check(model: onnx.ModelProto) -> None:
    """``onnx.checker`` with full (strict) type inference; one error line on failure."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as error:
        raise ParityError(
            f"fp16: the converted model fails onnx.checker: {first_line(error)}"
        ) from error


def kokoro_options(
    source: Path, *, webgpu: bool, cache: ArtifactCache | None = None
) -> Fp16Options:
    """Kokoro's block list (``--webgpu``'s when asked) under the names the file at ``source``
    carries: parity's export or kokoro-onnx's layout (the published float32's). With
    ``cache``, the layout is kept by the file's digest: reading it loads the whole graph
    (0.9 s for the full model), which a warm run's cache hit need not repeat."""

    def layout() -> Layout:
        graph = onnx.load(str(source), load_external_data=False).graph
        return kokoro_layout(node.name for node in graph.node)

    if cache is None:
        return stock_options(kokoro=True, webgpu=webgpu, layout=layout())
    parts = {
        "source": content_digest(source),
        "code": source_digest(("builders/fp16/settings.py",), ()),
    }
    found: Layout = RunStore(cache).record("fp16-layout", parts, layout)
    return stock_options(kokoro=True, webgpu=webgpu, layout=found)


def convert_file(source: Path, target: Path, options: Fp16Options = _DEFAULT_OPTIONS) -> Fp16Report:
    """Convert an ONNX file; the output is checked, then written atomically (sizes on disk)."""
    model = load_model(source)
    converted, report = convert_float(model, options)
    check(converted)
    with atomic_path(Path(target)) as temporary:
        onnx.save(converted, str(temporary))
        size_after = temporary.stat().st_size
    return replace(report, size_before=Path(source).stat().st_size, size_after=size_after)


@dataclass(frozen=True)
class Fp16Build:
    """A converted model in the cache, its report, and whether it was there already."""

    path: Path
    report: Fp16Report
    cached: bool


def convert_cached(cache: ArtifactCache, source: Path, options: Fp16Options) -> Fp16Build:
    """``convert_file`` through the cache, keyed by the source file and the options.

    The source is named by its cache file (itself a content hash of what built it) and size;
    the text of every module of this package is in the key, so a converter change never
    reuses an old file.
    """
    source = Path(source)
    key = CacheKey(
        "fp16",
        {
            "source": content_digest(source),
            "options": options.key(),
            # core/graph.py names the Casts and walks subgraphs; ONNX Runtime's version decides
            # which ops have a CPU kernel in the target type (kernels.py), so what stays float32.
            "code": source_digest(("builders/fp16", "core/graph.py"), ("onnxruntime",))[:16],
            "onnx": onnx.__version__,
        },
    )
    built: list[Fp16Report] = []

    def build(temporary: Path) -> dict[str, object]:
        built.append(convert_file(source, temporary, options))
        return {"report": to_jsonable(built[0])}

    artefact = cache.get_or_build(key, ".onnx", build)
    if built:
        return Fp16Build(artefact.path, built[0], cached=False)
    fields = dict(artefact.meta["report"])
    fields.pop("passed", None)
    fields["unsupported_ops"] = tuple(fields.get("unsupported_ops", ()))
    return Fp16Build(artefact.path, Fp16Report(**fields), cached=True)
