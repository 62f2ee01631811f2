"""The harness under pytest-xdist: artefacts built once across workers, figures as serial."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("xdist")

from parity.core.config import default_inputs

FIXTURES = default_inputs()

# Four parity tests sharing one export: under -n 2 both workers need it at the same moment.
SESSION = """
import numpy as np
import pytest

@pytest.mark.parametrize("case", ["one-token", "sentence", "one-token ", "sentence "])
def test_parity_case(case, kokoro_export, kokoro_model, parity_inputs, parity_record):
    from parity.judge.runners import OrtRunner

    request = parity_inputs.case(case.strip(), kokoro_model.vocab)
    wave = OrtRunner(kokoro_export.path, threads=1).infer(request).waveform
    parity_record.add("cases", f"{case.strip()}: {wave.size} samples, {np.abs(wave).sum():.6e}")
"""


def _figures(result: pytest.RunResult) -> tuple[list[str], list[str]]:
    """(export lines, case lines) of the 'parity figures' summary."""
    text = result.stdout.str().split("parity figures", 1)[1]
    exports = re.findall(r"^  (.*(?:exported in|from cache).*)$", text, re.MULTILINE)
    cases = sorted(re.findall(r"^  ((?:one-token|sentence): .*)$", text, re.MULTILINE))
    return exports, cases


def test_two_workers_build_the_export_once_and_measure_what_a_serial_run_does(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_session=SESSION)
    common = ["--parity-preset=tiny", f"--parity-inputs={FIXTURES}", "-p", "no:cacheprovider"]
    # Two execnet gateways on this machine: the path a run across hosts takes (-n 2 is this).
    parallel = pytester.runpytest_subprocess(
        *common,
        f"--parity-cache-dir={pytester.path / 'cache-n2'}",
        "--tx",
        "2*popen",
        "--dist",
        "load",
    )
    parallel.assert_outcomes(passed=4)
    # The serial run reads the same cache: what is compared is measuring, not exporting.
    serial = pytester.runpytest_subprocess(
        *common, f"--parity-cache-dir={pytester.path / 'cache-n2'}"
    )
    serial.assert_outcomes(passed=4)

    exports, cases = _figures(parallel)
    assert len(exports) == 2  # one export fixture per worker ...
    assert sum("from cache" not in line for line in exports) == 1  # ... one of them built it
    assert len(list((pytester.path / "cache-n2" / "export").glob("*.onnx"))) == 1
    assert cases == _figures(serial)[1]  # the same four figures, to the last digit
    assert len(cases) == 4
    # Each worker says what it computed and read back; the export shows as built once.
    tallies = re.findall(r"^  gw\d: computed .*$", parallel.stdout.str(), re.MULTILINE)
    assert len(tallies) == 2
    assert sum(bool(re.search(r"[:,] export 1 in ", line)) for line in tallies) == 1


def test_a_sweep_spread_over_workers_merges_to_the_serial_table(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """parity.search.sweep_items: one item per group, parts merged and decided on the controller."""
    import json

    import numpy as np

    from kokoro_graphs import sweep_session_args, tiny_kokoro

    kernel = np.random.default_rng(1).normal(0, 0.3, (1, 8, 3)).astype(np.float32)
    kernel[0, 0, 0] = 200.0  # the outlier that per-tensor int8 cannot hold: /dec/b/ hurts
    model = tiny_kokoro(tmp_path / "m.onnx", kernel)
    common = sweep_session_args(model, tmp_path)
    tables = {}
    for name, extra in {"serial": [], "two-workers": ["-n", "2"]}.items():
        result = pytester.runpytest_subprocess(
            *common, f"--parity-sweep-out={tmp_path / name}", *extra
        )
        result.assert_outcomes(passed=2)  # the groups /dec/ and /enc/
        result.stdout.fnmatch_lines(["*sensitivity sweep:*", "*int8-dynamic: 3 groups*"])
        tables[name] = json.loads((tmp_path / name / "sensitivity.json").read_text())
    serial, parallel = tables["serial"], tables["two-workers"]
    assert [r["scope"] for r in serial["rows"]] == [r["scope"] for r in parallel["rows"]]
    assert serial["rows"][0]["scope"] == "/dec/b/"
    # To the last digit, as a sweep re-measured on one machine is (SWEEP_LOSS_DRIFT).
    assert [r["loss"] for r in serial["rows"]] == [r["loss"] for r in parallel["rows"]]
    assert serial["excluded"] == parallel["excluded"] == ["/dec/b/"]
    assert serial["builds"] == parallel["builds"]
