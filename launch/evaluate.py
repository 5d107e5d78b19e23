"""Solve rate against nodes expanded on a test set, over several seeds.

  python -m launch.evaluate --method=tree_diffusion_search \
      --checkpoint=POLICY_WORKDIR [--value_checkpoint=VALUE_WORKDIR] \
      --testset=FILE.npz|PROGRAMS.txt|PNG_DIR --budgets=100,500,2000 \
      --seeds=5 --out=DIR

Writes DIR/METHOD.json: the solve rate at each node budget (mean and std
over seeds, and per seed) and, per problem and seed, whether it was solved,
the nodes used and the wall time (a batch's time shared evenly among its
problems; compilation excluded). Then draws DIR/solve_rate.png from every
METHOD.json in DIR. The test set and both outputs are checked before a
model is loaded, and the files are written whole (launch/outputs.py): a
file in DIR that earlier runs did not write is replaced only with
--overwrite.
"""

import json
import os
import sys

from absl import app, flags

from launch import common, outputs, search_flags

_SEARCH = search_flags.define()
_TESTSET = flags.DEFINE_string("testset", None, "Test set file or folder.")
_BUDGETS = flags.DEFINE_string(
  "budgets", "100,500,2000", "Node budgets, comma-separated."
)
_SEEDS = flags.DEFINE_integer("seeds", 5, "Number of seeds.")
_LIMIT = flags.DEFINE_integer("limit", 0, "Use the first N problems (0: all).")
_NAME = flags.DEFINE_string(
  "name",
  None,
  "Result name: DIR/NAME.json (default: the method's, METHOD_from_ar with "
  "--start_checkpoint), for several settings of one method in one DIR.",
)


def parse_budgets(text: str) -> list[int]:
  try:
    budgets = sorted({int(x) for x in text.split(",") if x.strip()})
  except ValueError:
    common.exit_with(f"--budgets must be integers, got {text!r}")
  if not budgets or budgets[0] < 1:
    common.exit_with("--budgets needs positive node counts")
  return budgets


def testset_files() -> list[str]:
  """The input files of --testset (a folder: its images)."""
  path = _TESTSET.value
  if not os.path.isdir(path):
    return [path]
  return [os.path.join(path, name) for name in os.listdir(path)]


def progress(seed: int, done: int, total: int, solved: int):
  width = 30
  fill = int(width * done / max(total, 1))
  bar = "#" * fill + "." * (width - fill)
  sys.stderr.write(
    f"\rseed {seed} [{bar}] {done}/{total} problems, {solved} solved"
  )
  if done == total:
    sys.stderr.write("\n")
  sys.stderr.flush()


def plot(out_dir: str, outs: outputs.Outputs | None = None) -> str:
  """Draws solve rate against nodes for every METHOD.json in `out_dir`
  (written whole through `outs`, where its solve_rate.png is claimed)."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(6, 4))
  titles = set()
  for name in sorted(os.listdir(out_dir)):
    if not name.endswith(".json"):
      continue
    with open(os.path.join(out_dir, name)) as f:
      try:
        r = json.load(f)
      except json.JSONDecodeError:
        continue
    if "solve_rate" not in r:
      continue
    xs = [int(b) for b in r["solve_rate"]]
    ms = [r["solve_rate"][b]["mean"] for b in r["solve_rate"]]
    sd = [r["solve_rate"][b]["std"] for b in r["solve_rate"]]
    ax.errorbar(xs, ms, yerr=sd, marker="o", capsize=3, label=r["method"])
    titles.add(f"{r['lang']}: {os.path.basename(r['testset'])}")
  ax.set_title("; ".join(sorted(titles)))
  ax.set_xscale("log")
  ax.set_xlabel("nodes expanded (renderer calls)")
  ax.set_ylabel("share of problems solved")
  ax.set_ylim(0, 1)
  ax.legend()
  ax.grid(alpha=0.3)
  path = os.path.join(out_dir, "solve_rate.png")
  fig.tight_layout()
  if outs is None:
    fig.savefig(path, dpi=120)
  else:
    outs.write(path, lambda fh: fig.savefig(fh, format="png", dpi=120))
    outs.commit()
  plt.close(fig)
  return path


def main(argv):
  del argv
  f = _SEARCH
  if not _TESTSET.value or not _SEARCH.out.value:
    common.exit_with("--testset and --out are required")
  if _SEEDS.value < 1:
    common.exit_with("--seeds must be >= 1")
  if _LIMIT.value < 0:
    common.exit_with(f"--limit must be >= 0 (0: all), got {_LIMIT.value}")
  search_flags.check(f)
  budgets = parse_budgets(_BUDGETS.value)
  from treediff_jax import evaluation, testsets

  # Every input and output is checked before a model is loaded.
  try:
    testsets.check_testset(_TESTSET.value)
  except ValueError as e:
    common.exit_with(str(e))
  name = _NAME.value or (
    f.method.value + ("_from_ar" if f.start_checkpoint.value else "")
  )
  if not name.replace("_", "").replace("-", "").isalnum():
    common.exit_with(f"--name must be letters, digits, _ and -, got {name!r}")
  outs = outputs.Outputs(f.overwrite.value, inputs=testset_files())
  out_dir = outs.folder("--out", _SEARCH.out.value)
  outs.claim("--out", out_dir, f"{name}.json")
  outs.claim("--out", out_dir, "solve_rate.png")
  common.quiet_jax_logs()
  ts = None
  if f.lang.value:  # the whole test set, programs parsed and rendered
    try:
      ts = testsets.load_testset(f.lang.value, _TESTSET.value)
    except ValueError as e:
      common.exit_with(str(e))

  solver = search_flags.build_solver_or_exit(f, budgets[-1])
  if not _NAME.value and solver.name != name:
    name = solver.name
    outs.claim("--out", out_dir, f"{name}.json")
  try:
    if ts is None or ts.lang != solver.lang:
      ts = testsets.load_testset(solver.lang, _TESTSET.value)
  except ValueError as e:
    common.exit_with(str(e))
  images = ts.images[: _LIMIT.value or None]
  seeds = [f.seed.value + s for s in range(_SEEDS.value)]
  problems = evaluation.run_solver(
    solver, images, ts.names, seeds, f.batch.value, progress
  )
  result = dict(
    method=name,
    solver=solver.name,
    lang=solver.lang,
    testset=os.path.abspath(_TESTSET.value),
    checkpoint=f.checkpoint.value,
    value_checkpoint=f.value_checkpoint.value,
    start_checkpoint=f.start_checkpoint.value,
    search=dict(vars(solver.config)),
    budgets=budgets,
    seeds=seeds,
    num_problems=len(images),
    solve_rate=evaluation.solve_rates(problems, budgets, seeds),
    problems=problems,
  )
  path = os.path.join(_SEARCH.out.value, f"{name}.json")
  # The results first: a failure to draw the figure keeps them.
  outs.write(
    os.path.join(out_dir, f"{name}.json"),
    lambda fh: json.dump(result, fh, indent=1),
    text=True,
  )
  outs.commit()
  try:
    figure = plot(_SEARCH.out.value, outs)
  except Exception as e:
    common.exit_with(f"cannot draw the figure ({e}); results in {path}", 1)
  for bud, r in result["solve_rate"].items():
    print(f"budget {bud}: solve rate {r['mean']:.3f} +- {r['std']:.3f}")
  print(json.dumps(dict(results=path, plot=figure)))


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags_or_exit)
