"""The tiny end-to-end run: train, make a test set, evaluate, plot.

  python -m launch.pipeline --out=/tmp/treediff_tiny

On a 2-core CPU (about 20 minutes with the defaults, Rainbow): trains the
tiny policy (800 steps), value model (300) and autoregressive baseline
(400), samples an in-distribution test set (32 targets), evaluates tree
diffusion with and without search, the autoregressive baseline and hill
climbing at node budgets 50, 200 and 1000 over 2 seeds, and writes
OUT/eval/METHOD.json and OUT/eval/solve_rate.png. Each stage is one of the
launch commands (their command lines are printed); training resumes from
OUT/policy etc. if the run is repeated.

REPL Flow is a CSG2D baseline: add it with --lang=csg2d
--methods=tree_diffusion_search,tree_diffusion,ar,repl_flow,hill_climb (its
tiny policy trains --repl_steps steps into OUT/repl).
"""

import os
import subprocess
import sys

from absl import app, flags

from launch import common

_OUT = flags.DEFINE_string("out", "/tmp/treediff_tiny", "Output folder.")
_LANG = flags.DEFINE_string("lang", "rainbow", "Language.")
_POLICY_STEPS = flags.DEFINE_integer("policy_steps", 800, "Policy steps.")
_VALUE_STEPS = flags.DEFINE_integer("value_steps", 300, "Value steps.")
_AR_STEPS = flags.DEFINE_integer("ar_steps", 400, "Autoregressive steps.")
_REPL_STEPS = flags.DEFINE_integer("repl_steps", 800, "REPL Flow steps.")
_N = flags.DEFINE_integer("n", 32, "Test targets.")
_BUDGETS = flags.DEFINE_string("budgets", "50,200,1000", "Node budgets.")
_SEEDS = flags.DEFINE_integer("seeds", 2, "Seeds per method.")
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


def main(argv):
  del argv
  lang = common.language_or_exit(_LANG.value).name
  parent = os.path.dirname(os.path.abspath(_OUT.value))
  if not os.path.isdir(parent):
    common.exit_with(f"the folder above --out={_OUT.value} does not exist")
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
  out = os.path.abspath(_OUT.value)
  os.makedirs(out, exist_ok=True)
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
  for mode in dict.fromkeys(s.label_mode for s in specs if s.label_mode):
    config, workdir = training[mode]
    run(
      "launch.train",
      f"--config={configs}/{config}",
      f"--workdir={os.path.join(out, workdir)}",
    )
  if needs_value:
    run(
      "launch.train",
      f"--config={configs}/value_tiny.py:lang={lang},"
      f"steps={_VALUE_STEPS.value},batch=32",
      f"--workdir={value_dir}",
    )
  testset = os.path.join(out, "testset.npz")
  run(
    "launch.make_testset",
    f"--lang={lang}",
    f"--n={_N.value}",
    "--seed=1234",
    f"--out={testset}",
  )
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
    run("launch.evaluate", *args)
  print(f"results in {os.path.join(out, 'eval')}")


if __name__ == "__main__":
  app.run(main)
