"""The browser client: kokoro-js 1.2.1 (npm) loads each shipped file from a local model folder,
with no network, and speaks it on onnxruntime-web's WebAssembly build under Node.js; with
``--parity-provider=webgpu``, on its device "webgpu" instead (``make webgpu``: on Dawn, the
adapter here with shader-f16, so the float16 file made for WebGPU is shipped there too).

The folder is what onnx-community ships (``parity.builders.kokoro_js_folder``); the voices are
kokoro-js's own. kokoro-js returns the graph's audio untrimmed, so float32 through it is first
held to float32 on ONNX Runtime's CPU, then each shipped file is judged against float32 through
the same client on the same device, timing aligned by DTW, by the gates' verdict
(``parity.judge.quality``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from shipped import SHIPPED, SHIPPED_FILES, SHIPPED_MODULES, judge_through_client, shipped_path

from parity.builders.voices import voice_of
from parity.judge.quality import VariantQuality, compare_variant
from parity.judge.runners import KokoroOutput
from parity.judge.tolerances import KOKORO_JS, KOKORO_JS_BACKEND, KOKORO_JS_WEBGPU_BACKEND
from parity.judge.variant_registry import PEER
from parity.measure.kokoro_js import (
    CLIENT_RUNTIME,
    kokoro_js_voice,
    speak_model_file,
    spoken_by_kokoro_js,
)
from parity.pytest_plugin.keys import CONFIG_KEY

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
            "parity/measure/web/dawn-adapter.mjs",
        ),
    ),
    # Without Node.js and kokoro-js the run stops at collection with one line, unless it
    # goes without them (--parity-without=node): then these skip, listed in the summary. On
    # --parity-provider=webgpu they need its browser or Dawn, and skip without.
    pytest.mark.needs("node", "provider"),
]

# The first held-out sentences, one voice each: WebAssembly runs float32 several times slower
# than the CPU build, and this checks the client, not the headline figures (tests of the gates).
JS_SENTENCES = 3
DTYPE = "q8"  # the shipped int8 goes where onnx-community's does: onnx/model_quantized.onnx
# On WebGPU, float16 is shipped too: the file `parity fp16 --webgpu` makes (docs/webgpu.md),
# where onnx-community's model_fp16.onnx goes.
FP16_WEBGPU = "fp16-webgpu"
# kokoro-js 1.2.1's onnxruntime-web (1.22.0-dev) on WebGPU, Dawn on Mesa's lavapipe: facts
# about that pinned runtime, not about the files, which read as on the CPU on onnxruntime-web
# 1.30 (docs/webgpu.md, where the module walks on that runtime are). Measured 2026-12-08 on the
# requests above. Strict: the day a kokoro-js release mends them, these fail, and the docs are
# updated then.
_INT8_NOT_FINITE = (
    "kokoro-js's onnxruntime-web on WebGPU: audio not finite on 3 of 3 requests (its walk of "
    "the CPU recipe: predictor.F0.2 at 0.13 and predictor.N.0 at 1.12, bert as on the CPU)"
)
WEBGPU_RUNTIME_FAULTS = {
    PEER: "kokoro-js's onnxruntime-web on WebGPU: length +11% (mean), aligned log-mel 1.1, "
    "floor +24 dB (its walk: bert at rms_rel 1.26, against 0.10 on onnxruntime-web 1.30)",
    **{name: _INT8_NOT_FINITE for name in SHIPPED if name != PEER},
    FP16_WEBGPU: "kokoro-js's onnxruntime-web on WebGPU: aligned log-mel 3.8, floor +102 dB "
    "(its walk: predictor.F0.0, AdaIN's float16 Add; passes on onnxruntime-web 1.30)",
}


@pytest.fixture(scope="module")
def js_requests(kokoro_trained, parity_inputs):
    _, voices = kokoro_trained
    return voices.held_out(parity_inputs, 1)[:JS_SENTENCES]


@pytest.fixture(scope="module")
def js_device(parity_config) -> str:
    """kokoro-js's device: "webgpu" on --parity-provider=webgpu (on its adapter), else "wasm"."""
    return "webgpu" if parity_config.provider == "webgpu" else "wasm"


