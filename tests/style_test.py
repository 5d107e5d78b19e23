"""The code base passes its linter and formatter (ruff, settings in
pyproject.toml)."""

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff(args):
  if shutil.which("ruff") is None:
    cmd = [sys.executable, "-m", "ruff", *args]
  else:
    cmd = ["ruff", *args]
  out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
  assert out.returncode == 0, out.stdout + out.stderr
