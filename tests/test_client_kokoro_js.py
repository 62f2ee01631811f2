"""The browser client: kokoro-js 1.2.1 (npm) loads each shipped file from a local model folder,
with no network, and speaks it on onnxruntime-web's WebAssembly build under Node.js.

The folder is what onnx-community ships (``parity.builders.kokoro_js_folder``); the voices are
kokoro-js's own. kokoro-js returns the graph's audio untrimmed, so float32 through it is first
held to float32 on ONNX Runtime's CPU, then each shipped file is judged against float32 through
the same client, timing aligned by DTW, by the gates' verdict (``parity.judge.quality``).
"""

from __future__ import annotations

import numpy as np
import pytest
from shipped import SHIPPED, SHIPPED_FILES, SHIPPED_MODULES, judge_through_client, shipped_path

from parity.builders.voices import voice_of
from parity.judge.quality import compare_variant
from parity.judge.runners import KokoroOutput
from parity.judge.tolerances import KOKORO_JS, KOKORO_JS_BACKEND
from parity.measure.kokoro_js import (
    kokoro_js_voice,
    speak_model_file,
    spoken_by_kokoro_js,
)

pytestmark = [
    # A fact about another tool reading our files: make test runs it on every commit, and
    # -k parity when the files it covers (what builds and judges the shipped files, the
    # recipes) changed since it last passed here.
    pytest.mark.landscape(
        *SHIPPED_MODULES,
        "builders/kokoro_js_folder.py",
        "measure/kokoro_js.py",
        files=(
            *SHIPPED_FILES,
            "parity/measure/kokoro-js/speak.mjs",
            "parity/measure/kokoro-js/package-lock.json",
        ),
    ),
    # Without Node.js and kokoro-js the run stops at collection with one line, unless it
    # goes without them (--parity-without=node): then these skip, listed in the summary.
    pytest.mark.needs("node"),
]

# The first held-out sentences, one voice each: WebAssembly runs float32 several times slower
# than the CPU build, and this checks the client, not the headline figures (tests of the gates).
JS_SENTENCES = 3
DTYPE = "q8"  # the shipped int8 goes where onnx-community's does: onnx/model_quantized.onnx


@pytest.fixture(scope="module")
def js_requests(kokoro_trained, parity_inputs):
    _, voices = kokoro_trained
    return voices.held_out(parity_inputs, 1)[:JS_SENTENCES]


@pytest.fixture(scope="module")
def js_speak(kokoro_trained, js_requests, parity_runs):
    """``speak(path, dtype)``: kokoro-js's audio for every request, from the run store when
    the same file was spoken by the same client before."""
    vocab = kokoro_trained[1].vocab

    def run(path, dtype="fp32") -> list[KokoroOutput]:
        waveforms = spoken_by_kokoro_js(parity_runs, path, vocab, js_requests, dtype)
        return [KokoroOutput(waveform, None) for waveform in waveforms]

    return run


@pytest.fixture(scope="module")
def js_reference(kokoro_trained, js_speak):
    return js_speak(kokoro_trained[0].path)


def test_kokoro_js_speaks_in_the_voices_the_gates_judge(js_requests) -> None:
    """kokoro-js picks its style row from the length, from its own voice packs: the very
    vectors our requests carry."""
    for request in js_requests:
        row = kokoro_js_voice(voice_of(request))[len(request.phonemes)]
        np.testing.assert_array_equal(row, request.style[0], err_msg=request.name)


def test_kokoro_js_float32_speaks_as_onnxruntime_cpu_does(
    kokoro_trained, js_requests, js_reference, parity_runs, parity_record
) -> None:
    from parity.judge.quality import model_outputs

    cpu = model_outputs(kokoro_trained[0].path, js_requests, runs=parity_runs)
    quality = compare_variant(
        "kokoro-js float32 vs ONNX Runtime CPU",
        cpu,
        js_reference,
        js_requests,
        size_ratio=1.0,
        tolerance=KOKORO_JS_BACKEND,
    )
    parity_record.add("kokoro-js client", quality.summary(), quality=quality)
    assert [len(o.waveform) for o in js_reference] == [len(o.waveform) for o in cpu]
    assert quality, quality.summary()


@pytest.mark.parametrize("name", SHIPPED)
def test_kokoro_js_speaks_each_shipped_file(
    name, kokoro_trained, trained_variant, js_requests, js_reference, js_speak, parity_record
) -> None:
    path = shipped_path(name, kokoro_trained, trained_variant)
    quality = judge_through_client(
        f"kokoro-js: {name}",
        js_reference,
        js_speak(path, DTYPE),
        js_requests,
        path.stat().st_size / kokoro_trained[0].path.stat().st_size,
        KOKORO_JS,
    )
    parity_record.add("kokoro-js client", quality.summary(), quality=quality)
    assert quality, quality.summary()


def test_kokoro_js_bench_times_each_shipped_file_beside_float32(
    parity_benchmarking, kokoro_trained, trained_variant, js_requests, parity_record
) -> None:
    """Seconds of ``generate_from_ids`` per second of audio (1 thread), every file in this
    run; a benchmark, so it runs when benchmarking (``make bench``) and asserts no time."""
    if parity_benchmarking is not None:
        pytest.skip(parity_benchmarking)
    files = {"fp32": (kokoro_trained[0].path, "fp32")}
    files |= {n: (shipped_path(n, kokoro_trained, trained_variant), DTYPE) for n in SHIPPED}
    rtf = {}
    for name, (path, dtype) in files.items():
        run = speak_model_file(path, kokoro_trained[1].vocab, js_requests, dtype=dtype)
        audio = sum(len(w) for w in run.waveforms) / 24_000
        rtf[name] = sum(run.seconds) / audio
    line = ", ".join(f"{n} RTF {r:.2f} ({r / rtf['fp32']:.2f}x fp32)" for n, r in rtf.items())
    parity_record.add("kokoro-js client", f"WebAssembly, 1 thread: {line}")
    assert all(np.isfinite(r) and r > 0 for r in rtf.values())
