"""Which Kokoro is built and how it is exported: a declarative, hashable recipe, torch-free.

The spec and its choices live here, below every stage, so that the run's configuration
(``parity.core.config``), the pytest plugin and ``parity --help`` can name them without
importing torch; ``parity.builders.model.build_model`` turns a spec into a ``KModel``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from parity.core.errors import ParityError

Preset = Literal["full", "tiny"]
StftKind = Literal["exact", "kokoro", "complex"]
SourceKind = Literal["deterministic", "stochastic"]
Exporter = Literal["torchscript", "dynamo"]
# How an export pads the LSTM encoders' outputs: "pad" (Pad) or kokoro's own slice assignment,
# which exporters write as ScatterND (parity.builders.padding).
Padding = Literal["pad", "scatter"]
PRESETS: tuple[Preset, ...] = ("full", "tiny")
STFT_KINDS: tuple[StftKind, ...] = ("exact", "kokoro", "complex")
SOURCE_KINDS: tuple[SourceKind, ...] = ("deterministic", "stochastic")
EXPORTERS: tuple[Exporter, ...] = ("torchscript", "dynamo")
PADDINGS: tuple[Padding, ...] = ("pad", "scatter")
# "auto": the kind a graph being judged was exported with (``parity.judge.detect``).
AUTO = "auto"
DEFAULT_OPSET = 20
SAMPLE_RATE = 24_000
# The model every variant's time and sound is measured against: the float32 graph, by name.
BASELINE = "fp32"
CHECKPOINT_PARTS = ("bert", "bert_encoder", "predictor", "text_encoder", "decoder")

# The tiny preset keeps every module of the full one and shrinks what the config can shrink:
# ALBERT, the number of prosody layers and the generator's resblocks. kokoro's Decoder
# hard-codes its 1024/512/64 channel widths (asr_res is Conv1d(512, 64)), so hidden_dim and
# upsample_initial_channel stay at 512.
_TINY_OVERRIDES: dict[str, Any] = {
    "n_layer": 1,
    "plbert": {
        "hidden_size": 64,
        "num_attention_heads": 2,
        "intermediate_size": 128,
        "max_position_embeddings": 512,
        "num_hidden_layers": 2,
        "dropout": 0.1,
    },
    "istftnet": {"resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]]},
}


def load_config(preset: Preset = "full") -> dict[str, Any]:
    """The architecture config (with its 178-id phoneme vocab) of a preset, as KModel takes it."""
    if preset not in PRESETS:
        raise ParityError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    text = resources.files("parity").joinpath("data/kokoro-82m.json").read_text("utf-8")
    config: dict[str, Any] = json.loads(text)
    if preset == "tiny":
        for key, value in _TINY_OVERRIDES.items():
            if isinstance(value, dict):
                config[key] = {**config[key], **value}
            else:
                config[key] = value
    return config


@dataclass(frozen=True)
class KokoroSpec:
    """Everything that decides which Kokoro is built: a declarative, hashable recipe."""

    preset: Preset = "full"
    seed: int = 0
    checkpoint: str | None = None
    stft: StftKind = "exact"
    source: SourceKind = "deterministic"

    def key_parts(self) -> dict[str, Any]:
        """The parts of a cache key the weights' digest does not already cover."""
        config = json.dumps(load_config(self.preset), sort_keys=True)
        return {
            "preset": self.preset,
            "config": hashlib.sha256(config.encode()).hexdigest()[:16],
            "stft": self.stft,
            "source": self.source,
        }

    def label(self) -> str:
        weights = Path(self.checkpoint).name if self.checkpoint else f"seed {self.seed}"
        return f"{self.preset} ({weights}), stft={self.stft}, source={self.source}"


def seed_for(seed: int | None, checkpoint: str | None) -> int:
    """The random weights' seed (0 unless given); refused beside a checkpoint, whose weights
    it would not touch, so it cannot be ignored without a word."""
    if seed is not None and checkpoint is not None:
        raise ParityError(
            f"seed {seed} is for random weights, but the weights come from {checkpoint}; drop "
            "the seed or the checkpoint (--checkpoint, --parity-checkpoint, "
            "PARITY_KOKORO_CHECKPOINT or --parity-weights=recovered)"
        )
    return 0 if seed is None else seed
