"""launch.fig4: its table of results and its refusals."""

import json
import os
import subprocess
import sys

from launch import fig4

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _result(path, name, rates, walls):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  solve_rate = {
    b: dict(mean=m, std=s, per_seed=[m]) for b, (m, s) in rates.items()
  }
  problems = [dict(wall_s=w) for w in walls]
  with open(path, "w") as f:
    json.dump(
      dict(
        method=name,
        budgets=[int(b) for b in rates],
        seeds=[0, 1],
        num_problems=len(walls),
        solve_rate=solve_rate,
        problems=problems,
      ),
      f,
    )


def test_table_lists_each_method_at_each_budget(tmp_path):
  out = str(tmp_path)
  _result(
    f"{out}/indist/hill_climb.json",
    "hill_climb",
    {"50": (0.0, 0.0), "1000": (0.25, 0.01)},
    [1.0, 3.0],
  )
  _result(
    f"{out}/indist/tree_diffusion_search.json",
    "tree_diffusion_search",
    {"50": (0.125, 0.02), "1000": (0.5, 0.05)},
    [2.0, 2.0],
  )
  text = fig4.table(out, ["indist", "hard"], ["tree_diffusion_search", "ar"])
  lines = text.splitlines()
  assert lines[0].startswith("**indist** (targets x seeds")
  assert "| method | targets x seeds | 50 | 1000 | s/problem |" in lines
  row = "| `tree_diffusion_search` | 2 x 2 | 0.125 +- 0.020 | 0.500 +- 0.050 |"
  assert row + " 2.00 |" in lines
  # Only the asked methods; sets and methods without results are left out.
  assert "hill_climb" not in text and "hard" not in text and "`ar`" not in text
  assert fig4._done(
    f"{out}/indist/hill_climb.json", "1000,50", 2, 2
  ) and not fig4._done(f"{out}/indist/hill_climb.json", "50,1000", 3, 2)
  assert not fig4._done(f"{out}/indist/hill_climb.json", "50,1000", 2, 64)


def test_unknown_entries_are_refused_in_one_line(tmp_path):
  for flag, message in (
    ("--methods=tree_diffusion_search,nope", "unknown entry 'nope'"),
    ("--sets=indist,easy", "unknown test set 'easy'"),
  ):
    res = subprocess.run(
      [sys.executable, "-m", "launch.fig4", f"--out={tmp_path}/o", flag],
      cwd=REPO,
      capture_output=True,
      text=True,
    )
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
      f"error: {message}; "
      + (
        "choose from "
        + (", ".join(fig4.ENTRIES) if "entry" in message else "indist, hard")
      )
    ]
    assert not os.path.exists(f"{tmp_path}/o")
