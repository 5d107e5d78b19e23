"""Tiny policy: a few minutes on a laptop CPU.

  python -m launch.train --config=treediff_jax/configs/policy_tiny.py \
      --workdir=/tmp/td_tiny

The default is Rainbow, the language where a tiny model learns to undo a
mutation within minutes; overrides follow a colon, e.g.
`policy_tiny.py:lang=csg2d,steps=400,batch=16`.

Expected on a 2-core CPU (default: Rainbow, batch 32, 800 steps, about 3
minutes at 150 examples/s): the loss falls from about 3 to 0.6-0.9 and the
validation one-step goal rate (32 once-mutated targets) rises from 0 to
0.09 at step 300 and 0.16-0.19 at steps 500-700. On CSG2D (about 70
examples/s at batch 16), 400 steps take the loss from 4.4 to about 1.5 and
the position accuracy to about 0.2, while the one-step goal rate (an exact
edit: the position and every number) stays near 0: it needs a longer run.
"""

from treediff_jax.configs import common


def get_config(arg=None):
  a = common.parse_arg(
    arg,
    lang="rainbow",
    steps=800,
    batch=32,
    sketch=False,
    rho=0.2,
    blank_current=False,
  )
  c = common.policy_config(a.lang, "tiny", a.batch, a.steps)
  c.input.sketch = a.sketch
  c.input.rho = a.rho
  c.input.blank_current = a.blank_current
  return common.quick_cpu_run(c)
