"""The JSON-lines protocol with the Node.js side (``parity.core.node_side.NodeProcess`` and
``parity/measure/web/lines.mjs``): what a library prints never reads as an answer.

Found 2026-12-07: onnxruntime-web 1.22.0-dev (kokoro-js's) printed to stdout on Dawn, and
``parity compare`` stopped with an internal JSONDecodeError instead of a verdict.
"""

from __future__ import annotations

import pytest

from parity.core.errors import ParityError
from parity.core.node_side import WEB_DIR, NodeProcess

pytestmark = [pytest.mark.needs("node"), pytest.mark.harness("core/node_side.py")]

ANSWER_AFTER_LOGS = f"""
import {{ answerLines }} from "{(WEB_DIR / "lines.mjs").as_uri()}";
console.log("a library's log line");
console.info("and its info");
process.stdout.write("emscripten's print\\n");
await answerLines(async (message) => ({{ echoed: message.value }}));
"""

STOPS_AFTER_A_PRINT = """
process.stdout.write("the last thing it printed\\n");
process.exit(3);
"""


def run_script(tmp_path, text: str, name: str) -> NodeProcess:
    script = tmp_path / name
    script.write_text(text)
    return NodeProcess(script, [], "test script")


def test_logs_and_prints_before_an_answer_are_skipped(tmp_path) -> None:
    process = run_script(tmp_path, ANSWER_AFTER_LOGS, "answers.mjs")
    try:
        process.send({"value": 7})
        assert process.receive() == {"echoed": 7}
        process.send({"value": 8})
        assert process.receive() == {"echoed": 8}
    finally:
        process.close()


def test_a_process_that_stops_after_a_print_names_it(tmp_path) -> None:
    process = run_script(tmp_path, STOPS_AFTER_A_PRINT, "stops.mjs")
    try:
        with pytest.raises(ParityError, match=r"Node\.js stopped \(the last thing it printed\)"):
            process.receive()
    finally:
        process.close()
