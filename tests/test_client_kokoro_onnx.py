"""The real client: kokoro-onnx 0.6.1 from PyPI loads each shipped file offline and speaks.

kokoro-onnx splits text into batches, trims silence and adds pauses, so its audio has no
frame-by-frame counterpart: each file's audio is judged against float32's through the same
client with timing aligned by DTW, on the held-out sentences, by the same verdict as the
gates (``parity.judge.quality``). The published int8 is heard beside ours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from shipped import SHIPPED, SHIPPED_FILES, SHIPPED_MODULES, judge_through_client, shipped_path

from parity.judge.runners import KokoroOutput
from parity.judge.tolerances import CLIENT

# A fact about another tool reading our files: make test runs it on every commit, and -k parity
# when the files it covers (what builds and judges the shipped files, the recipes) changed
# since it last passed here.
pytestmark = pytest.mark.landscape(*SHIPPED_MODULES, files=SHIPPED_FILES)

kokoro_onnx = pytest.importorskip(
    "kokoro_onnx", reason="kokoro-onnx is not installed: pip install kokoro-onnx==0.6.1"
)


@pytest.fixture(scope="module")
def client_requests(kokoro_trained, parity_inputs):
    """Each held-out sentence in one trained voice, taken in turn."""
    _, voices = kokoro_trained
    return voices.held_out(parity_inputs, 1)


@pytest.fixture(scope="module")
def client_voices(kokoro_trained, client_requests, tmp_path_factory) -> Path:
    """The packs the requests speak in, as the one ``.npz`` kokoro-onnx's ``voices_path`` takes."""
    from parity.builders.voices import voice_of

    _, voices = kokoro_trained
    path = tmp_path_factory.mktemp("kokoro-onnx") / "voices.npz"
    np.savez(path, **{voice_of(r): voices.pack(voice_of(r)) for r in client_requests})
    return path


@pytest.fixture(scope="module")
def speak(kokoro_trained, client_requests, client_voices, parity_runs):
    """``speak(path)``: the client's audio for every client request, from the run store
    when the same files were spoken by the same client versions before."""
    from importlib import metadata

    from parity.builders.voices import voice_of
    from parity.core.cache import content_digest
    from parity.core.memo import array_digest

    _, voices = kokoro_trained

    def run(path: Path) -> list[KokoroOutput]:
        def compute() -> dict[str, np.ndarray]:
            client = kokoro_onnx.Kokoro(
                str(path), str(client_voices), vocab_config={"vocab": voices.vocab}
            )
            spoken = {}
            for index, request in enumerate(client_requests):
                voice = voice_of(request)
                audio, rate = client.create(request.phonemes, voice=voice, is_phonemes=True)
                assert rate == 24_000
                spoken[f"{index}"] = np.asarray(audio, dtype=np.float32)
            return spoken

        parts = {
            "model": content_digest(path),
            # the packs, not the .npz: a zip stamps the time it was written
            "voices": [array_digest(voices.pack(voice_of(r))) for r in client_requests],
            "vocab": voices.vocab,
            "requests": [r.name + "|" + r.phonemes for r in client_requests],
            "versions": [metadata.version(p) for p in ("kokoro-onnx", "onnxruntime", "numpy")],
        }
        spoken = parity_runs.arrays("client", parts, compute)
        return [KokoroOutput(spoken[f"{i}"], None) for i in range(len(client_requests))]

    return run


@pytest.fixture(scope="module")
def client_reference(kokoro_trained, speak):
    return speak(kokoro_trained[0].path)


@pytest.mark.parametrize("name", SHIPPED)
def test_kokoro_onnx_speaks_each_shipped_file(
    name, kokoro_trained, trained_variant, client_requests, client_reference, speak, parity_record
) -> None:
    path = shipped_path(name, kokoro_trained, trained_variant)
    outputs = speak(path)
    quality = judge_through_client(
        f"kokoro-onnx: {name}",
        client_reference,
        outputs,
        client_requests,
        path.stat().st_size / kokoro_trained[0].path.stat().st_size,
        CLIENT,
    )
    parity_record.add("kokoro-onnx client", quality.summary(), quality=quality)
    assert quality, quality.summary()
