"""parity.builders.model: the architecture, seeded weights, checkpoints, the harmonic source."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from parity.builders.export import trace_inputs
from parity.builders.model import DeterministicSource, build_kokoro, build_model
from parity.core.errors import ParityError
from parity.core.memo import state_digest
from parity.core.spec import KokoroSpec, load_config
from parity.judge.tolerances import (
    KOKORO_SINE_DECAY_FACTOR,
    SINE_FLOAT32_ABS,
    TINY_MAX_PARAMETER_SHARE,
)


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    return build_kokoro("tiny", seed=0)


def test_full_config_is_the_published_kokoro_82m() -> None:
    config = load_config("full")
    assert (config["hidden_dim"], config["style_dim"], config["n_layer"], config["n_token"]) == (
        512,
        128,
        3,
        178,
    )
    assert config["plbert"] == {
        "hidden_size": 768,
        "num_attention_heads": 12,
        "intermediate_size": 2048,
        "max_position_embeddings": 512,
        "num_hidden_layers": 12,
        "dropout": 0.1,
    }
    istft = config["istftnet"]
    assert istft["upsample_rates"] == [10, 6]
    assert istft["upsample_kernel_sizes"] == [20, 12]
    assert istft["resblock_kernel_sizes"] == [3, 7, 11]
    assert istft["resblock_dilation_sizes"] == [[1, 3, 5]] * 3
    assert (
        istft["upsample_initial_channel"],
        istft["gen_istft_n_fft"],
        istft["gen_istft_hop_size"],
    ) == (512, 20, 5)
    assert (config["n_mels"], config["max_dur"]) == (80, 50)
    assert len(config["vocab"]) == 114
    assert max(config["vocab"].values()) == 177


FULL_PARAMETERS = 81_810_022


def test_full_model_has_82m_parameters() -> None:
    model = build_kokoro("full")
    assert sum(p.numel() for p in model.parameters()) == FULL_PARAMETERS


def test_tiny_keeps_every_module_of_the_full_model(tiny: torch.nn.Module) -> None:
    full_types = {type(m).__name__ for m in build_kokoro("full").modules()}
    assert {type(m).__name__ for m in tiny.modules()} == full_types
    assert sum(p.numel() for p in tiny.parameters()) < TINY_MAX_PARAMETER_SHARE * FULL_PARAMETERS


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    assert state_digest(build_kokoro("tiny", seed=3)) == state_digest(build_kokoro("tiny", seed=3))
    assert state_digest(build_kokoro("tiny", seed=3)) != state_digest(build_kokoro("tiny", seed=4))


def test_deterministic_model_gives_identical_audio_twice(tiny: torch.nn.Module) -> None:
    ids, style, speed = trace_inputs()
    first, durations = tiny.forward_with_tokens(ids, style, speed)
    second, _ = tiny.forward_with_tokens(ids, style, speed)
    assert torch.equal(first, second)
    assert int(durations.min()) >= 1
    assert int(durations.max()) <= 8


def test_stochastic_source_draws_new_noise_every_call() -> None:
    model = build_kokoro("tiny", seed=0, source="stochastic")
    ids, style, speed = trace_inputs()
    first, durations_first = model.forward_with_tokens(ids, style, speed)
    second, durations_second = model.forward_with_tokens(ids, style, speed)
    assert torch.equal(durations_first, durations_second)
    assert not torch.equal(first, second)


def _kokoro_sines(f0: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """kokoro's SineGen phase path without its noise, as it writes it."""
    values = f0.to(dtype) * torch.arange(1, 10, dtype=dtype)
    rad = (values / 24000) % 1
    rad = F.interpolate(rad.transpose(1, 2), scale_factor=1 / 300, mode="linear").transpose(1, 2)
    phase = torch.cumsum(rad, dim=1) * 2 * math.pi
    phase = F.interpolate(phase.transpose(1, 2) * 300, scale_factor=300, mode="linear").transpose(
        1, 2
    )
    return torch.sin(phase) * 0.1 * (f0.to(dtype) > 10).to(dtype)


