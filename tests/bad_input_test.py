"""Bad inputs to every launch command that writes files, run as a user runs
them: each is refused with exit status 2 and one line on stderr naming the
problem (no traceback), before any work, leaving every file as it was (no
output, no temporary file, no folder; inputs byte-identical).

Each row runs in a fresh workspace of inputs (`_workspace`): program files,
images, test sets, training workdirs and folders holding a user's files.
Plus the workdir guards (the lock, checkpoints that do not restore) and the
output rules on runs that succeed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSG = ("(Circle 4 8 8)", "(Quad 8 8 F F G)")
LONG = "(+ (Circle 1 2 3) " * 12 + "(Circle 1 2 3)" + ")" * 12  # 177 tokens
HUGE = "(+ (Circle 1 2 3) " * 120_000 + "(Circle 1 2 3)" + ")" * 120_000


def _run(*args, timeout=120):
  return subprocess.run(
    [sys.executable, "-m", *args],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=timeout,
  )


# -- the workspace -------------------------------------------------------------


def _png(path, size=(128, 128), mode="L", value=0):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.new(mode, size, value).save(path, format="PNG")


def _png_header(path, width, height):
  """A PNG whose header claims width x height (its pixels are not there)."""

  def chunk(kind, data):
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

  ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr))
    f.write(chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def _npy(array) -> bytes:
  buf = io.BytesIO()
  np.save(buf, array)
  return buf.getvalue()


def _npz_bomb(path):
  """An .npz whose images header claims [1, 30000, 30000, 1] (no data)."""
  header = io.BytesIO()
  np.lib.format.write_array_header_1_0(
    header,
    {"descr": "|u1", "fortran_order": False, "shape": (1, 30000, 30000, 1)},
  )
  with zipfile.ZipFile(path, "w") as z:
    z.writestr("images.npy", header.getvalue())
    z.writestr("lang.npy", _npy(np.array("csg2d")))


def _config_json(spec: str, **changes) -> str:
  from launch.common import load_config

  config = json.loads(load_config(spec).to_json())
  for key, value in changes.items():
    node = config
    *path, last = key.split(".")
    for k in path:
      node = node[k]
    node[last] = value
  return json.dumps(config, indent=1)


RAINBOW_POLICY = "treediff_jax/configs/policy_tiny.py:lang=rainbow"


def _workspace(ws):
  """The inputs every row may use (see the rows for their names)."""

  def write(rel, text):
    path = os.path.join(ws, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
      f.write(text)

  write("progs.txt", "\n".join(CSG) + "\n")
  write("user.txt", "my own notes\n")
  write("long.txt", LONG + "\n")
  write("huge.txt", HUGE + "\n")
  write("empty.txt", "")
  write("fake.png", "not an image\n")
  os.makedirs(os.path.join(ws, "emptydir"))
  _png(os.path.join(ws, "single.png"))
  _png(os.path.join(ws, "imgs", "a.png"))
  _png(os.path.join(ws, "imgs", "b.png"), value=255)
  _png(os.path.join(ws, "imgs_clash", "a.png"))
  Image.new("RGB", (128, 128)).save(os.path.join(ws, "imgs_clash", "a.jpg"))
  _png(os.path.join(ws, "imgs_self", "a.png"))
  _png(os.path.join(ws, "imgs_self", "a_render.png"))  # an earlier output
  _png(os.path.join(ws, "imgs_eval", "a.png"))
  _png(os.path.join(ws, "imgs_eval", "solve_rate.png"))
  _png_header(os.path.join(ws, "bomb.png"), 8000, 8000)
  _png_header(os.path.join(ws, "imgs_bomb", "big.png"), 100_000, 100_000)
  images = np.zeros((2, 128, 128, 1), np.uint8)
  np.savez(os.path.join(ws, "ts.npz"), images=images, lang=np.array("csg2d"))
  np.savez(
    os.path.join(ws, "empty.npz"),
    images=images[:0],
    lang=np.array("csg2d"),
  )
  np.savez(
    os.path.join(ws, "untagged_rgb.npz"),
    images=np.zeros((2, 64, 64, 3), np.uint8),
  )
  _npz_bomb(os.path.join(ws, "bomb.npz"))
  _png(os.path.join(ws, "pngs_user", "0.png"))
  write("out_user/a.txt", "my program\n")
  write("out_user/hill_climb.json", '{"mine": true}\n')
  write("out_user/csg2d_path.png", "my picture\n")
  write("wd_rainbow/config.json", _config_json(RAINBOW_POLICY))
  write("wd_trunc/config.json", _config_json(RAINBOW_POLICY)[:200])
  write("wd_locked/config.json", _config_json(RAINBOW_POLICY))
  write("pipe_user/testset.npz", "someone's test set\n")
  write(
    "pipe_rainbow/policy/config.json",
    _config_json(RAINBOW_POLICY + ",steps=800"),
  )
  write("pipe_eval/eval/hill_climb.json", '{"mine": true}\n')


def _snapshot(root) -> dict:
  """{relative path: (sha256, mode)} of every file, and every folder."""
  out = {}
  for folder, dirs, names in os.walk(root):
    for d in dirs:
      out[os.path.relpath(os.path.join(folder, d), root) + "/"] = "dir"
    for n in names:
      path = os.path.join(folder, n)
      with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
      out[os.path.relpath(path, root)] = (digest, os.stat(path).st_mode)
  return out


# -- the table -----------------------------------------------------------------

HC = ("--method=hill_climb", "--lang=csg2d")
EV = (*HC, "--budgets=10", "--seeds=1")
TD = "--method=tree_diffusion_search"
TINY = "treediff_jax/configs/policy_tiny.py"

# (id, command and flags ({ws}: the workspace), what the line must say)
ROWS = [
  # launch.render
  (
    "render_out_is_its_input",
    ("launch.render", "--programs={ws}/progs.txt", "--out={ws}/progs.txt"),
    "would replace the input",
  ),
  (
    "render_out_is_its_input_even_with_overwrite",
    (
      "launch.render",
      "--programs={ws}/progs.txt",
      "--out={ws}/progs.txt",
      "--overwrite",
    ),
    "would replace the input",
  ),
  (
    "render_out_names_a_users_file",
    ("launch.render", "--programs={ws}/progs.txt", "--out={ws}/user.txt"),
    "user.txt exists; pass --overwrite",
  ),
  (
    "render_out_is_a_folder",
    ("launch.render", "--programs={ws}/progs.txt", "--out={ws}/emptydir"),
    "is a folder",
  ),
  (
    "render_out_ends_in_a_slash",
    ("launch.render", "--programs={ws}/progs.txt", "--out={ws}/newdir/"),
    "names a folder",
  ),
  (
    "render_out_folder_missing",
    ("launch.render", "--programs={ws}/progs.txt", "--out={ws}/no/x.npz"),
    "does not exist",
  ),
  (
    "render_out_below_a_file",
    (
      "launch.render",
      "--programs={ws}/progs.txt",
      "--out={ws}/user.txt/x.npz",
    ),
    "is not a folder",
  ),
  (
    "render_png_dir_is_a_file",
    (
      "launch.render",
      "--programs={ws}/progs.txt",
      "--out={ws}/r.npz",
      "--png_dir={ws}/user.txt",
    ),
    "--png_dir=",
  ),
  (
    "render_png_dir_holds_a_users_png",
    (
      "launch.render",
      "--programs={ws}/progs.txt",
      "--out={ws}/r.npz",
      "--png_dir={ws}/pngs_user",
    ),
    "0.png exists and is not an unchanged earlier output",
  ),
  (
    "render_png_dir_parent_missing",
    (
      "launch.render",
      "--programs={ws}/progs.txt",
      "--out={ws}/r.npz",
      "--png_dir={ws}/no/png",
    ),
    "does not exist",
  ),
  (
    "render_programs_missing",
    ("launch.render", "--programs={ws}/nothing.txt", "--out={ws}/r.npz"),
    "cannot read --programs",
  ),
  (
    "render_programs_is_an_image",
    ("launch.render", "--programs={ws}/single.png", "--out={ws}/r.npz"),
    "single.png is an image, not a text file of programs",
  ),
  (
    "render_programs_is_a_folder",
    ("launch.render", "--programs={ws}/emptydir", "--out={ws}/r.npz"),
    "is a folder",
  ),
  (
    "render_program_over_the_token_budget",
    ("launch.render", "--programs={ws}/long.txt", "--out={ws}/r.npz"),
    "line 1: csg2d: program of 177 tokens is over the language's budget of "
    "160 tokens",
  ),
  (
    "render_2mb_program_refused_before_parsing",
    ("launch.render", "--programs={ws}/huge.txt", "--out={ws}/r.npz"),
    "budget of 160 tokens",
  ),
  (
    "render_no_programs",
    ("launch.render", "--programs={ws}/empty.txt", "--out={ws}/r.npz"),
    "holds no programs",
  ),
  (
    "render_unknown_flag",
    ("launch.render", "--programs={ws}/progs.txt", "--outt={ws}/r.npz"),
    "Unknown command line flag 'outt'",
  ),
  (
    "render_negative_seed",
    (
      "launch.render",
      "--programs={ws}/progs.txt",
      "--out={ws}/r.npz",
      "--seed=-1",
    ),
    "--seed must be >= 0",
  ),
  # launch.solve
  (
    "solve_out_is_the_image_folder_holding_an_output_name",
    ("launch.solve", *HC, "--images={ws}/imgs_self", "--out={ws}/imgs_self"),
    "a_render.png would replace the input",
  ),
  (
    "solve_out_is_a_file",
    ("launch.solve", *HC, "--images={ws}/imgs", "--out={ws}/user.txt"),
    "exists and is not a folder",
  ),
  (
    "solve_out_holds_a_users_file",
    ("launch.solve", *HC, "--images={ws}/imgs", "--out={ws}/out_user"),
    "a.txt exists and is not an unchanged earlier output",
  ),
  (
    "solve_two_images_one_output_name",
    ("launch.solve", *HC, "--images={ws}/imgs_clash", "--out={ws}/o"),
    "would both be written to",
  ),
  (
    "solve_image_over_the_pixel_limit",
    ("launch.solve", *HC, "--images={ws}/bomb.png", "--out={ws}/o"),
    "8000x8000 = 64000000 pixels, over the limit",
  ),
  (
    "solve_image_is_not_an_image",
    ("launch.solve", *HC, "--images={ws}/fake.png", "--out={ws}/o"),
    "fake.png is not a readable image",
  ),
  (
    "solve_negative_beam",
    ("launch.solve", *HC, "--images={ws}/imgs", "--out={ws}/o", "--beam=-2"),
    "--beam must be >= 0",
  ),
  (
    "solve_checkpoint_config_truncated",
    (
      "launch.solve",
      TD,
      "--checkpoint={ws}/wd_trunc",
      "--images={ws}/imgs",
      "--out={ws}/o",
    ),
    "wd_trunc/config.json is not valid JSON",
  ),
  (
    "solve_out_folder_missing",
    ("launch.solve", *HC, "--images={ws}/imgs", "--out={ws}/no/o"),
    "does not exist",
  ),
  (
    "solve_no_shipped_weights_for_the_language",
    (
      "launch.solve",
      TD,
      "--lang=tinysvg",
      "--images={ws}/imgs",
      "--out={ws}/o",
    ),
    "no shipped policy weights called 'tinysvg'",
  ),
  (
    "solve_shipped_weights_of_another_language",
    (
      "launch.solve",
      TD,
      "--checkpoint=csg2d",
      "--lang=rainbow",
      "--images={ws}/imgs",
      "--out={ws}/o",
    ),
    "holds a csg2d policy, not rainbow",
  ),
  (
    "solve_shipped_weights_of_another_kind",
    (
      "launch.solve",
      TD,
      "--checkpoint=csg2d/ar",
      "--images={ws}/imgs",
      "--out={ws}/o",
    ),
    "trained with label_mode='whole_program'",
  ),
  (
    "evaluate_result_name_with_a_path",
    (
      "launch.evaluate",
      *EV,
      "--testset={ws}/ts.npz",
      "--out={ws}/o",
      "--name=../x",
    ),
    "--name must be letters, digits, _ and -, got '../x'",
  ),
  (
    "evaluate_value_checkpoint_is_a_policy",
    (
      "launch.evaluate",
      TD,
      "--lang=csg2d",
      "--value_checkpoint=csg2d/ar",
      "--testset={ws}/ts.npz",
      "--out={ws}/o",
    ),
    "csg2d/ar holds a policy model, not a value",
  ),
  # launch.evaluate
  (
    "evaluate_testset_is_a_single_png",
    ("launch.evaluate", *EV, "--testset={ws}/single.png", "--out={ws}/o"),
    "single.png is a single image, not a test set",
  ),
  (
    "evaluate_testset_npz_holds_no_images",
    ("launch.evaluate", *EV, "--testset={ws}/empty.npz", "--out={ws}/o"),
    "empty.npz holds no images",
  ),
  (
    "evaluate_untagged_testset_of_another_canvas",
    (
      "launch.evaluate",
      *EV,
      "--testset={ws}/untagged_rgb.npz",
      "--out={ws}/o",
    ),
    "has no language tag and its images are [64, 64, 3], not the csg2d",
  ),
  (
    "evaluate_testset_npz_over_the_pixel_limit",
    ("launch.evaluate", *EV, "--testset={ws}/bomb.npz", "--out={ws}/o"),
    "over the limit",
  ),
  (
    "evaluate_testset_png_over_the_pixel_limit",
    ("launch.evaluate", *EV, "--testset={ws}/imgs_bomb", "--out={ws}/o"),
    "too large to decode",
  ),
  (
    "evaluate_negative_limit",
    (
      "launch.evaluate",
      *EV,
      "--testset={ws}/ts.npz",
      "--out={ws}/o",
      "--limit=-1",
    ),
    "--limit must be >= 0",
  ),
  (
    "evaluate_out_is_a_file",
    ("launch.evaluate", *EV, "--testset={ws}/ts.npz", "--out={ws}/user.txt"),
    "exists and is not a folder",
  ),
  (
    "evaluate_out_holds_a_users_results",
    ("launch.evaluate", *EV, "--testset={ws}/ts.npz", "--out={ws}/out_user"),
    "hill_climb.json exists and is not an unchanged earlier output",
  ),
  (
    "evaluate_out_is_the_testset_folder",
    (
      "launch.evaluate",
      *EV,
      "--testset={ws}/imgs_eval",
      "--out={ws}/imgs_eval",
    ),
    "solve_rate.png would replace the input",
  ),
  (
    "evaluate_program_over_the_token_budget",
    ("launch.evaluate", *EV, "--testset={ws}/long.txt", "--out={ws}/o"),
    "long.txt, line 1: csg2d: program of 177 tokens",
  ),
  (
    "evaluate_value_checkpoint_config_truncated",
    (
      "launch.evaluate",
      TD,
      "--value_checkpoint={ws}/wd_trunc",
      "--testset={ws}/ts.npz",
      "--out={ws}/o",
    ),
    "--value_checkpoint: ",
  ),
  # launch.make_testset
  (
    "make_testset_out_ends_in_a_slash",
    ("launch.make_testset", "--n=2", "--out={ws}/emptydir/"),
    "is a folder",
  ),
  (
    "make_testset_out_is_a_folder",
    ("launch.make_testset", "--n=2", "--out={ws}/emptydir"),
    "is a folder",
  ),
  (
    "make_testset_out_names_only_the_suffix",
    ("launch.make_testset", "--n=2", "--out={ws}/.npz"),
    "names no file",
  ),
  (
    "make_testset_out_exists",
    ("launch.make_testset", "--n=2", "--out={ws}/ts.npz"),
    "ts.npz exists; pass --overwrite",
  ),
  (
    "make_testset_no_targets",
    ("launch.make_testset", "--n=0", "--out={ws}/t.npz"),
    "--n must be >= 1",
  ),
  (
    "make_testset_negative_pool",
    ("launch.make_testset", "--kind=hard", "--pool=-5", "--out={ws}/t.npz"),
    "--pool must be >= 0",
  ),
  (
    "make_testset_pool_smaller_than_n",
    (
      "launch.make_testset",
      "--kind=hard",
      "--n=8",
      "--pool=3",
      "--out={ws}/t.npz",
    ),
    "must hold at least --n=8",
  ),
  # launch.demo
  (
    "demo_negative_steps_creates_no_folder",
    ("launch.demo", "--out={ws}/demo", "--steps=-1"),
    "--steps must be in [0, 1000]",
  ),
  (
    "demo_steps_that_would_never_end",
    ("launch.demo", "--out={ws}/demo", "--steps=1000000000"),
    "--steps must be in [0, 1000]",
  ),
  (
    "demo_out_is_a_file",
    ("launch.demo", "--out={ws}/user.txt"),
    "exists and is not a folder",
  ),
  (
    "demo_out_holds_a_users_file",
    ("launch.demo", "--out={ws}/out_user"),
    "csg2d_path.png exists and is not an unchanged earlier output",
  ),
  (
    "demo_seed_not_a_number",
    ("launch.demo", "--out={ws}/demo", "--seed=abc"),
    "flag --seed=abc",
  ),
  # launch.train
  (
    "train_resume_with_another_language",
    (
      "launch.train",
      f"--config={TINY}:lang=csg2d",
      "--workdir={ws}/wd_rainbow",
    ),
    "was trained with config.lang='rainbow', this config has 'csg2d'",
  ),
  (
    "train_resume_with_another_kind",
    (
      "launch.train",
      "--config=treediff_jax/configs/value_tiny.py:lang=rainbow",
      "--workdir={ws}/wd_rainbow",
    ),
    "config.kind='policy', this config has 'value'",
  ),
  (
    "train_resume_with_another_model_size",
    (
      "launch.train",
      f"--config={RAINBOW_POLICY}",
      "--config.model.size=small",
      "--workdir={ws}/wd_rainbow",
    ),
    "config.model.size='tiny', this config has 'small'",
  ),
  (
    "train_resume_with_another_label_mode",
    (
      "launch.train",
      "--config=treediff_jax/configs/ar_tiny.py:lang=rainbow",
      "--workdir={ws}/wd_rainbow",
    ),
    "config.input.label_mode='path'",
  ),
  (
    "train_resume_blanking_the_current_image",
    (
      "launch.train",
      f"--config={RAINBOW_POLICY}",
      "--config.input.blank_current=True",
      "--workdir={ws}/wd_rainbow",
    ),
    "config.input.blank_current=False, this config has True",
  ),
  (
    "train_workdir_config_truncated",
    (
      "launch.train",
      f"--config={RAINBOW_POLICY}",
      "--workdir={ws}/wd_trunc",
    ),
    "wd_trunc/config.json is not valid JSON",
  ),
  (
    "train_workdir_held_by_another_run",
    (
      "launch.train",
      f"--config={RAINBOW_POLICY}",
      "--workdir={ws}/wd_locked",
    ),
    "is in use by another training run (pid {pid}",
  ),
  (
    "train_workdir_is_a_file",
    ("launch.train", f"--config={RAINBOW_POLICY}", "--workdir={ws}/user.txt"),
    "exists and is not a folder",
  ),
  # launch.pipeline
  (
    "pipeline_out_is_a_file",
    ("launch.pipeline", "--out={ws}/user.txt"),
    "exists and is not a folder",
  ),
  (
    "pipeline_negative_steps",
    ("launch.pipeline", "--out={ws}/p", "--policy_steps=-1"),
    "--policy_steps must be >= 1",
  ),
  (
    "pipeline_budgets_not_numbers",
    ("launch.pipeline", "--out={ws}/p", "--budgets=many"),
    "--budgets must be integers",
  ),
  (
    "pipeline_out_holds_a_users_testset",
    ("launch.pipeline", "--out={ws}/pipe_user", "--methods=hill_climb"),
    "testset.npz exists and is not an unchanged earlier output",
  ),
  (
    "pipeline_workdir_of_another_language",
    ("launch.pipeline", "--out={ws}/pipe_rainbow", "--lang=csg2d"),
    "was trained with config.lang='rainbow'",
  ),
  (
    "pipeline_eval_holds_a_users_results",
    ("launch.pipeline", "--out={ws}/pipe_eval", "--methods=hill_climb"),
    "hill_climb.json exists and is not an unchanged earlier output",
  ),
  # launch.noise (writes nothing; bounded inputs)
  (
    "noise_program_over_the_token_budget",
    ("launch.noise", f"--program={LONG}"),
    "over the language's budget of 160 tokens",
  ),
  (
    "noise_steps_that_would_never_end",
    ("launch.noise", f"--program={CSG[0]}", "--steps=1000000000"),
    "--steps must be in [0, 1000]",
  ),
]


def _hold_lock(workdir):
  """A process holding the workdir's lock, as a running trainer does."""
  proc = subprocess.Popen(
    [
      sys.executable,
      "-c",
      "import sys, time\n"
      "from treediff_jax.workdir import WorkdirLock\n"
      "lock = WorkdirLock(sys.argv[1])\n"
      "print('locked', flush=True)\n"
      "time.sleep(120)\n",
      workdir,
    ],
    cwd=REPO,
    stdout=subprocess.PIPE,
    text=True,
  )
  assert proc.stdout.readline().strip() == "locked"
  return proc


