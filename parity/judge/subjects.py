"""The files a run's gates judge, wherever they come from.

A subject is one ONNX file and the verdict of its precision: by default the harness's own
float32 export and float16 conversion; a user's routines in their place (``parity_export_with``,
``parity_fp16_with``, ``parity_quantize_with``, ``parity.builders.user_routines``); and prebuilt
files (``--parity-onnx NAME=PATH``), each judged by the verdict its precision calls for
(``parity.judge.verdict``). The pytest gates parametrize over the subjects of their precision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from parity.core.config import ParityConfig
from parity.core.errors import ParityError
from parity.core.session_probe import probe_cpu_session
from parity.judge.detect import GraphFacts, read_graph, spec_for_graph
from parity.judge.verdict import choose_verdict

if TYPE_CHECKING:
    from parity.core.cache import ArtifactCache
    from parity.core.memo import RunStore
    from parity.core.spec import KokoroSpec
    from parity.judge.boundaries import IntermediateSession
    from parity.judge.forcing import ForcingSession

__all__ = ["Subject", "SubjectFiles", "plan_subjects"]


@dataclass(frozen=True)
class Subject:
    """One file the gates judge: its name (the test id), the verdict's precision, and where
    it comes from: ``export``, ``fp16`` or ``quantize`` (built here, by the harness or by the
    ``hook`` routine) or ``prebuilt`` (``path``)."""

    name: str
    precision: str
    origin: str
    path: Path | None = None
    hook: str | None = None
    reason: str = ""

    def describe(self) -> str:
        maker = f"built by {self.hook}" if self.hook else f"{self.origin} by the harness"
        where = f"{self.path}" if self.path is not None else maker
        return f"{self.name}: {where}; {self.precision} verdict ({self.reason})"


def plan_subjects(config: ParityConfig) -> tuple[Subject, ...]:
    """The run's subjects. Without routines, the harness's own pipeline: its export and its
    float16 conversion. With routines, the steps they make (a float32 export, then float16 and
    int8 where given): the gates judge the user's conversion, not steps they never asked for.
    Prebuilt files replace the harness's own export, unless an export routine is configured;
    a prebuilt file's precision is read from the file."""
    subjects: list[Subject] = []
    if not config.prebuilt or "export" in config.hooks:
        steps = [("fp32", "fp32", "export")]
        if not config.hooks or "fp16" in config.hooks:
            steps.append(("fp16", "fp16", "fp16"))
        if "quantize" in config.hooks:
            steps.append(("int8", "quantized", "quantize"))
        subjects += [
            Subject(
                name,
                precision,
                origin,
                hook=config.hooks.get(origin),
                reason="the precision it is built in",
            )
            for name, precision, origin in steps
        ]
    taken = {subject.name for subject in subjects}
    for name, path in config.prebuilt.items():
        if name in taken:
            raise ParityError(
                f"onnx: {name!r} names a file the run builds too; give the prebuilt one another "
                "name (--parity-onnx mine=PATH)"
            )
        choice = choose_verdict(read_graph(path), config.precision)
        subjects.append(
            Subject(name, choice.precision, "prebuilt", path=path, reason=choice.reason)
        )
    return tuple(subjects)