@pytest.mark.parametrize("seconds", [0.25, 5, 50], ids=lambda s: f"{s}s")
def test_deterministic_source_keeps_float32_precision_at_any_length(
    tiny: torch.nn.Module, seconds: float
) -> None:
    generator = tiny.decoder.generator
    source = generator.m_source
    assert isinstance(source, DeterministicSource)
    frames = int(seconds * 24000 / 300)
    f0 = torch.rand(1, frames, generator=torch.Generator().manual_seed(frames)) * 300
    audio_rate = generator.f0_upsamp(f0[:, None]).transpose(1, 2)
    seen = {}
    handle = source.l_linear.register_forward_hook(
        lambda _m, inputs, _o: seen.update(sines=inputs[0])
    )
    source(audio_rate)
    handle.remove()
    exact = _kokoro_sines(audio_rate, torch.float64)
    ours_error = float((seen["sines"].double() - exact).abs().max())
    kokoro_error = float((_kokoro_sines(audio_rate, torch.float32).double() - exact).abs().max())
    assert ours_error < SINE_FLOAT32_ABS  # float32 sines: a few ulps, at any length
    if seconds >= 5:  # kokoro's float32 phase sum decays with length
        assert kokoro_error > KOKORO_SINE_DECAY_FACTOR * ours_error


def test_the_export_holds_no_float64_so_browsers_can_load_it(parity_cache, tiny) -> None:
    """onnxruntime-web has no float64 kernels (WebAssembly: 'no implementation for
    Cast(19)'); the source sums its phase in int64 instead."""
    import onnx

    from parity.builders.export import export_cached

    result = export_cached(parity_cache, KokoroSpec(preset="tiny"), tiny)
    assert result.path is not None, result.error_line
    model = onnx.load(result.path, load_external_data=False)
    doubles = [
        node.name
        for node in model.graph.node
        if any(a.name == "to" and a.i == onnx.TensorProto.DOUBLE for a in node.attribute)
    ]
    doubles += [t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.DOUBLE]
    assert not doubles


def _save_checkpoint(model: torch.nn.Module, path: Path, *, prefix: str = "module.") -> None:
    parts = {
        name: {f"{prefix}{k}": v for k, v in getattr(model, name).state_dict().items()}
        for name in ("bert", "bert_encoder", "predictor", "text_encoder", "decoder")
    }
    torch.save(parts, path)


def test_checkpoint_round_trip_loads_the_same_weights(
    tmp_path: Path, tiny: torch.nn.Module
) -> None:
    source = build_kokoro("tiny", seed=5)
    path = tmp_path / "kokoro-tiny.pth"
    _save_checkpoint(source, path)
    loaded = build_kokoro("tiny", seed=0, checkpoint=path)
    assert state_digest(loaded) == state_digest(source)
    assert build_model(KokoroSpec(preset="tiny", checkpoint=str(path))) is not None


def _bad_checkpoint(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.pth"
    if kind == "missing":
        return path
    if kind == "truncated":
        _save_checkpoint(build_kokoro("tiny"), path)
        path.write_bytes(path.read_bytes()[:1000])
    elif kind == "not-a-checkpoint":
        path.write_text("hello")
    elif kind == "other-preset":
        _save_checkpoint(build_kokoro("tiny"), path)
    elif kind == "missing-part":
        torch.save({"bert": build_kokoro("tiny").bert.state_dict()}, path)
    elif kind == "renamed-key":
        model = build_kokoro("tiny")
        _save_checkpoint(model, path)
        parts = torch.load(path, weights_only=True)
        parts["decoder"]["module.renamed"] = parts["decoder"].pop("module.F0_conv.bias")
        torch.save(parts, path)
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "no such file"),
        ("truncated", "not a readable torch checkpoint"),
        ("not-a-checkpoint", "not a readable torch checkpoint"),
        ("other-preset", "has shape"),
        ("missing-part", "missing part"),
        ("renamed-key", "keys do not match"),
    ],
)
def test_bad_checkpoint_is_one_clear_line(tmp_path: Path, kind: str, message: str) -> None:
    path = _bad_checkpoint(tmp_path, kind)
    preset = "full" if kind == "other-preset" else "tiny"
    with pytest.raises(ParityError, match=message) as raised:
        build_kokoro(preset, checkpoint=path)
    assert str(path) in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("option", "value"), [("preset", "huge"), ("stft", "fft"), ("source", "noisy")]
)
def test_unknown_recipe_option_is_refused(option: str, value: str) -> None:
    with pytest.raises(ParityError, match=f"unknown {option}"):
        build_kokoro(**{option: value})  # type: ignore[arg-type]
