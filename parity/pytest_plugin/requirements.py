"""What a run's gates need, checked once after collection, so no gate skips unseen.

A gate that needs a tool (``needs("node")``: Node.js with the npm side, onnxruntime-web and
kokoro-js) fails the whole run with one line when the tool is missing, unless the run goes
without it (``--parity-without=node``); then those gates skip, and the summary lists them.
A browser (``needs("browser")``: Chromium for the WebGPU gates) is a system package that
``make setup`` cannot install, so its gates skip where it is missing, each with the line that
says what to install, and the summary lists them as skipped. A backend that lacks a hardware
feature the file needs (``BackendLacksError``: float16 on a WebGPU adapter without shader-f16) skips
its gate the same way, with the line that names the feature.
A benchmark (pytest-benchmark's ``benchmark`` fixture) asserts no time, so outside a
benchmarking run (``make bench``) it is deselected rather than skipped: a skip would read as
a gate that judged nothing.
"""

from __future__ import annotations

import pytest

from parity.core.config import CPU_PROVIDERS
from parity.pytest_plugin.keys import CONFIG_KEY, RECORDER_KEY

BENCHMARK_FLAGS = (
    "benchmark_enable",
    "benchmark_only",
    "benchmark_save",
    "benchmark_autosave",
    "benchmark_json",
    "benchmark_compare",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs(tool): a gate that needs a tool (node, browser, dawn; provider: what the run's "
        "--parity-provider runs on); without node the run fails with one line, unless "
        "--parity-without names it; without a browser or dawn its gates skip (the summary "
        "lists skips, with what to install)",
    )


# Tools whose absence skips their gates rather than stopping the run (dawn: WebGPU on Dawn in
# Node.js, --parity-webgpu-adapter dawn, which needs a Vulkan driver Dawn accepts).
SYSTEM_TOOLS = ("browser", "dawn")


def tool_unavailable(tool: str) -> str | None:
    """Why ``tool`` cannot run here, or None when it can."""
    from parity.core.node_side import browser_unavailable, dawn_unavailable
    from parity.measure.kokoro_js import kokoro_js_unavailable
    from parity.measure.wasm import wasm_unavailable

    if tool == "node":
        return wasm_unavailable() or kokoro_js_unavailable()
    if tool == "browser":
        return browser_unavailable()
    if tool == "dawn":
        return dawn_unavailable()
    raise ValueError(f"unknown tool {tool!r}")


def needed_tools(item: pytest.Item) -> set[str]:
    """The tools ``item`` needs: its ``needs`` markers, Node.js for a WebAssembly latency case,
    and the browser for a gate whose files run on a browser provider."""
    tools = {str(tool) for marker in item.iter_markers("needs") for tool in marker.args}
    callspec = getattr(item, "callspec", None)
    provider = callspec.params.get("provider") if callspec is not None else None
    if isinstance(provider, str) and provider.startswith("wasm"):
        tools.add("node")
    # --parity-provider wasm or webgpu: the judged files (or a client, ``needs("provider")``)
    # run in headless Chromium, or for webgpu with --parity-webgpu-adapter dawn, on Dawn in
    # Node.js.
    parity_config = item.config.stash.get(CONFIG_KEY, None)
    judged = "parity_files" in getattr(item, "fixturenames", ()) or "provider" in tools
    tools.discard("provider")
    if judged and parity_config is not None and parity_config.provider not in CPU_PROVIDERS:
        on_dawn = parity_config.provider == "webgpu" and parity_config.webgpu_adapter == "dawn"
        tools.add("dawn" if on_dawn else "browser")
    return tools


def _benchmark(item: pytest.Item) -> bool:
    fixtures = getattr(item, "fixturenames", ())
    return "benchmark" in fixtures or "parity_benchmarking" in fixtures


def _deselect(config: pytest.Config, items: list[pytest.Item], leaving: list[pytest.Item]) -> None:
    if leaving:
        config.hook.pytest_deselected(items=leaving)
        items[:] = [item for item in items if item not in leaving]


def benchmarking(config: pytest.Config) -> bool:
    return any(config.getoption(flag, None) for flag in BENCHMARK_FLAGS)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """After ``-k`` and ``-m`` chose: benchmarks leave a run that does not time, and each
    needed tool is there, opted out of (its gates skip) or the run stops with one line."""
    if not benchmarking(config):
        _deselect(config, items, [item for item in items if _benchmark(item)])
    idle = [item for item in items if item.get_closest_marker("parity_no_subject")]
    _deselect(config, items, idle)
    recorder = config.stash.get(RECORDER_KEY, None)
    for item in idle:
        marker = item.get_closest_marker("parity_no_subject")
        if recorder is not None and marker is not None:
            recorder.add("judged files", f"{item.name.split('[')[0]}: {marker.args[0]}")
    parity_config = config.stash.get(CONFIG_KEY, None)
    without = parity_config.without if parity_config is not None else frozenset()
    needing: dict[str, list[pytest.Item]] = {}
    for item in items:
        for tool in needed_tools(item):
            needing.setdefault(tool, []).append(item)
    for tool, gates in sorted(needing.items()):
        reason = tool_unavailable(tool)
        if tool in without:
            why = reason or "available, but the run goes without it"
            for item in gates:
                item.add_marker(pytest.mark.skip(reason=f"--parity-without={tool}: {why}"))
        elif reason is not None and tool in SYSTEM_TOOLS:
            for item in gates:
                item.add_marker(pytest.mark.skip(reason=f"{tool}: {reason}"))
        elif reason is not None:
            raise pytest.UsageError(
                f"parity: {reason}; {len(gates)} collected gate(s) need it (first: "
                f"{gates[0].nodeid}). Install it, or run with --parity-without={tool} "
                "(PARITY_WITHOUT) to skip them, listed as skipped in the summary"
            )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """A gate whose backend lacks a feature its file needs judged nothing: a skip with the
    line naming the feature, never a pass; any other error stays a failure."""
    from parity.core.errors import BackendLacksError

    try:
        return (yield)
    except BackendLacksError as error:
        pytest.skip(f"backend: {error}")
