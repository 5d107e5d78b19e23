"""The CSG2D comparison of methods (the paper's Fig. 4) from the shipped
weights: solve rate against nodes on an in-distribution and an LZ4-hard
test set, every method with the same seeds and budgets.

  python -m launch.fig4 --out=DIR [--n=256 --seeds=3 \
      --budgets=50,100,250,500,1000,2000,5000 --methods=...]

Makes the two test sets (`make_testset` seeds 2001 and 2002, never used
for training or validation) in DIR unless they are there, runs
`launch.evaluate` for each entry of --methods on each (DIR/indist/NAME.json
and DIR/hard/NAME.json, with solve_rate.png beside them) and writes
DIR/table.md: the solve rate at every budget (mean +- std over seeds) and
the mean wall-clock per problem. --limit evaluates the first N targets of
each set (the table states each row's targets). An entry already evaluated
with the same settings is kept (delete its JSON to rerun it).

Entries (`--methods`, comma-separated):
  tree_diffusion_search        the default search
  tree_diffusion_search_value  ranked by the value model alone (beam 64,
                               k 3), as the paper describes the search
  tree_diffusion               policy rollout
  tree_diffusion_search_from_ar  the default search from the
                               autoregressive baseline's best samples
  ar, repl_flow, hill_climb    the baselines
"""

import json
import os
import subprocess
import sys

from absl import app, flags

from launch import common

TESTSETS = (("indist", 2001), ("hard", 2002))

# Entry name -> launch.evaluate flags.
ENTRIES = {
  "tree_diffusion_search": ["--method=tree_diffusion_search"],
  "tree_diffusion_search_value": [
    "--method=tree_diffusion_search",
    "--rank=value",
    "--beam=64",
    "--k=3",
    "--value_checkpoint=csg2d",
  ],
  "tree_diffusion": ["--method=tree_diffusion"],
  "tree_diffusion_search_from_ar": [
    "--method=tree_diffusion_search",
    "--start_checkpoint=csg2d/ar",
  ],
  "ar": ["--method=ar"],
  "repl_flow": ["--method=repl_flow"],
  "hill_climb": ["--method=hill_climb"],
}

_OUT = flags.DEFINE_string("out", None, "Output folder.")
_N = flags.DEFINE_integer("n", 256, "Targets per test set.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per method.")
_BUDGETS = flags.DEFINE_string(
  "budgets", "50,100,250,500,1000,2000,5000", "Node budgets."
)
_METHODS = flags.DEFINE_string("methods", ",".join(ENTRIES), "Entries to run.")
_SETS = flags.DEFINE_string("sets", "indist,hard", "Test sets to run.")
_BATCH = flags.DEFINE_integer("batch", 16, "Targets searched together.")
_LIMIT = flags.DEFINE_integer(
  "limit", 0, "Evaluate the first N targets of each set (0: all n)."
)


def _run(args: list[str]) -> None:
  cmd = [sys.executable, "-m", *args]
  print("+", " ".join(cmd), flush=True)
  res = subprocess.run(cmd)
  if res.returncode:
    common.exit_with(f"{args[0]} failed (exit {res.returncode})", 1)


def _done(path: str, budgets: str, seeds: int, n: int) -> bool:
  """An earlier result at `path` with the same budgets, seed count and
  number of problems."""
  try:
    with open(path) as f:
      r = json.load(f)
  except (OSError, json.JSONDecodeError):
    return False
  want = sorted(int(b) for b in budgets.split(","))
  return (
    r.get("budgets") == want
    and len(r.get("seeds", [])) == seeds
    and r.get("num_problems") == n
  )


def table(out: str, sets: list[str], names: list[str]) -> str:
  """Markdown tables of DIR/SET/NAME.json: solve rate (mean +- std) at each
  budget and the mean wall-clock per problem."""
  lines = []
  for kind in sets:
    rows = []
    budgets = None
    for name in names:
      path = os.path.join(out, kind, f"{name}.json")
      if not os.path.isfile(path):
        continue
      with open(path) as f:
        r = json.load(f)
      budgets = budgets or list(r["solve_rate"])
      wall = sum(p["wall_s"] for p in r["problems"]) / len(r["problems"])
      cells = [
        f"{r['solve_rate'][b]['mean']:.3f} +- {r['solve_rate'][b]['std']:.3f}"
        for b in budgets
      ]
      rows.append(
        f"| `{name}` | {r['num_problems']} x {len(r['seeds'])} | "
        + " | ".join(cells)
        + f" | {wall:.2f} |"
      )
    if not rows:
      continue
    lines.append(
      f"**{kind}** (targets x seeds; solve rate at each node budget, mean "
      "+- std over seeds; s/problem: wall-clock)\n"
    )
    head = " | ".join(budgets)
    lines.append(f"| method | targets x seeds | {head} | s/problem |")
    lines.append("| --- | ---: |" + " ---: |" * (len(budgets) + 1))
    lines += rows + [""]
  return "\n".join(lines)


def main(argv):
  del argv
  if not _OUT.value:
    common.exit_with("--out is required")
  names = [m for m in _METHODS.value.split(",") if m]
  for m in names:
    if m not in ENTRIES:
      common.exit_with(f"unknown entry {m!r}; choose from {', '.join(ENTRIES)}")
  sets = [s for s in _SETS.value.split(",") if s]
  seeds = dict(TESTSETS)
  for s in sets:
    if s not in seeds:
      common.exit_with(f"unknown test set {s!r}; choose from indist, hard")
  if _N.value < 1 or _SEEDS.value < 1 or _LIMIT.value < 0:
    common.exit_with("--n and --seeds must be >= 1, --limit >= 0")
  n = min(_LIMIT.value or _N.value, _N.value)
  os.makedirs(_OUT.value, exist_ok=True)
  for kind in sets:
    path = os.path.join(_OUT.value, f"test_{kind}.npz")
    if not os.path.isfile(path):
      _run(
        [
          "launch.make_testset",
          "--lang=csg2d",
          f"--kind={kind}",
          f"--n={_N.value}",
          f"--seed={seeds[kind]}",
          f"--out={path}",
        ]
      )
    for name in names:
      result = os.path.join(_OUT.value, kind, f"{name}.json")
      if _done(result, _BUDGETS.value, _SEEDS.value, n):
        continue
      _run(
        [
          "launch.evaluate",
          *ENTRIES[name],
          "--lang=csg2d",
          f"--name={name}",
          f"--testset={path}",
          f"--budgets={_BUDGETS.value}",
          f"--seeds={_SEEDS.value}",
          f"--batch={_BATCH.value}",
          f"--limit={n}",
          f"--out={os.path.join(_OUT.value, kind)}",
        ]
      )
  text = table(_OUT.value, sets, names)
  with open(os.path.join(_OUT.value, "table.md"), "w") as f:
    f.write(text + "\n")
  print(text)


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags_or_exit)
