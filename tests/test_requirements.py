"""No gate skips unseen: a missing tool stops the run with one line unless the run goes
without it, and then the summary lists what did not run."""

from __future__ import annotations

import pytest

GATES = """
import pytest

@pytest.mark.needs("node")
def test_speaks_in_the_browser():
    pass

@pytest.mark.parametrize("provider", ["cpu", "wasm"])
def test_speed(provider):
    pass

def test_plain():
    pass
"""


@pytest.fixture
def without_node(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project with gates that need Node.js, on a PATH with no ``node``."""
    pytester.makepyfile(test_gates=GATES)
    empty = pytester.mkdir("bin")
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("PARITY_WITHOUT", raising=False)
    return pytester


def test_a_missing_tool_stops_the_run_with_one_line(without_node: pytest.Pytester) -> None:
    result = without_node.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1, result.stderr.str()
    assert errors[0].startswith("ERROR: parity: Node.js is not on PATH")
    assert "2 collected gate(s) need it" in errors[0]
    assert "--parity-without=node" in errors[0]


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_going_without_a_tool_skips_its_gates_and_the_summary_lists_them(
    without_node: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    report = without_node.path / "report"
    args = ["-p", "no:cacheprovider", f"--parity-report={report}"]
    if how == "flag":
        args.append("--parity-without=node")
    else:
        monkeypatch.setenv("PARITY_WITHOUT", "node")
    result = without_node.runpytest_subprocess(*args)
    result.assert_outcomes(passed=2, skipped=2)
    summary = (report / "summary.md").read_text()
    assert "2 passed, 0 failed, 2 skipped" in summary
    assert "every gate passed" not in summary
    skipped = summary.split("## Skipped", 1)[1]
    assert "test_speaks_in_the_browser`: --parity-without=node: Node.js is not on PATH" in skipped
    assert "test_speed[wasm]" in skipped


def test_a_tool_the_run_does_not_know_is_refused(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--parity-without=nodejs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*without: 'nodejs' is not a tool the gates need*"])


def test_benchmarks_leave_a_run_that_does_not_time(pytester: pytest.Pytester) -> None:
    """A benchmark asserts no time: outside ``make bench`` it is deselected, not skipped."""
    pytester.makepyfile(
        """
        def test_latency(benchmark):
            benchmark(lambda: None)

        def test_gate():
            pass
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1, deselected=1)
    timed = pytester.runpytest("-p", "no:cacheprovider", "--benchmark-enable")
    timed.assert_outcomes(passed=2)


def test_a_missing_browser_skips_its_gates_with_what_to_install(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chromium is a system package set-up cannot install: its gates skip, and say why."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.needs("browser")
        def test_on_webgpu():
            pass

        def test_plain():
            pass
        """
    )
    monkeypatch.setenv("PARITY_CHROMIUM", str(pytester.path / "no-such-chromium"))
    monkeypatch.delenv("PARITY_WITHOUT", raising=False)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*browser: $PARITY_CHROMIUM=*names no file*"])


def test_a_backend_without_a_feature_the_file_needs_skips_the_gate_with_its_line(
    pytester: pytest.Pytester,
) -> None:
    """Float16 on an adapter without shader-f16 judges nothing: the gate skips, naming the
    feature; any other parity error still fails its gate."""
    pytester.makepyfile(
        """
        from parity.core.errors import BackendLacksError, ParityError

        def test_float16_on_swiftshader():
            raise BackendLacksError("webgpu: f.onnx: its float16 ops need shader-f16")

        def test_broken_file():
            raise ParityError("f.onnx: not a readable ONNX model")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*backend: webgpu: f.onnx: its float16 ops need shader-f16*"])