def test_table_is_large_and_covers_every_command():
  assert SLOW_ROWS <= {r[0] for r in ROWS}
  assert len(ROWS) - len(SLOW_ROWS) >= 40  # in the default run
  assert len({r[0] for r in ROWS}) == len(ROWS)
  commands = {r[1][0] for r in ROWS}
  for name in ("render", "solve", "evaluate", "make_testset", "demo"):
    assert f"launch.{name}" in commands
  assert {"launch.train", "launch.pipeline"} <= commands


# Rows whose rule other rows already cover in the default run; each costs
# a jax import (solve, evaluate and pipeline import the search package).
SLOW_ROWS = {
  "solve_out_folder_missing",
  "solve_negative_beam",
  "evaluate_testset_npz_over_the_pixel_limit",
  "evaluate_value_checkpoint_config_truncated",
  "evaluate_out_is_a_file",
  "pipeline_eval_holds_a_users_results",
}


@pytest.mark.parametrize(
  "row",
  [
    pytest.param(r, id=r[0], marks=[pytest.mark.slow] * (r[0] in SLOW_ROWS))
    for r in ROWS
  ],
)
def test_bad_input_is_refused_in_one_line_and_changes_nothing(tmp_path, row):
  name, args, message = row
  ws = str(tmp_path / "ws")
  os.makedirs(ws)
  _workspace(ws)
  holder = None
  if name == "train_workdir_held_by_another_run":
    holder = _hold_lock(os.path.join(ws, "wd_locked"))
  try:
    before = _snapshot(ws)
    t0 = time.perf_counter()
    res = _run(*(a.format(ws=ws) for a in args))
    seconds = time.perf_counter() - t0
  finally:
    if holder is not None:
      holder.kill()
      holder.wait()
  message = message.format(pid=holder.pid if holder else "")
  lines = res.stderr.strip().splitlines()
  assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
  assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr[-2000:]
  assert "Traceback" not in res.stderr
  assert message in lines[0], lines[0]
  assert _snapshot(ws) == before  # nothing created, changed or removed
  if name == "render_2mb_program_refused_before_parsing":
    assert seconds < 20, seconds


