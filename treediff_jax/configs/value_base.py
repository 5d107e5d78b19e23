"""Base value model (ViT encoder of the base policy size).

  python -m launch.train --config=treediff_jax/configs/value_base.py \
      --workdir=/tmp/td_value_base
"""

from treediff_jax.configs import common


def get_config(arg=None):
  a = common.parse_arg(arg, lang="csg2d", steps=100000, batch=32)
  c = common.value_config(a.lang, "base", a.batch, a.steps)
  c.input.num_workers = 8
  c.ckpt.every = 1000
  c.evals.every = 1000
  return c
