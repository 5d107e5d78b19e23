"""Base policy (8 x 256 decoder, 16 heads; the reference's size).

  python -m launch.train --config=treediff_jax/configs/policy_base.py \
      --workdir=/tmp/td_base

Needs an accelerator for useful runs; `:lang=tinysvg` etc. select others.
"""

from treediff_jax.configs import common


def get_config(arg=None):
  a = common.parse_arg(arg, lang="csg2d", steps=100000, batch=32, sketch=False)
  c = common.policy_config(a.lang, "base", a.batch, a.steps)
  c.input.sketch = a.sketch
  c.input.num_workers = 8
  c.ckpt.every = 1000
  c.evals.every = 1000
  return c
