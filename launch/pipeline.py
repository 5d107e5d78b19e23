"""The tiny end-to-end run: train, make a test set, evaluate, plot.

  python -m launch.pipeline --out=/tmp/treediff_tiny

On a 2-core CPU (about 20 minutes with the defaults, Rainbow): trains the
tiny policy (800 steps), value model (300) and autoregressive baseline
(400), samples an in-distribution test set (32 targets), evaluates tree
diffusion with and without search, the autoregressive baseline and hill
climbing at node budgets 50, 200 and 1000 over 2 seeds, and writes
OUT/eval/METHOD.json and OUT/eval/solve_rate.png. Each stage is one of the
launch commands (their command lines are printed); training resumes from
OUT/policy etc. if the run is repeated (a workdir trained with another
language or model is refused before any stage starts, as are outputs in
OUT that earlier runs did not write, unless --overwrite).

REPL Flow is a CSG2D baseline: add it with --lang=csg2d
--methods=tree_diffusion_search,tree_diffusion,ar,repl_flow,hill_climb (its
tiny policy trains --repl_steps steps into OUT/repl).
"""

import os
import subprocess
import sys

from absl import app, flags

from launch import common, outputs

_OUT = flags.DEFINE_string("out", "/tmp/treediff_tiny", "Output folder.")
_LANG = flags.DEFINE_string("lang", "rainbow", "Language.")
_POLICY_STEPS = flags.DEFINE_integer("policy_steps", 800, "Policy steps.")
_VALUE_STEPS = flags.DEFINE_integer("value_steps", 300, "Value steps.")
_AR_STEPS = flags.DEFINE_integer("ar_steps", 400, "Autoregressive steps.")
_REPL_STEPS = flags.DEFINE_integer("repl_steps", 800, "REPL Flow steps.")
_N = flags.DEFINE_integer("n", 32, "Test targets.")
_BUDGETS = flags.DEFINE_string("budgets", "50,200,1000", "Node budgets.")
_SEEDS = flags.DEFINE_integer("seeds", 2, "Seeds per method.")
_OVERWRITE = flags.DEFINE_bool(
  "overwrite",
  False,
  "Replace files in --out (testset.npz, eval/) that earlier runs did not "
  "write.",
)
_METHODS = flags.DEFINE_list(
  "methods",
  ["tree_diffusion_search", "tree_diffusion", "ar", "hill_climb"],
  "Methods to evaluate (treediff_jax/search/registry.py).",
)


def run(*args):
  cmd = [sys.executable, "-m", *args]
  print("+ python -m " + " ".join(args), flush=True)
  res = subprocess.run(cmd)
  if res.returncode != 0:
    common.exit_with(f"stage failed: python -m {' '.join(args)}")


def check_numbers():
  """Exits with one line on a count or budget out of range."""
  for flag in (_POLICY_STEPS, _VALUE_STEPS, _AR_STEPS, _REPL_STEPS, _N, _SEEDS):
    if flag.value < 1:
      common.exit_with(f"--{flag.name} must be >= 1, got {flag.value}")
  try:
    budgets = [int(x) for x in _BUDGETS.value.split(",") if x.strip()]
  except ValueError:
    common.exit_with(f"--budgets must be integers, got {_BUDGETS.value!r}")
  if not budgets or min(budgets) < 1:
    common.exit_with("--budgets needs positive node counts")


def check_workdirs(stages: list[tuple[str, str]]) -> None:
  """Exits with one line if a training workdir of `stages` ((config spec,
  workdir) pairs) is in use or was trained with another model (language,
  kind, size, ...), before any stage runs."""
  import json

  from treediff_jax import workdir as workdir_lib

  for spec, workdir in stages:
    config = common.load_config(spec)
    try:
      workdir_lib.check_resume(workdir, json.loads(config.to_json()))
      workdir_lib.check_unlocked(workdir)
    except workdir_lib.WorkdirError as e:
      common.exit_with(str(e))


def main(argv):
  del argv
  lang = common.language_or_exit(_LANG.value).name
  check_numbers()
  from treediff_jax.search import ranking, registry

  specs = []
  for name in _METHODS.value:
    if name not in registry.names():
      common.exit_with(
        f"--methods: unknown method {name!r}; choose from "
        f"{', '.join(registry.names())}"
      )
    spec = registry.get(name)
    if spec.languages and lang not in spec.languages:
      common.exit_with(
        f"--methods: {name} needs --lang={' or '.join(spec.languages)}, "
        f"not {lang}"
      )
    specs.append(spec)
  # Every stage's outputs are checked before the first stage starts.
  outs = outputs.Outputs(_OVERWRITE.value)
  out = outs.folder("--out", _OUT.value)
  testset = outs.claim("--out", out, "testset.npz")
  eval_outs = outputs.Outputs(_OVERWRITE.value)
  eval_dir = eval_outs.folder("--out", os.path.join(out, "eval"), parents=True)
  for spec in specs:
    eval_outs.claim("--out", eval_dir, f"{spec.name}.json")
  eval_outs.claim("--out", eval_dir, "solve_rate.png")
  configs = "treediff_jax/configs"
  # Each label mode's tiny training run: (config and arguments, workdir).
  training = {
    "path": (
      f"policy_tiny.py:lang={lang},steps={_POLICY_STEPS.value}",
      "policy",
    ),
    "whole_program": (
      f"ar_tiny.py:lang={lang},steps={_AR_STEPS.value}",
      "ar",
    ),
    "repl": (f"repl_flow_tiny.py:steps={_REPL_STEPS.value}", "repl"),
  }
  value_dir = os.path.join(out, "value")
  needs_value = any(
    s.takes_value and ranking.get(s.search.rank).uses_value for s in specs
  )
  stages = [
    (f"{configs}/{training[mode][0]}", os.path.join(out, training[mode][1]))
    for mode in dict.fromkeys(s.label_mode for s in specs if s.label_mode)
  ]
  if needs_value:
    stages.append(
      (
        f"{configs}/value_tiny.py:lang={lang},"
        f"steps={_VALUE_STEPS.value},batch=32",
        value_dir,
      )
    )
  check_workdirs(stages)
  os.makedirs(out, exist_ok=True)
  for config, workdir in stages:
    run("launch.train", f"--config={config}", f"--workdir={workdir}")
  run(
    "launch.make_testset",
    f"--lang={lang}",
    f"--n={_N.value}",
    "--seed=1234",
    f"--out={testset}",
    *(["--overwrite"] if outs.exists(testset) else []),
  )
  outputs.record(out, ["testset.npz"])
  for spec in specs:
    args = [
      f"--method={spec.name}",
      f"--lang={lang}",
      f"--testset={testset}",
      f"--budgets={_BUDGETS.value}",
      f"--seeds={_SEEDS.value}",
      "--batch=16",
      f"--out={os.path.join(out, 'eval')}",
    ]
    if spec.label_mode:
      workdir = training[spec.label_mode][1]
      args.append(f"--checkpoint={os.path.join(out, workdir)}")
    if spec.takes_value and ranking.get(spec.search.rank).uses_value:
      args.append(f"--value_checkpoint={value_dir}")
    if _OVERWRITE.value:
      args.append("--overwrite")
    run("launch.evaluate", *args)
  print(f"results in {os.path.join(out, 'eval')}")


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags_or_exit)
