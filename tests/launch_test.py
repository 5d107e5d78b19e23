"""The absl entry points, run as a user runs them."""

import json
import os
import subprocess
import sys

import pytest

from treediff_jax.dsl.languages import NAMES, get_language

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
  return subprocess.run(
    [sys.executable, "-m", *args],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=120,
  )


@pytest.mark.parametrize("name", NAMES)
def test_sample_prints_valid_programs_in_range(name):
  out = _run(
    "launch.sample",
    f"--lang={name}",
    "--n=20",
    "--min_primitives=3",
    "--max_primitives=5",
    "--seed=1",
  )
  assert out.returncode == 0, out.stderr
  lines = out.stdout.splitlines()
  assert len(lines) == 20
  g = get_language(name).grammar
  assert all(3 <= g.parse(line).size <= 5 for line in lines)
  again = _run(
    "launch.sample",
    f"--lang={name}",
    "--n=20",
    "--min_primitives=3",
    "--max_primitives=5",
    "--seed=1",
  )
  assert again.stdout == out.stdout


def test_noise_prints_a_path_that_ends_at_the_program():
  program = "(+ (Circle 4 8 8) (Quad 8 8 4 4 H))"
  out = _run(
    "launch.noise",
    "--lang=csg2d",
    f"--program={program}",
    "--steps=3",
    "--seed=0",
  )
  assert out.returncode == 0, out.stderr
  lines = out.stdout.splitlines()
  assert lines[0] == f"clean:  {program}"
  assert sum(line.startswith("  mutation") for line in lines) == 3
  assert lines[-1].strip() == program


@pytest.mark.parametrize(
  "args,message",
  [
    (("launch.noise", "--program=(+ (Circle 4 8 8)"), "ends early"),
    (("launch.noise",), "--program is required"),
    (("launch.sample", "--lang=csg3d"), "unknown language 'csg3d'"),
    (
      ("launch.sample", "--min_primitives=3", "--max_primitives=2"),
      "asked for 3..2",
    ),
  ],
)
def test_bad_input_gives_one_clear_line(args, message):
  out = _run(*args)
  assert out.returncode == 2
  assert message in out.stderr
  assert "Traceback" not in out.stderr


def test_demo_writes_an_example_per_language(tmp_path):
  out = _run("launch.demo", f"--out={tmp_path}", "--seed=3")
  assert out.returncode == 0, out.stderr
  for name in NAMES:
    record = json.loads((tmp_path / f"{name}_example.json").read_text())
    g = get_language(name).grammar
    g.parse(record["current"])
    g.parse(record["target"])
    assert record["steps_left"] >= 1
