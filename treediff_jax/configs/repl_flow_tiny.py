"""Tiny REPL Flow baseline (CSG2D): the policy's encoder and decoder trained
to place the next primitive of the target's in-order sequence, seeing the
render of the ones placed so far.

  python -m launch.train --config=treediff_jax/configs/repl_flow_tiny.py \
      --workdir=/tmp/td_repl_tiny
  python -m launch.evaluate --method=repl_flow --checkpoint=/tmp/td_repl_tiny

Each example takes a sampled target (2..8 primitives), its first j in-order
primitives as the current program (left-nested, so it renders as the first
j steps of the fold; empty for j = 0) and labels `<SOS> <POS 0> op
primitive <EOS>` for primitive j + 1. The solver samples such steps under
the grammar mask in a beam search (search/repl.py). The logged one-step goal
rate is the share of greedy steps whose program renders as the target's
program one primitive further.
"""

from treediff_jax.configs import common


def get_config(arg=None):
  a = common.parse_arg(arg, lang="csg2d", steps=800, batch=32, size="tiny")
  c = common.policy_config(a.lang, a.size, a.batch, a.steps)
  c.input.label_mode = "repl"
  c.input.rho = 0.0
  return common.quick_cpu_run(c)
