"""What several commands share: their flags from the one option table, and the
``ParityConfig`` those flags make (the same one the pytest plugin builds)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from parity.core.config import OPTIONS, ParityConfig, build_config

if TYPE_CHECKING:
    from parity.core.cache import ArtifactCache
    from parity.core.memo import RunStore
    from parity.core.spec import KokoroSpec
    from parity.judge.detect import GraphFacts


def add_table_options(parser: argparse.ArgumentParser, command: str) -> None:
    """The table's options that ``command`` takes, as ``--<name>`` flags."""
    for option in OPTIONS:
        if command in option.commands:
            settings = option.parser_settings(option.name, option.help_line())
            parser.add_argument(option.cli_flag, **settings)


def config_from(args: argparse.Namespace) -> ParityConfig:
    """The run's configuration from a command's flags (flags it lacks take their default)."""
    values = {option.name: getattr(args, option.name, None) for option in OPTIONS}
    return build_config(values, Path.cwd())


def given_cache(args: argparse.Namespace) -> ArtifactCache | None:
    """The cache ``--cache-dir`` (or PARITY_CACHE_DIR) names; None without one, so a command
    computes everything and writes nothing but the outputs asked for."""
    import os

    from parity.core.cache import ArtifactCache, require_writable

    if not (getattr(args, "cache_dir", None) or os.environ.get("PARITY_CACHE_DIR")):
        return None
    root = config_from(args).cache_root
    require_writable(root)
    return ArtifactCache(root)


def run_store(args: argparse.Namespace) -> RunStore:
    """The run store in ``given_cache``, or one that computes every run."""
    from parity.core.memo import RunStore

    return RunStore(given_cache(args))


def spec_from(config: ParityConfig) -> KokoroSpec:
    """The configuration's model recipe, with recovered trained weights put in place."""
    from parity.builders.recover import resolved_spec
    from parity.core.cache import ArtifactCache

    return resolved_spec(config, ArtifactCache(config.cache_root))


def inputs_dir(args: argparse.Namespace) -> Path:
    """A command's ``--inputs`` folder, else the phoneme fixtures the package ships."""
    from parity.core.config import default_inputs

    return Path(args.inputs) if args.inputs else default_inputs()


def kokoro_file(path: Path) -> GraphFacts:
    """What the Kokoro ONNX file at ``path`` is; one line where it is missing, unreadable, not
    Kokoro, or has an input too few or too many, or where ONNX Runtime crashes on it (then the
    options it opens with, which every session on it uses: ``parity.core.session_probe``)."""
    from parity.core.cache import default_cache_root
    from parity.core.ort_session import require_onnx_file
    from parity.core.session_probe import probe_cpu_session
    from parity.judge.detect import read_graph

    require_onnx_file(path)
    facts = read_graph(path)
    finding = probe_cpu_session(path, default_cache_root()).finding()
    if finding is not None:
        print(f"parity: {finding}", file=sys.stderr)
    return facts
