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
  "Methods to evaluate.",
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
  for name in _METHODS.value:
    if name not in (
      "tree_diffusion_search",
      "tree_diffusion",
      "ar",
      "repl_flow",
      "hill_climb",
    ):
      common.exit_with(f"--methods: unknown or unavailable method {name!r}")
  if "repl_flow" in _METHODS.value and lang != "csg2d":
    common.exit_with(f"--methods: repl_flow needs --lang=csg2d, not {lang}")
  out = os.path.abspath(_OUT.value)
  os.makedirs(out, exist_ok=True)
  configs = "treediff_jax/configs"
  policy, value, ar, repl = (
    os.path.join(out, d) for d in ("policy", "value", "ar", "repl")
  )
  methods = _METHODS.value
  if {"tree_diffusion_search", "tree_diffusion"} & set(methods):
    run(
      "launch.train",
      f"--config={configs}/policy_tiny.py:lang={lang},"
      f"steps={_POLICY_STEPS.value}",
      f"--workdir={policy}",
    )
  if "tree_diffusion_search" in methods:
    run(
      "launch.train",
      f"--config={configs}/value_tiny.py:lang={lang},"
      f"steps={_VALUE_STEPS.value},batch=32",
      f"--workdir={value}",
    )
  if "ar" in methods:
    run(
      "launch.train",
      f"--config={configs}/ar_tiny.py:lang={lang},steps={_AR_STEPS.value}",
      f"--workdir={ar}",
    )
  if "repl_flow" in methods:
    run(
      "launch.train",
      f"--config={configs}/repl_flow_tiny.py:steps={_REPL_STEPS.value}",
      f"--workdir={repl}",
    )
  testset = os.path.join(out, "testset.npz")
  run(
    "launch.make_testset",
    f"--lang={lang}",
    f"--n={_N.value}",
    "--seed=1234",
    f"--out={testset}",
  )
  for method in methods:
    args = [
      f"--method={method}",
      f"--lang={lang}",
      f"--testset={testset}",
      f"--budgets={_BUDGETS.value}",
      f"--seeds={_SEEDS.value}",
      "--batch=16",
      f"--out={os.path.join(out, 'eval')}",
    ]
    if method == "ar":
      args.append(f"--checkpoint={ar}")
    elif method == "repl_flow":
      args.append(f"--checkpoint={repl}")
    elif method != "hill_climb":
      args.append(f"--checkpoint={policy}")
    if method == "tree_diffusion_search":
      args.append(f"--value_checkpoint={value}")
    run("launch.evaluate", *args)
  print(f"results in {os.path.join(out, 'eval')}")


if __name__ == "__main__":
  app.run(main)
