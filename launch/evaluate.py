"""Solve rate against nodes expanded on a test set, over several seeds.

  python -m launch.evaluate --method=tree_diffusion_search \
      --checkpoint=POLICY_WORKDIR [--value_checkpoint=VALUE_WORKDIR] \
      --testset=FILE.npz|PROGRAMS.txt|PNG_DIR --budgets=100,500,2000 \
      --seeds=5 --out=DIR

Writes DIR/METHOD.json: the solve rate at each node budget (mean and std
over seeds, and per seed) and, per problem and seed, whether it was solved,
the nodes used and the wall time (a batch's time shared evenly among its
problems; compilation excluded). Then draws DIR/solve_rate.png from every
METHOD.json in DIR.
"""

import json
import os
import sys
import time

from absl import app, flags

from launch import common
from launch.solve import build_method_or_exit, pad_batch  # also the flags

_TESTSET = flags.DEFINE_string("testset", None, "Test set file or folder.")
_BUDGETS = flags.DEFINE_string(
  "budgets", "100,500,2000", "Node budgets, comma-separated."
)
_SEEDS = flags.DEFINE_integer("seeds", 5, "Number of seeds.")
_LIMIT = flags.DEFINE_integer("limit", 0, "Use the first N problems (0: all).")

FLAGS = flags.FLAGS


def parse_budgets(text: str) -> list[int]:
  try:
    budgets = sorted({int(x) for x in text.split(",") if x.strip()})
  except ValueError:
    common.exit_with(f"--budgets must be integers, got {text!r}")
  if not budgets or budgets[0] < 1:
    common.exit_with("--budgets needs positive node counts")
  return budgets


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


def solve_rates(problems: list[dict], budgets, seeds) -> dict:
  """{budget: {mean, std, per_seed}} from per-problem records."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  out = {}
  for b in budgets:
    per_seed = []
    for s in seeds:
      rows = [p for p in problems if p["seed"] == s]
      per_seed.append(
        float(np.mean([p["solved"] and p["nodes"] <= b for p in rows]))
      )
    out[str(b)] = dict(
      mean=float(np.mean(per_seed)),
      std=float(np.std(per_seed)),
      per_seed=per_seed,
    )
  return out


def plot(out_dir: str) -> str:
  """Draws solve rate against nodes for every METHOD.json in `out_dir`."""
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

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
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def main(argv):
  del argv
  if not _TESTSET.value or not FLAGS.out:
    common.exit_with("--testset and --out are required")
  if _SEEDS.value < 1 or FLAGS.batch < 1:
    common.exit_with("--seeds and --batch must be >= 1")
  budgets = parse_budgets(_BUDGETS.value)
  common.check_seed(FLAGS.seed)
  parent = os.path.dirname(os.path.abspath(FLAGS.out))
  if not os.path.isdir(parent):
    common.exit_with(f"the folder above --out={FLAGS.out} does not exist")
  common.quiet_jax_logs()

  import numpy as np  # pylint: disable=g-import-not-at-top

  from treediff_jax import testsets  # pylint: disable=g-import-not-at-top
  from treediff_jax.dsl.languages import get_language  # pylint: disable=g-import-not-at-top
  from treediff_jax.dsl.tokenizer import Tokenizer  # pylint: disable=g-import-not-at-top

  method = build_method_or_exit(
    FLAGS.method,
    FLAGS.lang,
    FLAGS.checkpoint,
    FLAGS.value_checkpoint,
    budgets[-1],
  )
  try:
    ts = testsets.load_testset(method.lang, _TESTSET.value)
  except ValueError as e:
    common.exit_with(str(e))
  images = ts.images[: _LIMIT.value or None]
  tok = Tokenizer(get_language(method.lang))
  b = FLAGS.batch
  seeds = [FLAGS.seed + s for s in range(_SEEDS.value)]
  problems = []
  # Compile outside the timed calls (one untimed search of the first batch).
  [np.asarray(x) for x in method.solve(pad_batch(images[:b], b), key=0)]
  for seed in seeds:
    solved = 0
    progress(seed, 0, len(images), 0)
    for i in range(0, len(images), b):
      chunk = images[i : i + b]
      n = len(chunk)
      padded = pad_batch(chunk, b)
      t0 = time.perf_counter()
      r = method.solve(padded, key=seed * 1_000_003 + i)
      r = [np.asarray(x) for x in r]
      wall = (time.perf_counter() - t0) / n
      for j in range(n):
        problems.append(
          dict(
            seed=seed,
            index=i + j,
            name=ts.names[i + j],
            solved=bool(r[1][j]),
            nodes=int(r[2][j]),
            steps=int(r[3][j]),
            goal_value=float(r[4][j]) if np.isfinite(r[4][j]) else None,
            wall_s=wall,
            program=tok.decode_text(r[0][j]),
          )
        )
        solved += bool(r[1][j])
      progress(seed, i + n, len(images), solved)
  result = dict(
    method=method.name,
    lang=method.lang,
    testset=os.path.abspath(_TESTSET.value),
    checkpoint=FLAGS.checkpoint,
    value_checkpoint=FLAGS.value_checkpoint,
    start_checkpoint=FLAGS.start_checkpoint,
    search=dict(vars(method.config)),
    budgets=budgets,
    seeds=seeds,
    num_problems=len(images),
    solve_rate=solve_rates(problems, budgets, seeds),
    problems=problems,
  )
  os.makedirs(FLAGS.out, exist_ok=True)
  path = os.path.join(FLAGS.out, f"{method.name}.json")
  with open(path, "w") as f:
    json.dump(result, f, indent=1)
  figure = plot(FLAGS.out)
  for bud, r in result["solve_rate"].items():
    print(f"budget {bud}: solve rate {r['mean']:.3f} +- {r['std']:.3f}")
  print(json.dumps(dict(results=path, plot=figure)))


if __name__ == "__main__":
  app.run(main)
