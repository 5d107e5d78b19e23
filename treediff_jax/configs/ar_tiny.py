"""Tiny autoregressive (CSGNet-style) baseline: the policy's encoder and
decoder trained to emit the whole program from the target image alone.

  python -m launch.train --config=treediff_jax/configs/ar_tiny.py \
      --workdir=/tmp/td_ar_tiny
  python -m launch.evaluate --method=ar --checkpoint=/tmp/td_ar_tiny ...

Each example is `<SOS> <POS 0> program <EOS>` for a sampled target (2..8
primitives) with a blank current image; the solver samples whole programs
under the grammar mask until one meets the goal (rejection sampling). The
logged one-step goal rate is, here, the share of greedily decoded programs
that meet their target.
"""

from treediff_jax.configs import common


def get_config(arg=None):
  a = common.parse_arg(arg, lang="rainbow", steps=800, batch=32, size="tiny")
  c = common.policy_config(a.lang, a.size, a.batch, a.steps)
  c.input.label_mode = "whole_program"
  c.input.blank_current = True
  c.input.rho = 0.0
  return common.quick_cpu_run(c)
