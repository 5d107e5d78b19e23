"""The shipped CSG2D policy: the small model with the conv stem, trained
on a 2-core CPU.

  python -m launch.train --config=treediff_jax/configs/policy_csg2d.py \
      --workdir=/root/runs/policy_csg2d

The recipe (RESULTS.md): small (2 x 128 encoder blocks over a 4-layer
stride-2 convolutional stem, 3 x 128 decoder blocks), batch 32, AdamW lr
1e-3 after 200 warmup steps, cosine decay over 6,500 steps (208,000
examples), length-sorted chunks of 8 batches. About 50 examples/s on a
2-core CPU, so about 70 minutes; a stopped run resumes from its last
checkpoint (every 250 steps). Overrides: `:steps=...,batch=...,stem=...,
spatial` (program tokens see the image under their primitive), `boxes`
(and fixed statistics of the images in its box).
"""

from treediff_jax.configs import common


def get_config(arg=None):
  a = common.parse_arg(
    arg,
    steps=6500,
    batch=32,
    lr=1e-3,
    stem="conv",
    spatial=False,
    boxes=False,
  )
  c = common.policy_config("csg2d", "small", a.batch, a.steps)
  c.model.stem = a.stem
  c.model.spatial = a.spatial or a.boxes
  c.model.box_features = a.boxes
  c.input.num_workers = 2
  c.optim.lr = a.lr
  c.optim.warmup_steps = 200
  c.ckpt.every = 250
  c.ckpt.keep = 4
  c.evals.every = 500
  c.evals.num_examples = 64
  c.log_every = 50
  return c
