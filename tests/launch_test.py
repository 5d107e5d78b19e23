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


def test_demo_writes_examples_and_renders_per_language(tmp_path):
  out = _run("launch.demo", f"--out={tmp_path}", "--seed=3")
  assert out.returncode == 0, out.stderr
  assert (tmp_path / "csg2d_sketch.png").exists()
  for name in NAMES:
    assert (tmp_path / f"{name}_path.png").stat().st_size > 0
    record = json.loads((tmp_path / f"{name}_example.json").read_text())
    g = get_language(name).grammar
    g.parse(record["current"])
    g.parse(record["target"])
    assert record["steps_left"] >= 1


def test_render_writes_images_in_input_order(tmp_path):
  programs = ["(Circle 4 8 8)", "(Quad 8 8 F F G)", "(Circle 0 8 8)"]
  src = tmp_path / "p.txt"
  src.write_text("\n".join(programs) + "\n")
  out = tmp_path / "r.npz"
  res = _run(
    "launch.render",
    "--lang=csg2d",
    f"--programs={src}",
    f"--out={out}",
    f"--png_dir={tmp_path / 'png'}",
  )
  assert res.returncode == 0, res.stderr
  import numpy as np

  data = np.load(out)
  images = data["images"]
  assert images.dtype == np.uint8 and images.shape == (3, 128, 128, 1)
  assert list(data["programs"]) == programs
  assert images[0, 64, 64, 0] == 255 and images[0, 0, 0, 0] == 0
  assert images[1].min() == 0 and (images[1] == 255).mean() > 0.8
  assert images[2].max() == 0
  # (and the hidden list of what the commands made: launch/outputs.py)
  assert sorted(
    p.name for p in (tmp_path / "png").iterdir() if p.name[0] != "."
  ) == [
    "0.png",
    "1.png",
    "2.png",
  ]


def test_render_names_the_bad_line_and_writes_nothing(tmp_path):
  src = tmp_path / "p.txt"
  src.write_text("(Box red)\n(Box red)\n(Box rouge)\n")
  out = tmp_path / "r.npz"
  res = _run(
    "launch.render", "--lang=rainbow", f"--programs={src}", f"--out={out}"
  )
  assert res.returncode == 2
  assert "line 3" in res.stderr and "Traceback" not in res.stderr
  assert not out.exists()


def test_render_sketch(tmp_path):
  src = tmp_path / "p.txt"
  src.write_text("(Circle 4 8 8)\n")
  out = tmp_path / "s.npz"
  res = _run(
    "launch.render",
    "--lang=csg2d",
    f"--programs={src}",
    f"--out={out}",
    "--sketch",
    "--seed=1",
  )
  assert res.returncode == 0, res.stderr
  import numpy as np

  images = np.load(out)["images"]
  # White paper with an outline; thin strokes (0.2 px and up) are faint.
  assert images[0, 0, 0, 0] == 255
  assert (images < 240).sum() > 50


@pytest.mark.parametrize(
  "args,message",
  [
    (
      (
        "--config=treediff_jax/configs/policy_tiny.py:stepz=3",
        "--workdir=/tmp/td_unused",
      ),
      "unknown config argument 'stepz'",
    ),
    (
      (
        "--config=treediff_jax/configs/policy_tiny.py:lang=csg3d",
        "--workdir=/tmp/td_unused",
      ),
      "unknown language 'csg3d'",
    ),
    (
      (
        "--config=treediff_jax/configs/policy_tiny.py",
        "--workdir=/no/such/parent/run",
      ),
      "parent folder",
    ),
    (("--config=missing.py", "--workdir=/tmp/td_unused"), "no config file"),
  ],
)
def test_train_bad_input_gives_one_clear_line(args, message):
  out = _run("launch.train", *args)
  assert out.returncode == 2
  assert message in out.stderr
  assert "Traceback" not in out.stderr


TINY = "--config=treediff_jax/configs/policy_tiny.py"


@pytest.mark.parametrize(
  "args,message",
  [
    ((), "--config is required"),
    (("--config=missing.py",), "no config file at missing.py"),
    (
      ("--config=missing.py", "--config.optim.lr=1"),
      "no config file at missing.py",
    ),
    (
      (f"{TINY}:stepz=3",),
      "policy_tiny.py:stepz=3: unknown config argument 'stepz'; known:",
    ),
    (
      (TINY, "--config.optim.lrr=1"),
      "no config field config.optim.lrr; config.optim has clip_norm, lr,",
    ),
    ((TINY, "--config.optimz.lr=1"), "no config field config.optimz.lr;"),
    (("--config.optim.lr=1",), "--config.optim.lr needs --config=<file.py>"),
    (
      (TINY, "--config.optim.lr=fast"),
      "--config.optim.lr=fast: could not convert string to float",
    ),
    ((TINY, "--config.input.batch_size=1.5"), "--config.input.batch_size=1.5"),
    (("--config.optim.lr=1", TINY), "before a value for --config"),
    ((TINY, "stray"), "unexpected arguments: stray"),
    # Checked by the trainer, before the workdir is made.
    ((TINY, "--config.lang=csg3d"), "config.lang: unknown language 'csg3d'"),
    (
      (TINY, "--config.input.sort_chunk=0"),
      "config.input.sort_chunk must be >= 1",
    ),
  ],
)
def test_train_config_errors_are_one_line_and_start_no_work(
  tmp_path, args, message
):
  workdir = tmp_path / "run"
  out = _run("launch.train", *args, f"--workdir={workdir}")
  assert out.returncode == 2, out.stderr
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
  assert message in lines[0]
  assert not workdir.exists()


@pytest.mark.slow  # a real (short) training run
def test_train_overrides_reach_the_trainer(tmp_path):
  out = _run(
    "launch.train",
    "--config=tests/train_tiny_config.py:steps=30",
    "--config.total_steps=2",
    "--config.optim.lr=2e-3",
    "--config.input.batch_size=4",
    "--config.log_every=1",
    "--nocompile_cache",
    f"--workdir={tmp_path}",
  )
  assert out.returncode == 0, out.stderr
  config = json.loads((tmp_path / "config.json").read_text())
  assert config["total_steps"] == 2 and config["optim"]["lr"] == 2e-3
  assert config["input"]["batch_size"] == 4
  assert config["optim"]["warmup_steps"] == 2  # the file's value
  rows = (tmp_path / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(r)["step"] for r in rows] == [1, 2]


@pytest.mark.parametrize(
  "args,message",
  [
    (("launch.sample", "--seed=-1"), "--seed must be >= 0"),
    (
      ("launch.noise", "--program=(Circle 1 2 3)", "--seed=-2"),
      "--seed must be >= 0",
    ),
    (
      (
        "launch.train",
        "--config=treediff_jax/configs/policy_tiny.py:rho=1.5",
        "--workdir=/tmp/td_unused",
      ),
      "rho must be in [0, 1]",
    ),
  ],
)
def test_more_bad_input(args, message):
  out = _run(*args)
  assert out.returncode == 2, out.stderr
  assert message in out.stderr
  assert "Traceback" not in out.stderr
