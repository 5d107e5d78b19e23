"""make_testset, solve and evaluate, run as a user runs them, on freshly
initialised tiny checkpoints (a trained one: the slow test at the end)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from treediff_jax import render, testsets
from treediff_jax.dsl.languages import get_language

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args, timeout=300):
  return subprocess.run(
    [sys.executable, "-m", *args],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=timeout,
  )


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
  """Rainbow policy and value workdirs after two training steps."""
  root = tmp_path_factory.mktemp("ckpt")
  out = {}
  for kind in ("policy", "value"):
    workdir = str(root / kind)
    res = _run(
      "launch.train",
      f"--config=treediff_jax/configs/{kind}_tiny.py:steps=2,batch=8,"
      "lang=rainbow",
      f"--workdir={workdir}",
    )
    assert res.returncode == 0, res.stderr[-2000:]
    out[kind] = workdir
  return out


def test_make_testset_hard_keeps_incompressible_programs(tmp_path):
  out = str(tmp_path / "hard.npz")
  args = (
    "launch.make_testset",
    "--lang=csg2d",
    "--n=6",
    "--kind=hard",
    "--pool=60",
    "--seed=3",
    f"--out={out}",
  )
  res = _run(*args)
  assert res.returncode == 0, res.stderr
  info = json.loads(res.stdout.strip().splitlines()[-1])
  with np.load(out) as z:
    images, programs = z["images"], list(z["programs"])
    saved = json.loads(str(z["info"]))
  assert images.shape == (6, 128, 128, 1) and images.dtype == np.uint8
  sizes = testsets.lz4_size(images.astype(np.float32) / 255)
  assert np.all(sizes >= info["lz4_cut_bytes"])
  assert saved["lz4_sizes"] == sizes.tolist()
  # The programs draw the images.
  again = render.to_uint8(render.render_programs("csg2d", programs))
  np.testing.assert_array_equal(again, images)
  # An in-distribution set from the same seed is mostly easier.
  ind, _ = testsets.make_testset("csg2d", 30, "indist", seed=3)
  assert np.median(testsets.lz4_size(ind.images)) < info["lz4_cut_bytes"]
  # Reproducible from the seed (the file exists now: --overwrite).
  assert _run(*args, "--overwrite").stdout == res.stdout


def test_make_testset_explains_bad_requests(tmp_path):
  res = _run(
    "launch.make_testset",
    "--lang=rainbow",
    "--n=4",
    "--sketch",
    f"--out={tmp_path}/x.npz",
  )
  assert res.returncode != 0 and "csg2d only" in res.stderr
  assert "Traceback" not in res.stderr
  res = _run(
    "launch.make_testset", "--lang=csg2d", "--n=4", "--out=/no/such/dir/x.npz"
  )
  assert res.returncode != 0 and "does not exist" in res.stderr


def test_load_testset_reads_programs_pngs_and_npz(tmp_path):
  lang = get_language("rainbow")
  progs = tmp_path / "p.txt"
  progs.write_text("(Box red)\n(Arrange h (Ball blue) (Box green))\n")
  ts = testsets.load_testset("rainbow", str(progs))
  assert ts.images.shape == (2,) + lang.canvas_shape
  assert ts.programs[0] == "(Box red)"
  bad = tmp_path / "bad.txt"
  bad.write_text("(Box red)\n(Box reed)\n")
  with pytest.raises(ValueError, match="line 2"):
    testsets.load_testset("rainbow", str(bad))
  folder = tmp_path / "pngs"
  folder.mkdir()
  for i, im in enumerate(render.to_uint8(ts.images)):
    Image.fromarray(im).resize((100, 80)).save(folder / f"{i}.png")
  loaded = testsets.load_testset("rainbow", str(folder))
  assert loaded.images.shape == (2,) + lang.canvas_shape
  assert loaded.names == ["0.png", "1.png"]
  assert np.abs(loaded.images - ts.images).mean() < 0.1
  # Palette and 16-bit PNGs read as the picture they show.
  rgb = render.to_uint8(ts.images[1])
  Image.fromarray(rgb).convert("P").save(folder / "2_palette.png")
  gray16 = (ts.images[1].mean(-1) * 65535).astype(np.uint16)
  Image.fromarray(gray16).save(folder / "3_gray16.png")
  more = testsets.load_testset("rainbow", str(folder))
  assert np.abs(more.images[2] - ts.images[1]).mean() < 0.05
  gray = ts.images[1].mean(-1, keepdims=True)
  assert np.abs(more.images[3] - gray).mean() < 0.05
  npz = tmp_path / "t.npz"
  (tmp_path / "broken.npz").write_bytes(b"not a zip")
  with pytest.raises(ValueError, match="not a readable .npz"):
    testsets.load_testset("rainbow", str(tmp_path / "broken.npz"))
  testsets.save_testset(str(npz), ts, {})
  with pytest.raises(ValueError, match="rainbow test set, not csg2d"):
    testsets.load_testset("csg2d", str(npz))
  with pytest.raises(ValueError, match="no test set"):
    testsets.load_testset("csg2d", str(tmp_path / "missing.npz"))


def _pngs(folder, lang, programs, size=None):
  folder.mkdir()
  images = render.to_uint8(render.render_programs(lang, programs))
  for i, im in enumerate(images):
    img = Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im)
    if size and i == len(images) - 1:  # one of another size, in RGB
      img = img.convert("RGB").resize(size)
    img.save(folder / f"t{i}.png")
  return images


def test_solve_hill_climb_writes_programs_renders_and_pictures(tmp_path):
  _pngs(
    tmp_path / "in",
    "csg2d",
    ["(Circle 8 8 4)", "(Circle 8 8 6)"],
    size=(200, 150),
  )
  out = tmp_path / "out"
  res = _run(
    "launch.solve",
    "--method=hill_climb",
    "--lang=csg2d",
    f"--images={tmp_path / 'in'}",
    f"--out={out}",
    "--max_nodes=300",
    "--batch=2",
  )
  assert res.returncode == 0, res.stderr[-2000:]
  assert "resized and converted" in res.stdout
  lines = [
    json.loads(x) for x in (out / "results.jsonl").read_text().split("\n") if x
  ]
  assert len(lines) == 2
  g = get_language("csg2d").grammar
  for i, line in enumerate(lines):
    g.parse(line["program"])
    assert (out / f"t{i}.txt").read_text().strip() == line["program"]
    assert 1 <= line["nodes"] <= 300
    side = np.asarray(Image.open(out / f"t{i}_side.png"))
    assert side.shape == (128, 2 * 128 + 4, 3)
    assert np.asarray(Image.open(out / f"t{i}_render.png")).shape == (128, 128)
  # One contact sheet: both pairs side by side in a row, captions below.
  sheet = np.asarray(Image.open(out / "contact_sheet.png"))
  assert sheet.shape[1] >= 2 * (2 * 128 + 4) and sheet.shape[0] > 128
  assert "2/2 images searched" in res.stderr


def test_solve_and_evaluate_with_checkpoints(tmp_path, checkpoints):
  _pngs(tmp_path / "in", "rainbow", ["(Box red)", "(Ball blue)"])
  res = _run(
    "launch.solve",
    f"--checkpoint={checkpoints['policy']}",
    f"--value_checkpoint={checkpoints['value']}",
    f"--images={tmp_path / 'in'}",
    f"--out={tmp_path / 'out'}",
    "--max_nodes=40",
    "--beam=4",
    "--batch=2",
  )
  assert res.returncode == 0, res.stderr[-2000:]
  assert len((tmp_path / "out" / "results.jsonl").read_text().split()) > 0
  testset = tmp_path / "t.txt"
  testset.write_text(
    "(Box red)\n(Arrange v (Ball blue) (Box green))\n(Ball yellow)\n"
  )
  out = tmp_path / "eval"
  for method in ("tree_diffusion_search",):
    res = _run(
      "launch.evaluate",
      f"--method={method}",
      "--lang=rainbow",
      f"--checkpoint={checkpoints['policy']}",
      f"--value_checkpoint={checkpoints['value']}",
      f"--testset={testset}",
      "--budgets=5,30",
      "--seeds=2",
      "--batch=2",
      "--beam=4",
      "--k=3",
      "--max_steps=6",
      f"--out={out}",
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "problems" in res.stderr  # the progress bar
    r = json.loads((out / f"{method}.json").read_text())
    assert r["budgets"] == [5, 30] and r["seeds"] == [0, 1]
    assert len(r["problems"]) == 3 * 2
    for p in r["problems"]:
      assert 1 <= p["nodes"] <= 30 and p["wall_s"] > 0
    for b in (5, 30):
      per_seed = [
        np.mean(
          [
            p["solved"] and p["nodes"] <= b
            for p in r["problems"]
            if p["seed"] == s
          ]
        )
        for s in (0, 1)
      ]
      rate = r["solve_rate"][str(b)]
      assert rate["per_seed"] == pytest.approx(per_seed)
      assert rate["mean"] == pytest.approx(np.mean(per_seed))
  assert (out / "solve_rate.png").stat().st_size > 0


@pytest.mark.slow  # kept out of CI's 10-minute default run
def test_solve_and_evaluate_explain_bad_inputs(tmp_path, checkpoints):
  res = _run(
    "launch.solve",
    "--checkpoint=/no/such/workdir",
    f"--images={tmp_path}",
    f"--out={tmp_path}/o",
  )
  assert res.returncode != 0 and "Traceback" not in res.stderr
  policy, value = checkpoints["policy"], checkpoints["value"]
  # A readable test set: the messages below come from building the solver.
  _pngs(tmp_path / "ts", "rainbow", ["(Box red)"])
  for args, message in (
    (["--method=repl_flow", f"--checkpoint={policy}"], "needs 'repl'"),
    (
      [
        "--method=tree_diffusion",
        f"--checkpoint={policy}",
        f"--start_checkpoint={policy}",
      ],
      "starts need 'whole_program'",
    ),
    (["--method=ar", f"--checkpoint={policy}"], "needs 'whole_program'"),
    (
      ["--method=hill_climb", "--lang=rainbow", f"--start_checkpoint={policy}"],
      "for the tree diffusion methods",
    ),
    (
      ["--method=tree_diffusion_search", f"--checkpoint={value}"],
      "value model, not a policy",
    ),
  ):
    res = _run(
      "launch.evaluate",
      *args,
      f"--testset={tmp_path / 'ts'}",
      f"--out={tmp_path}/o",
    )
    assert res.returncode != 0 and message in res.stderr, args
    assert "Traceback" not in res.stderr
  bad = tmp_path / "bad.txt"
  bad.write_text("(Box red)\n(Box\n")
  res = _run(
    "launch.evaluate",
    "--method=hill_climb",
    "--lang=rainbow",
    f"--testset={bad}",
    f"--out={tmp_path}/o",
  )
  assert res.returncode != 0 and "line 2" in res.stderr


def _pipeline(out, *args):
  """Runs the main job into `out` with one seed; asserts it succeeded."""
  res = _run(
    "launch.pipeline", f"--out={out}", *args, "--seeds=1", timeout=1800
  )
  assert res.returncode == 0, res.stderr[-3000:]


@pytest.mark.slow
def test_pipeline_trains_tiny_models_that_solve_problems(tmp_path):
  """The main job with shorter training (about 6 minutes on 2 cores)."""
  out = tmp_path / "tiny"
  _pipeline(
    out,
    "--policy_steps=500",
    "--value_steps=200",
    "--ar_steps=200",
    "--n=16",
    "--budgets=50,1000",
  )
  rates = {}
  for method in ("tree_diffusion_search", "tree_diffusion", "ar", "hill_climb"):
    r = json.loads((out / "eval" / f"{method}.json").read_text())
    assert len(r["problems"]) == 16
    rates[method] = r["solve_rate"]["1000"]["mean"]
  assert (out / "eval" / "solve_rate.png").stat().st_size > 0
  # A few minutes of training already solve some in-distribution targets.
  assert rates["tree_diffusion_search"] > 0, rates
  # The search also starts from the autoregressive baseline's samples.
  res = _run(
    "launch.evaluate",
    "--method=tree_diffusion_search",
    f"--checkpoint={out / 'policy'}",
    f"--value_checkpoint={out / 'value'}",
    f"--start_checkpoint={out / 'ar'}",
    "--start_samples=16",
    f"--testset={out / 'testset.npz'}",
    "--budgets=50,1000",
    "--seeds=1",
    f"--out={out / 'eval'}",
    timeout=900,
  )
  assert res.returncode == 0, res.stderr[-3000:]
  r = json.loads(
    (out / "eval" / "tree_diffusion_search_from_ar.json").read_text()
  )
  assert r["start_checkpoint"] == str(out / "ar")
  assert all(p["nodes"] >= 1 for p in r["problems"])


@pytest.mark.slow
def test_pipeline_trains_and_evaluates_repl_flow_on_csg2d(tmp_path):
  """REPL Flow (a CSG2D baseline) trained and evaluated by the main job."""
  out = tmp_path / "csg"
  _pipeline(
    out,
    "--lang=csg2d",
    "--methods=repl_flow,hill_climb",
    "--repl_steps=200",
    "--n=8",
    "--budgets=50,500",
  )
  for method in ("repl_flow", "hill_climb"):
    r = json.loads((out / "eval" / f"{method}.json").read_text())
    assert len(r["problems"]) == 8 and r["lang"] == "csg2d"
    for p in r["problems"]:
      assert 1 <= p["nodes"] <= 500
  res = _run(
    "launch.pipeline", f"--out={out}", "--lang=rainbow", "--methods=repl_flow"
  )
  assert res.returncode != 0 and "needs --lang=csg2d" in res.stderr