# -- output rules on runs that succeed -----------------------------------------


def test_outputs_follow_the_umask_and_a_rerun_replaces_its_own(tmp_path):
  progs = tmp_path / "p.txt"
  progs.write_text("\n".join(CSG) + "\n")
  out, pngs = tmp_path / "r.npz", tmp_path / "png"
  args = ("launch.render", f"--programs={progs}", f"--png_dir={pngs}")
  old = os.umask(0o027)
  try:
    res = _run(*args, f"--out={out}")
  finally:
    os.umask(old)
  assert res.returncode == 0, res.stderr
  assert (out.stat().st_mode & 0o777) == 0o640
  assert ((pngs / "0.png").stat().st_mode & 0o777) == 0o640
  assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
  # Again: the PNGs are its own (replaced), the npz needs --overwrite.
  res = _run(*args, f"--out={out}")
  assert res.returncode == 2 and "pass --overwrite" in res.stderr
  res = _run(*args, f"--out={out}", "--overwrite")
  assert res.returncode == 0, res.stderr
  # A PNG someone changed is no longer the command's own.
  (pngs / "1.png").write_bytes(b"edited")
  res = _run(*args, f"--out={tmp_path / 'r2.npz'}")
  assert res.returncode == 2 and "1.png exists" in res.stderr
  assert (pngs / "1.png").read_bytes() == b"edited"
  assert not (tmp_path / "r2.npz").exists()


