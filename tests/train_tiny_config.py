"""Config for trainer tests: the tiny policy on Rainbow, checkpoints every
5 steps, no evaluation. `sorted=1` deals batches out by sequence length in
chunks of 4 and trims them (otherwise one full-length shape, which keeps
these short runs to one compiled step)."""

from treediff_jax.configs import common


def get_config(arg=None):
  a = common.parse_arg(arg, steps=30, sorted=False)
  c = common.policy_config("rainbow", "tiny", 8, a.steps)
  c.input.num_workers = 1
  c.optim.lr = 1e-3
  c.optim.warmup_steps = 2
  c.ckpt.every = 5
  c.evals.every = 0
  c.log_every = 5
  if not a.sorted:
    return common.full_length_sequences(c)
  c.input.sort_chunk, c.input.length_bucket = 4, 16
  return c
