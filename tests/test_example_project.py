"""The installed package alone gates a project's own conversion: a clean venv installs parity
from this checkout (not editable), and ``examples/own-conversion`` runs ``pytest -k parity``
with its own export routine, the blog post's ``KModelForONNX`` export."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.landscape(files=("examples/own-conversion", "pyproject.toml"))

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "own-conversion"
# What a wheel of the package is built from; the rest of the checkout stays out of the copy.
PACKAGE_FILES = ("pyproject.toml", "README.md", "constraints.txt", "parity")
LEFT_OUT = shutil.ignore_patterns("node_modules", "__pycache__", "*.egg-info")
WHERE = "import parity.gates; print(parity.gates.__path__[0])"


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with parity installed from a copy of this checkout, as a user installs it."""
    scratch = tmp_path_factory.mktemp("example")
    source = scratch / "parity-source"
    source.mkdir()
    for name in PACKAGE_FILES:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=LEFT_OUT)
        else:
            shutil.copy2(origin, source / name)
    venv = scratch / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    made = _run([sys.executable, "-m", "venv", str(venv)], scratch, env)
    assert made.returncode == 0, made.stderr
    # --no-compile: the install took 79 s byte-compiling every file it writes (torch's
    # thousands) and 47 s without (2026-12-06); Python compiles what the run imports anyway.
    pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--no-compile"]
    pip += ["-c", str(ROOT / "constraints.txt")]
    installed = _run([*pip, str(source)], scratch, env)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return venv


def test_example_project_gates_its_own_conversion_from_a_clean_venv(
    clean_venv: Path, tmp_path: Path
) -> None:
    project = tmp_path / "own-conversion"
    shutil.copytree(EXAMPLE, project)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTEST_ADDOPTS", "PARITY_CACHE_DIR")
    }
    env["PATH"] = f"{clean_venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    result = _run([str(clean_venv / "bin" / "pytest"), "-k", "parity", "-q"], project, env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    collected = _collected(clean_venv, project, env).splitlines()
    # parity (and so its gates) came from the venv's site-packages, not from this checkout.
    where = _run([str(clean_venv / "bin" / "python"), "-c", WHERE], project, env).stdout
    assert where.startswith(str(clean_venv)), where
    assert "site-packages/parity/gates" in where, where
    passed = int(re.search(r"(\d+) passed", output).group(1))  # type: ignore[union-attr]
    # The project's float32 export on three inputs and its module boundaries: the gates judge
    # the steps its routines make (no float16 or int8 routine here, so neither gate has a file).
    assert passed >= 3 + 20, output[-3000:]
    judged = {t.split("[", 1)[1].rstrip("]") for t in collected if "[" in t}
    assert {"fp32-sentence", "fp32-one-token", "fp32-context-limit"} <= judged, judged
    assert not any("fp16" in ids or "int8" in ids for ids in judged), judged


def _collected(venv: Path, project: Path, env: dict[str, str]) -> str:
    listed = _run([str(venv / "bin" / "pytest"), "--collect-only", "-q"], project, env)
    return listed.stdout