def test_make_testset_out_without_suffix_and_overwrite(tmp_path):
  out = tmp_path / "t"
  res = _run("launch.make_testset", "--n=2", f"--out={out}")
  assert res.returncode == 0, res.stderr
  assert (tmp_path / "t.npz").exists() and not out.exists()
  first = (tmp_path / "t.npz").read_bytes()
  res = _run(
    "launch.make_testset", "--n=2", "--seed=1", f"--out={out}", "--overwrite"
  )
  assert res.returncode == 0 and (tmp_path / "t.npz").read_bytes() != first


# -- workdir guards ------------------------------------------------------------


def test_lock_names_its_holder_and_a_killed_holders_lock_is_taken_over(
  tmp_path, capsys
):
  from treediff_jax import workdir

  holder = _hold_lock(str(tmp_path))
  try:
    with pytest.raises(workdir.WorkdirError, match=f"pid {holder.pid}"):
      workdir.WorkdirLock(str(tmp_path))
    with pytest.raises(workdir.WorkdirError, match=f"pid {holder.pid}"):
      workdir.check_unlocked(str(tmp_path))
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  workdir.check_unlocked(str(tmp_path))
  with workdir.WorkdirLock(str(tmp_path)):
    assert f"pid {holder.pid}, which is no longer running" in (
      capsys.readouterr().out
    )
    text = (tmp_path / workdir.LOCK_FILE).read_text()
    assert text.split()[0] == str(os.getpid())
  assert (tmp_path / workdir.LOCK_FILE).read_text() == ""


