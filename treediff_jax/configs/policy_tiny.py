"""Tiny policy on CSG2D: a few minutes on a laptop CPU.

  python -m launch.train --config=treediff_jax/configs/policy_tiny.py \
      --workdir=/tmp/td_tiny

Overrides after a colon, e.g. `policy_tiny.py:lang=rainbow,steps=300`.
Expected: the loss falls from about 3.5 and the one-step goal rate on the
validation set rises above its value at step 0 within a few hundred steps.
"""

from treediff_jax.configs import common


def get_config(arg=None):
  a = common.parse_arg(
    arg,
    lang="csg2d",
    steps=400,
    batch=16,
    sketch=False,
    rho=0.2,
    blank_current=False,
  )
  c = common.policy_config(a.lang, "tiny", a.batch, a.steps)
  c.input.num_workers = 2
  c.input.sketch = a.sketch
  c.input.rho = a.rho
  c.input.blank_current = a.blank_current
  c.optim.lr = 1e-3
  c.optim.warmup_steps = 20
  c.ckpt.every = 100
  c.evals.every = 100
  c.evals.num_examples = 32
  return c
