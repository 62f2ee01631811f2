"""Kokoro-82M as ``kokoro.model.KModel``, built offline: seeded random or a user's checkpoint.

The architecture comes from the config the project ships (the published Kokoro-82M
``config.json``); weights are seeded random by default, because the trained ones live on a
model hub that this harness never calls, or a checkpoint the user passes.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from parity.builders.stft import STFT
from parity.core.errors import ParityError
from parity.core.spec import (
    CHECKPOINT_PARTS,
    SOURCE_KINDS,
    STFT_KINDS,
    KokoroSpec,
    Preset,
    SourceKind,
    StftKind,
    load_config,
)

# Nothing in the harness may reach a model hub; kokoro and transformers honour this.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# kokoro ships no type hints; its modules are reached by attribute (model.decoder.generator).
KModel = Any


def _empty_checkpoint() -> io.BytesIO:
    """KModel downloads weights unless given some; an empty dict leaves its own init in place."""
    buffer = io.BytesIO()
    torch.save({}, buffer)
    buffer.seek(0)
    return buffer


def _calibrate_random_heads(model: KModel, generator: torch.Generator) -> None:
    """Move the random model's output heads into the ranges a trained Kokoro produces.

    With PyTorch's default init every token lasts 25 frames (sigmoid(0) * max_dur 50, one
    frame = 25 ms) and F0 sits near 0 Hz, below the 10 Hz voicing threshold everywhere, so the
    harmonic source is silent. These factors were measured on the fixture inputs to give
    1 to 5 frames per phoneme (3.5 s for the 50-symbol sentence, which trained Kokoro speaks
    in 3.6 s) and F0 around 140 Hz with a spread of 60 Hz, which crosses the voicing threshold
    now and then, so both the voiced and the unvoiced paths of the source are exercised.

    The harmonic source enters the generator as STFT magnitude and phase, and a phase is a
    discontinuous function of its signal (it wraps at +-pi, and the DC and Nyquist bins are
    0 or pi by the sign of a real number), so a 1e-6 perturbation can move it by 2*pi. The
    trained Kokoro-82M weights its phase channels far less than its magnitude channels (in the
    published int8 export, noise_convs.0 has a mean |w| of 0.11 quantization steps on the
    phase channels against 2.79 on the magnitude ones); default init weights them alike,
    which makes the random model far more chaotic than the real one. Those weights are
    scaled by the measured ratio.
    """
    duration = model.predictor.duration_proj.linear_layer
    with torch.no_grad():
        duration.bias.normal_(-10.0, 0.3, generator=generator)
        duration.weight.mul_(16.0)
        model.predictor.F0_proj.bias.fill_(140.0)
        model.predictor.F0_proj.weight.mul_(300.0)
        for conv in model.decoder.generator.noise_convs:
            bins = conv.weight.shape[1] // 2
            conv.weight[:, bins:].mul_(0.11 / 2.79)


def build_model(spec: KokoroSpec) -> KModel:
    """The ``KModel`` a spec describes (``parity.core.spec``)."""
    return build_kokoro(
        preset=spec.preset,
        seed=spec.seed,
        checkpoint=spec.checkpoint,
        stft=spec.stft,
        source=spec.source,
    )


@contextlib.contextmanager
def _kokoro_construction_warnings() -> Iterator[None]:
    """Silence the two warnings kokoro's own constructors give on every build, and only them:
    its LSTMs are built with dropout and one layer (dropout is inert in eval mode), and its
    checkpoints need the deprecated ``weight_norm`` API (the ``weight_g``/``weight_v`` keys)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "dropout option adds dropout after all but last", UserWarning
        )
        warnings.filterwarnings(
            "ignore", r"`torch\.nn\.utils\.weight_norm` is deprecated", FutureWarning
        )
        yield