@pytest.fixture(scope="module")
def js_speak(kokoro_trained, js_requests, js_device, parity_runs):
    """``speak(path, dtype)``: kokoro-js's audio for every request on the run's device, from
    the run store when the same file was spoken by the same client before."""
    vocab = kokoro_trained[1].vocab

    def run(path, dtype="fp32", runtime=CLIENT_RUNTIME) -> list[KokoroOutput]:
        waveforms = spoken_by_kokoro_js(
            parity_runs, path, vocab, js_requests, dtype, device=js_device, runtime=runtime
        )
        return [KokoroOutput(waveform, None) for waveform in waveforms]

    return run


@pytest.fixture(scope="module")
def js_judge(kokoro_trained, trained_variant, parity_cache, js_requests, js_speak):
    """``judge(name, runtime)``: the file shipped as ``name`` through kokoro-js on the run's
    device against float32 through it, both given onnxruntime-web ``runtime`` (its own by
    default), by the client verdict."""
    float32 = kokoro_trained[0].path

    def shipped(name: str) -> tuple[Path, str]:
        if name == FP16_WEBGPU:
            from parity.builders.fp16 import convert_cached, kokoro_options

            options = kokoro_options(float32, webgpu=True, cache=parity_cache)
            return convert_cached(parity_cache, float32, options).path, "fp16"
        return shipped_path(name, kokoro_trained, trained_variant), DTYPE

    def judge(name: str, runtime: str = CLIENT_RUNTIME) -> VariantQuality:
        path, dtype = shipped(name)
        on = "" if runtime == CLIENT_RUNTIME else f" on {runtime}'s onnxruntime-web"
        return judge_through_client(
            f"kokoro-js{on}: {name}",
            js_speak(float32, runtime=runtime),
            js_speak(path, dtype, runtime=runtime),
            js_requests,
            path.stat().st_size / float32.stat().st_size,
            KOKORO_JS,
        )

    return judge


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
    kokoro_trained, js_requests, js_device, js_reference, parity_runs, parity_record
) -> None:
    """On WebAssembly within the noise floor; on WebGPU within that backend's measured bound
    (its Sin differs from the CPU's; the chaos that follows, parity.judge.tolerances)."""
    from parity.judge.quality import model_outputs

    cpu = model_outputs(kokoro_trained[0].path, js_requests, runs=parity_runs)
    quality = compare_variant(
        f"kokoro-js float32 ({js_device}) vs ONNX Runtime CPU",
        cpu,
        js_reference,
        js_requests,
        size_ratio=1.0,
        tolerance=KOKORO_JS_WEBGPU_BACKEND if js_device == "webgpu" else KOKORO_JS_BACKEND,
    )
    parity_record.add("kokoro-js client", quality.summary(), quality=quality)
    assert [len(o.waveform) for o in js_reference] == [len(o.waveform) for o in cpu]
    assert quality, quality.summary()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The shipped files for the run's device: on WebGPU the float16 file made for it as well,
    and the files kokoro-js's pinned runtime gets wrong there marked as such (strict)."""
    webgpu = metafunc.config.stash[CONFIG_KEY].provider == "webgpu"
    if "shipped_name" in metafunc.fixturenames:
        names = [*SHIPPED, FP16_WEBGPU] if webgpu else SHIPPED
        faults = WEBGPU_RUNTIME_FAULTS if webgpu else {}
        params = [
            pytest.param(name, marks=[pytest.mark.xfail(strict=True, reason=faults[name])])
            if name in faults
            else name
            for name in names
        ]
        metafunc.parametrize("shipped_name", params, ids=names)
    if "faulted_name" in metafunc.fixturenames:
        if webgpu:
            names = list(WEBGPU_RUNTIME_FAULTS)
            metafunc.parametrize("faulted_name", names, ids=names)
        else:  # not a skip: it leaves the run, and the figures say why
            idle = pytest.mark.parity_no_subject("kokoro-js's runtime faults are on WebGPU")
            metafunc.parametrize("faulted_name", [pytest.param(None, marks=idle)], ids=["none"])


def test_kokoro_js_speaks_each_shipped_file(shipped_name, js_judge, parity_record) -> None:
    quality = js_judge(shipped_name)
    parity_record.add("kokoro-js client", quality.summary(), quality=quality)
    assert quality, quality.summary()


def test_kokoro_js_on_a_newer_onnxruntime_web_speaks_what_its_own_gets_wrong(
    faulted_name, js_judge, parity_record
) -> None:
    """The control for each WebGPU fault above: the same client on the same device, given
    onnxruntime-web 1.30 (parity's lockfile) instead of its own, speaks the file as the
    gates' verdict asks, against float32 on that runtime. So the fault is the runtime's."""
    quality = js_judge(faulted_name, runtime="parity")
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
