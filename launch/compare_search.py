"""Solve rates of several search settings of one method, in one process:
how the default search of `tree_diffusion_search` is chosen (on
validation targets only).

  python -m launch.compare_search --lang=csg2d --testset=VAL.npz \
      --settings="beam=4,k=48,rank=goal;beam=64,k=3,rank=log_prob" \
      --budgets=100,250,500 --seeds=2 --out=RESULTS.json

Each setting (semicolon-separated; `name=value` pairs of SearchConfig
fields, `method=...` to compare another method) is built as
`launch.solve` builds it (shipped weights for --lang unless --checkpoint /
--value_checkpoint are given) and run over the test set and seeds; OUT
gets one entry per setting with its solve rate at each budget (mean, std,
per seed) and the mean wall-clock per problem.
"""

import json
import os

from absl import app, flags

from launch import common

_LANG = flags.DEFINE_string("lang", "csg2d", "Language.")
_METHOD = flags.DEFINE_string(
  "method", "tree_diffusion_search", "Method of settings without method=."
)
_CKPT = flags.DEFINE_string("checkpoint", None, "Policy (default: shipped).")
_VALUE = flags.DEFINE_string(
  "value_checkpoint", None, "Value model (default: shipped, if any)."
)
_TESTSET = flags.DEFINE_string("testset", None, "Validation set (.npz).")
_SETTINGS = flags.DEFINE_string("settings", None, "Settings; see above.")
_BUDGETS = flags.DEFINE_string("budgets", "100,250,500", "Node budgets.")
_SEEDS = flags.DEFINE_integer("seeds", 2, "Seeds per setting.")
_LIMIT = flags.DEFINE_integer("limit", 0, "Use the first N problems (0: all).")
_BATCH = flags.DEFINE_integer("batch", 16, "Targets searched together.")
_OUT = flags.DEFINE_string("out", None, "Output JSON file.")

_TYPES = dict(
  beam=int,
  k=int,
  max_steps=int,
  history=int,
  rank=str,
  value_weight=float,
  log_prob_weight=float,
  uniform_share=float,
  temperature=float,
  method=str,
)


def parse_settings(text: str) -> list[dict]:
  """ "beam=4,k=48;rank=goal" -> [{beam: 4, k: 48}, {rank: goal}]; exits
  on an unknown field or a bad value."""
  out = []
  for part in filter(None, (p.strip() for p in text.split(";"))):
    setting = {}
    for item in filter(None, part.split(",")):
      key, _, value = item.partition("=")
      if key not in _TYPES:
        common.exit_with(
          f"--settings: unknown field {key!r}; known: {', '.join(_TYPES)}"
        )
      try:
        setting[key] = _TYPES[key](value)
      except ValueError:
        common.exit_with(f"--settings: bad value {item!r}")
    out.append(setting)
  if not out:
    common.exit_with("--settings names no setting")
  return out


def _mean(xs) -> float | None:
  return float(sum(xs) / len(xs)) if xs else None


def label(setting: dict) -> str:
  return ",".join(f"{k}={v}" for k, v in setting.items()) or "default"


def main(argv):
  del argv
  if not _TESTSET.value or not _OUT.value or not _SETTINGS.value:
    common.exit_with("--testset, --settings and --out are required")
  settings = parse_settings(_SETTINGS.value)
  budgets = sorted(int(b) for b in _BUDGETS.value.split(","))
  if budgets[0] < 1 or _SEEDS.value < 1 or _BATCH.value < 1:
    common.exit_with("--budgets, --seeds and --batch must be positive")
  if not os.path.isdir(os.path.dirname(os.path.abspath(_OUT.value))):
    common.exit_with(f"the folder above --out={_OUT.value} does not exist")
  common.quiet_jax_logs()
  import numpy as np

  from treediff_jax import checkpointing, evaluation, testsets
  from treediff_jax.search import methods

  results = []
  ts = None
  for setting in settings:
    fields = dict(setting)
    method = fields.pop("method", _METHOD.value)
    model_free = method == "hill_climb"
    try:
      solver = methods.build(
        method,
        lang=_LANG.value,
        checkpoint=None if model_free else _CKPT.value,
        value_checkpoint=None if model_free else _VALUE.value,
        max_nodes=budgets[-1],
        **fields,
      )
    except (ValueError, checkpointing.CheckpointNotFoundError) as e:
      common.exit_with(f"{label(setting)}: {e}")
    if ts is None:
      ts = testsets.load_testset(solver.lang, _TESTSET.value)
    images = ts.images[: _LIMIT.value or None]
    seeds = list(range(_SEEDS.value))
    problems = evaluation.run_solver(
      solver, images, ts.names, seeds, _BATCH.value
    )
    rates = evaluation.solve_rates(problems, budgets, seeds)
    entry = dict(
      setting=label(setting),
      method=method,
      search=dict(vars(solver.config)),
      solve_rate=rates,
      wall_s_per_problem=float(np.mean([p["wall_s"] for p in problems])),
      # Whether depth (max_steps) or the node budget ended unsolved runs.
      unsolved_mean_steps=_mean(
        [p["steps"] for p in problems if not p["solved"]]
      ),
      unsolved_mean_nodes=_mean(
        [p["nodes"] for p in problems if not p["solved"]]
      ),
      # Graded goal value of the closest program found within the largest
      # budget: a finer signal than the solve rate on a few targets.
      mean_goal_value=_mean(
        [p["goal_value"] for p in problems if p["goal_value"] is not None]
      ),
    )
    results.append(entry)
    print(
      f"{label(setting):60s} "
      + " ".join(f"{b}:{r['mean']:.3f}" for b, r in rates.items())
      + f" goal:{entry['mean_goal_value']:.3f}",
      flush=True,
    )
    with open(_OUT.value, "w") as f:
      json.dump(
        dict(
          lang=solver.lang,
          testset=os.path.abspath(_TESTSET.value),
          num_problems=len(images),
          checkpoint=_CKPT.value,
          value_checkpoint=_VALUE.value,
          budgets=budgets,
          results=results,
        ),
        f,
        indent=1,
      )


if __name__ == "__main__":
  app.run(main)