def test_config_comparison():
  from launch.common import load_config
  from treediff_jax import workdir
  from treediff_jax.dsl.languages import get_language

  def config(spec="treediff_jax/configs/policy_csg2d.py"):
    return json.loads(load_config(spec).to_json())

  old = config()
  assert workdir.compare_configs(old, config(), "c.json") == []
  new = config()
  new["total_steps"] += 1000
  new["evals"]["every"] = 7
  new["ckpt"]["keep"] = 9
  new["log_every"] = 3
  new["input"]["num_workers"] = 1
  assert workdir.compare_configs(old, new, "c.json") == []
  new["optim"]["lr"] = 1e-4
  (note,) = workdir.compare_configs(old, new, "c.json")
  assert "config.optim.lr changes from 0.001 to 0.0001" in note
  new = config()
  new["lang"] = "csg2da"  # an alias of the same language
  new["model"]["max_len"] = get_language("csg2d").seq_len  # the default
  assert workdir.compare_configs(old, new, "c.json") == []
  for key, value in (("lang", "rainbow"), ("kind", "value")):
    new = config()
    new[key] = value
    with pytest.raises(workdir.WorkdirError, match=f"config.{key}="):
      workdir.compare_configs(old, new, "c.json")
  # Configs of older runs lack later fields: their defaults are compared.
  older = config()
  del older["model"]["dtype"], older["input"]["blank_current"]
  assert workdir.compare_configs(older, config(), "c.json") == []


