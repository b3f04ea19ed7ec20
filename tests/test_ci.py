"""No silent skips in CI: `.ci/run` sets CI=1, and under it a test that would skip for a
missing dependency that `make test` installs fails instead, whether it asks through
conftest's `need` or through a bare `pytest.importorskip` (module-level or in a test)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

# each hides a module CI installs, as if it were missing, then asks for it
PROBE = """
import sys
sys.modules["torch"] = None
import pytest
from conftest import need

def test_need():
    need("torch")

def test_bare_importorskip():
    pytest.importorskip("torch")

def test_a_module_ci_does_not_install_still_skips():
    pytest.importorskip("not_installed_anywhere_xyz")
"""
PROBE_MODULE = """
import sys
sys.modules["matplotlib"] = None
import pytest
pytest.importorskip("matplotlib")

def test_never_collected():
    pass
"""


def _pytest(tmp_path: Path, ci: str, *files: str) -> subprocess.CompletedProcess:
    env = os.environ | {
        "CI": ci,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(TESTS)]),
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-rs",
         "-q", *files],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_ci_run_exports_ci_1_before_make_test():
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "export CI=1" in lines and "make test" in lines
    assert lines.index("export CI=1") < lines.index("make test")


def test_a_missing_dependency_skips_locally_and_fails_under_ci(tmp_path):
    (tmp_path / "test_probe.py").write_text(PROBE)
    (tmp_path / "test_probe_module.py").write_text(PROBE_MODULE)
    local = _pytest(tmp_path, "0", "test_probe.py", "test_probe_module.py")
    assert local.returncode == 0, local.stdout + local.stderr
    assert "4 skipped" in local.stdout
    assert "torch is not installed" in local.stdout  # need() says why
    ci = _pytest(tmp_path, "1", "test_probe.py")
    assert ci.returncode == 1
    assert "2 failed, 1 skipped" in ci.stdout  # the unknown module still just skips
    assert "CI=1, where every optional dependency must be present" in ci.stdout
    module = _pytest(tmp_path, "1", "test_probe_module.py")
    assert module.returncode != 0 and "1 error" in module.stdout
    assert "could not import 'matplotlib'" in module.stdout


def test_deadline_fails_a_blocking_call(tmp_path):
    code = (
        "import time, pytest\nfrom conftest import deadline\n"
        "def test_blocks():\n    with deadline(0.2, 'answer'):\n        time.sleep(30)\n"
    )
    (tmp_path / "test_blocking.py").write_text(code)
    result = _pytest(tmp_path, "0", "test_blocking.py")
    assert result.returncode == 1 and "no answer within 0.2 s" in result.stdout