def build_kokoro(
    preset: Preset = "full",
    seed: int = 0,
    checkpoint: str | os.PathLike[str] | None = None,
    stft: StftKind = "exact",
    source: SourceKind = "deterministic",
) -> KModel:
    """A ``kokoro.model.KModel`` in eval mode, seeded random unless a checkpoint is given.

    ``stft`` picks the generator's STFT ("exact": ours; "kokoro": kokoro's ``CustomSTFT``;
    "complex": ``torch.stft``); ``source`` whether the harmonic source draws random numbers.
    """
    if stft not in STFT_KINDS:
        raise ParityError(f"unknown stft {stft!r}: choose one of {', '.join(STFT_KINDS)}")
    if source not in SOURCE_KINDS:
        raise ParityError(f"unknown source {source!r}: choose one of {', '.join(SOURCE_KINDS)}")
    from kokoro.model import KModel

    config = load_config(preset)
    with torch.random.fork_rng(devices=[]), _kokoro_construction_warnings():
        torch.manual_seed(seed)
        model = KModel(repo_id="hexgrad/Kokoro-82M", config=config, model=_empty_checkpoint())
        _calibrate_random_heads(model, torch.Generator().manual_seed(seed))
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    generator = model.decoder.generator
    if source == "deterministic":
        generator.m_source = _deterministic_source(generator.m_source)
    if stft != "complex":  # KModel(disable_complex=False) builds the torch.stft one
        generator.stft = _make_stft(stft, config["istftnet"])
    model.config = config
    model.requires_grad_(False)
    return model.eval()


def _make_stft(kind: StftKind, istftnet: Mapping[str, Any]) -> torch.nn.Module:
    n_fft, hop = istftnet["gen_istft_n_fft"], istftnet["gen_istft_hop_size"]
    if kind == "kokoro":
        from kokoro.custom_stft import CustomSTFT

        return CustomSTFT(filter_length=n_fft, hop_length=hop, win_length=n_fft)
    return STFT(n_fft, hop, n_fft)


def _derived_key(key: str) -> bool:
    """State-dict entries that are constants of the STFT choice, not weights."""
    return key.startswith("decoder.generator.stft.")


