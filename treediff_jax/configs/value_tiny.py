"""Tiny value model on CSG2D: predicts the edits left to the target.

  python -m launch.train --config=treediff_jax/configs/value_tiny.py \
      --workdir=/tmp/td_value_tiny

Expected: the validation MAE of the predicted steps left falls below that
of the step-0 model within a few hundred steps.
"""

from treediff_jax.configs import common


def get_config(arg=None):
  a = common.parse_arg(arg, lang="csg2d", steps=400, batch=16)
  c = common.value_config(a.lang, "tiny", a.batch, a.steps)
  c.optim.lr = 1e-3
  c.optim.warmup_steps = 20
  c.evals.num_examples = 64
  return c