def test_a_damaged_checkpoint_is_named_and_the_previous_step_restores(
  tmp_path, capsys
):
  import jax.numpy as jnp

  from treediff_jax import checkpointing
  from treediff_jax.trainers import common as trainer_common

  state = {"w": jnp.arange(64.0), "b": jnp.ones((4, 4))}
  manager = checkpointing.make_manager(str(tmp_path), 1, 3, False)
  for step in (1, 2):
    checkpointing.save(
      manager, step, {k: v * step for k, v in state.items()}, {"step": step}
    )
  manager.wait_until_finished()
  # Truncate the biggest file of step 2's state.
  files = [
    os.path.join(d, f)
    for d, _, names in os.walk(tmp_path / "checkpoints" / "2" / "state")
    for f in names
  ]
  biggest = max(files, key=os.path.getsize)
  with open(biggest, "r+b") as f:
    f.truncate(os.path.getsize(biggest) // 2)
  restored, start = trainer_common._restore_or_init(None, None, state, manager)
  assert start == 1
  np.testing.assert_allclose(np.asarray(restored["w"]), np.arange(64.0))
  err = capsys.readouterr().err
  assert "checkpoint step 2 (" in err and "does not restore" in err
  assert str(tmp_path / "checkpoints" / "2") in err
  assert (tmp_path / "checkpoints_broken" / "2").is_dir()
  assert manager.all_steps() == [1]
  # A later save of step 2 works (the damaged one is out of the way).
  checkpointing.save(manager, 2, state, {"step": 2}, force=True)
  manager.wait_until_finished()
  # None restores: one error naming each step.
  data_file = tmp_path / "checkpoints" / "1" / "data" / "metadata"
  data_file.write_text("{")
  (tmp_path / "checkpoints" / "2" / "data" / "metadata").write_text("{")
  manager.reload()
  with pytest.raises(checkpointing.CheckpointRestoreError) as info:
    trainer_common._restore_or_init(None, None, state, manager)
  assert "step 2 (" in str(info.value) and "step 1 (" in str(info.value)
  manager.close()


def _train_cmd(workdir, steps):
  return [
    sys.executable,
    "-m",
    "launch.train",
    f"--config=tests/train_tiny_config.py:steps={steps}",
    "--config.log_every=1",
    f"--workdir={workdir}",
  ]


@pytest.mark.slow
def test_second_trainer_on_a_workdir_refuses_and_the_first_finishes(tmp_path):
  from treediff_jax import workdir

  first = subprocess.Popen(
    _train_cmd(tmp_path, 12),
    cwd=REPO,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )
  lock = tmp_path / workdir.LOCK_FILE
  deadline = time.time() + 300
  while time.time() < deadline:
    if lock.exists() and lock.read_text().split()[:1] == [str(first.pid)]:
      break
    time.sleep(0.2)
  second = subprocess.run(
    _train_cmd(tmp_path, 12),
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert second.returncode == 2, second.stderr[-2000:]
  lines = second.stderr.strip().splitlines()
  assert len(lines) == 1 and f"pid {first.pid}" in lines[0], second.stderr
  out, err = first.communicate(timeout=900)
  assert first.returncode == 0, err[-2000:]
  steps = [
    json.loads(x)["step"]
    for x in (tmp_path / "metrics.jsonl").read_text().splitlines()
  ]
  assert steps == list(range(1, 13))


def test_loading_for_evaluation_skips_a_damaged_checkpoint(tmp_path, capsys):
  import jax.numpy as jnp

  from treediff_jax import checkpointing

  state = {"w": jnp.arange(64.0)}
  manager = checkpointing.make_manager(str(tmp_path), 1, 3, False)
  for step in (1, 2):
    checkpointing.save(manager, step, {"w": state["w"] * step}, {"step": step})
  manager.wait_until_finished()
  manager.close()
  files = [
    os.path.join(d, f)
    for d, _, names in os.walk(tmp_path / "checkpoints" / "2" / "state")
    for f in names
  ]
  for name in files:  # every file of step 2's state cut in half
    with open(name, "r+b") as f:
      f.truncate(os.path.getsize(name) // 2)
  restored, data = checkpointing.restore_path(str(tmp_path), state)
  assert data["step"] == 1
  np.testing.assert_allclose(np.asarray(restored["w"]), np.arange(64.0))
  assert "checkpoint step 2 (" in capsys.readouterr().err
  (tmp_path / "checkpoints" / "1" / "data" / "metadata").write_text("{")
  with pytest.raises(checkpointing.CheckpointRestoreError, match="step 1"):
    checkpointing.restore_path(str(tmp_path), state)