def load_checkpoint(model: KModel, path: str | os.PathLike[str]) -> None:
    """Load a Kokoro checkpoint ({part: state_dict}) strictly, with one-line errors.

    kokoro's own loader retries with ``strict=False`` after stripping seven characters from
    every key, which silently loads nothing into a module whose keys had no ``module.``
    prefix; here every missing, unexpected or mis-shaped tensor is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise ParityError(f"checkpoint {path}: no such file; pass a Kokoro .pth checkpoint")
    try:
        parts = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for truncated or foreign files
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ParityError(
            f"checkpoint {path}: not a readable torch checkpoint ({first}); "
            "is it truncated? re-download or re-save it"
        ) from error
    if not isinstance(parts, Mapping) or not set(parts) <= set(CHECKPOINT_PARTS) or not parts:
        found = sorted(parts) if isinstance(parts, Mapping) else type(parts).__name__
        raise ParityError(
            f"checkpoint {path}: expected a dict of {', '.join(CHECKPOINT_PARTS)}, found {found}"
        )
    missing_parts = [name for name in CHECKPOINT_PARTS if name not in parts]
    if missing_parts:
        raise ParityError(f"checkpoint {path}: missing part(s) {', '.join(missing_parts)}")
    for name in CHECKPOINT_PARTS:
        module = getattr(model, name)
        # The STFT's buffers are constants of the STFT choice, not weights: a checkpoint saved
        # from KModel(disable_complex=True) carries CustomSTFT's, which ours need not match.
        state = {
            _strip_prefix(key): value
            for key, value in parts[name].items()
            if not _derived_key(f"{name}.{_strip_prefix(key)}")
        }
        _check_state(path, name, module.state_dict(), state)
        expected = module.state_dict()
        expected.update(state)
        module.load_state_dict(expected, strict=True)


def _strip_prefix(key: str) -> str:
    return key[len("module.") :] if key.startswith("module.") else key


def _check_state(
    path: Path,
    part: str,
    expected: Mapping[str, torch.Tensor],
    found: Mapping[str, torch.Tensor],
) -> None:
    wanted = {key for key in expected if not _derived_key(f"{part}.{key}")}
    missing = sorted(wanted - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (first: {part}.{missing[0]})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected (first: {part}.{unexpected[0]})")
        raise ParityError(
            f"checkpoint {path}: keys do not match the Kokoro architecture: {'; '.join(detail)}"
        )
    for key in sorted(wanted):
        want, have = tuple(expected[key].shape), tuple(found[key].shape)
        if want != have:
            raise ParityError(
                f"checkpoint {path}: {part}.{key} has shape {have}, the model expects {want}; "
                "is the checkpoint for another preset?"
            )


# F0 in units of 2**-23 Hz: a float32 F0 of 1 Hz or more is a whole number of them. Summed
# over the 9 harmonics' 10^4 frames of a long request it stays below 2**51, within int64.
FIXED_POINT = 2**23


def _deterministic_source(stochastic: Any) -> torch.nn.Module:
    """The harmonic source with its random draws removed, as the published kokoro-onnx export.

    kokoro's SineGen adds a random initial phase per harmonic (``torch.rand``) and Gaussian
    noise (``torch.randn_like``) on every call, so two runs differ; the published export has
    neither. The weights (``l_linear``) stay those of the module it replaces.
    """
    return DeterministicSource(stochastic.l_sin_gen, stochastic.l_linear)


class DeterministicSource(torch.nn.Module):
    """Sines at F0 and its harmonics, zero where unvoiced, through ``l_linear`` and tanh.

    The same function as kokoro's SineGen without its noise, computed so that its precision
    does not decay with length: kokoro sums the phase in float32 cycles and multiplies by
    2*pi*300, so after 10 s of audio the phase is a number near 1e5 radians, whose float32
    spacing is 0.008 rad, and ONNX Runtime and PyTorch round differently along the way. Here
    the per-frame phase is summed exactly, in integers: F0 in fixed point (2**-23 Hz, which
    holds a float32 F0 above 1 Hz exactly), times each harmonic number, summed, wrapped, times
    the frame length and wrapped again modulo one cycle, so the only rounding is the final
    division (6e-8 cycles). Integers, not float64: onnxruntime-web (WebAssembly and WebGPU) has no
    float64 kernels, so a Cast to double stops the graph from loading in a browser. The linear
    upsampling that F.interpolate does is written out with exact integer positions, so every
    sine is evaluated at a phase below one cycle.
    """

    harmonic_numbers: torch.Tensor

    def __init__(self, sine_gen: Any, l_linear: torch.nn.Linear) -> None:
        super().__init__()
        self.sine_amp = float(sine_gen.sine_amp)
        self.sampling_rate = float(sine_gen.sampling_rate)
        self.voiced_threshold = float(sine_gen.voiced_threshold)
        self.upsample_scale = int(sine_gen.upsample_scale)
        self.l_linear = l_linear
        self.register_buffer(
            "harmonic_numbers",
            torch.arange(1, int(sine_gen.dim) + 1, dtype=torch.float32),
            persistent=False,
        )
        # One cycle in fixed-point units of the summed phase: phase = sum(h * F0 * 2**23) *
        # scale / (rate * 2**23), reduced by the common factor of scale and rate.
        rate = round(self.sampling_rate)
        common = math.gcd(rate, self.upsample_scale)
        self.frame_units = self.upsample_scale // common
        self.cycle_units = (rate // common) * FIXED_POINT

    def forward(self, f0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """f0 (B, T, 1) at audio rate to (source (B, T, 1), noise (zeros), voiced (B, T, 1))."""
        scale = self.upsample_scale
        # The generator upsamples F0 by repetition, so one sample per frame holds it all.
        frame_f0 = f0[:, ::scale, :]
        fixed = torch.round(frame_f0 * FIXED_POINT).to(torch.int64)
        steps = fixed * self.harmonic_numbers.to(torch.int64)
        total = torch.remainder(torch.cumsum(steps, dim=1), self.cycle_units)
        total = torch.remainder(total * self.frame_units, self.cycle_units)
        frame_phase = total.to(f0.dtype) / self.cycle_units
        harmonics = frame_f0 * self.harmonic_numbers
        cycles_per_frame = (harmonics / self.sampling_rate % 1) * scale
        next_step = F.pad(cycles_per_frame[:, 1:, :], (0, 0, 0, 1))
        # F.interpolate(mode="linear", align_corners=False) reads sample t at frame position
        # (t + 0.5) / scale - 0.5 = (2t + 1 - scale) / (2 scale), clamped at 0.
        position = 2 * torch.arange(f0.shape[1], device=f0.device) + 1 - scale
        frame = torch.div(position, 2 * scale, rounding_mode="floor").clamp(min=0)
        weight = (position - frame * 2 * scale).clamp(min=0).to(f0.dtype) / (2 * scale)
        phase = frame_phase[:, frame, :] + weight[None, :, None] * next_step[:, frame, :]
        phase = phase - torch.floor(phase)
        voiced = (f0 > self.voiced_threshold).to(f0.dtype)
        sines = torch.sin(2 * math.pi * phase) * self.sine_amp * voiced
        return torch.tanh(self.l_linear(sines)), torch.zeros_like(voiced), voiced