class SubjectFiles:
    """Each subject's file (built once, cached by content hash), its PyTorch reference model,
    and the sessions that judge it; shared by every gate of a run."""

    def __init__(
        self,
        config: ParityConfig,
        spec: KokoroSpec,
        *,
        cache: ArtifactCache,
        runs: RunStore,
        subjects: tuple[Subject, ...],
        rootdir: Path | None = None,
        own_export: Path | None = None,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.config, self.spec, self.cache, self.runs = config, spec, cache, runs
        self.report = report  # where a file's session finding goes (the run's figures)
        self.own_export = own_export  # the harness's export where the caller built it already
        self.subjects = {subject.name: subject for subject in subjects}
        self.rootdir = rootdir
        self._paths: dict[str, Path] = {}
        self._facts: dict[str, GraphFacts] = {}
        self._models: dict[KokoroSpec, object] = {}

    def facts(self, subject: Subject) -> GraphFacts:
        """What the subject's file is (read once: a full-size graph takes a second to load)."""
        if subject.name not in self._facts:
            self._facts[subject.name] = read_graph(self.path(subject))
        return self._facts[subject.name]

    def spec_for(self, subject: Subject) -> KokoroSpec:
        """The PyTorch recipe a subject is judged against: the run's, with the STFT and source
        kinds a prebuilt file was exported with where the configuration says auto."""
        if subject.origin != "prebuilt":
            return self.spec
        return spec_for_graph(self.spec, self.facts(subject), self.config.detect)

    def model(self, subject: Subject) -> object:
        from parity.builders.model import build_model

        spec = self.spec_for(subject)
        if spec not in self._models:
            self._models[spec] = build_model(spec)
        return self._models[spec]

    def path(self, subject: Subject) -> Path:
        if subject.name not in self._paths:
            path = self._build(subject)
            if subject.origin == "prebuilt" or subject.hook:  # a file made elsewhere
                finding = probe_cpu_session(path, self.cache.root).finding()
                if finding is not None and self.report is not None:
                    self.report(finding)
            self._paths[subject.name] = path
        return self._paths[subject.name]

    def _float32(self) -> Subject:
        return next(s for s in self.subjects.values() if s.origin == "export")

    def _build(self, subject: Subject) -> Path:
        from parity.builders.user_routines import built_by_hook, load_hook

        if subject.origin == "prebuilt":
            assert subject.path is not None
            return subject.path
        hook = load_hook(subject.origin, subject.hook, self.rootdir) if subject.hook else None
        if subject.origin == "export":
            model = self.model(subject)
            if hook is not None:
                from parity.builders.model import build_model

                return built_by_hook(
                    self.cache,
                    hook,
                    model=model,
                    fresh_model=lambda: build_model(self.spec),
                    recipe=self.spec.key_parts(),
                )
            return self._own_export(model)
        source = self.path(self._float32())
        if hook is not None:
            return built_by_hook(self.cache, hook, source=source)
        if subject.origin == "fp16":
            from parity.builders.fp16 import convert_cached, kokoro_options

            # On WebGPU, the file `parity fp16 --webgpu` makes for it: float16 sums and the
            # generator's tail kept float32 (docs/webgpu.md); elsewhere Kokoro's block list.
            webgpu = self.config.provider == "webgpu"
            options = kokoro_options(source, webgpu=webgpu, cache=self.cache)
            return convert_cached(self.cache, source, options).path
        raise ParityError(f"subject {subject.name}: nothing builds a {subject.origin} file")

    def _own_export(self, model: object) -> Path:
        from parity.builders.export import export_cached

        if self.own_export is not None:
            return self.own_export
        result = export_cached(
            self.cache,
            self.spec,
            model,  # type: ignore[arg-type]
            exporter=self.config.exporter,
            opset=self.config.opset,
            padding=self.config.padding,
        )
        if not result.ok or result.path is None:
            raise ParityError(f"export failed: {result.error_class}: {result.error_line}")
        return result.path

    def source_of(self, subject: Subject) -> Path | None:
        """The float32 file a built subject was converted from (None for a prebuilt one)."""
        if subject.origin in ("fp16", "quantize"):
            return self.path(self._float32())
        return None

    def reference_for(self, subject: Subject) -> Path | None:
        """A quantized file's float32 reference: the configured one, the file it was built
        from, else the run's one float32 file; None (PyTorch) where the run has none."""
        if self.config.reference is not None:
            return self.config.reference
        floats = [s for s in self.subjects.values() if s.precision == "fp32"]
        if subject.origin == "quantize" or len(floats) == 1:
            return self.path(floats[0])
        return None

    def forcing(self, subject: Subject) -> ForcingSession:
        from parity.judge.forcing import ForcingSession

        return ForcingSession(
            self.path(subject),
            threads=self.config.threads,
            runs=self.runs,
            scopes=self.config.scopes,
            provider=self.config.provider,
        )

    def intermediate(self, subject: Subject, request: object) -> IntermediateSession:
        from parity.judge.boundaries import IntermediateSession

        return IntermediateSession.for_kokoro(
            self.path(subject),
            self.model(subject),
            request,  # type: ignore[arg-type]
            threads=self.config.threads,
            runs=self.runs,
            overrides=self.config.scopes,
            provider=self.config.provider,
        )
