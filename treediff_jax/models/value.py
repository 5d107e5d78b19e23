"""The value model: predicts the number of edits left from two images."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from treediff_jax.models.config import ModelConfig
from treediff_jax.models.vit import ViTEncoder


class ValueModel(nnx.Module):
  """Predicts the number of edits left: (target, current) [B, H, W, C]
  float32 -> [B] float32. A `config.blank_current` model replaces every
  current image by zeros."""

  def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
    self.config = config
    self.encoder = ViTEncoder.from_config(config, rngs=rngs)
    kw = dict(dtype=config.compute_dtype, param_dtype=jnp.float32, rngs=rngs)
    self.hidden = nnx.Linear(config.width, config.width, **kw)
    self.out = nnx.Linear(config.width, 1, **kw)

  def __call__(self, target: jnp.ndarray, current: jnp.ndarray) -> jnp.ndarray:
    return self.score(target, current[:, None])[:, 0]

  def score(self, target: jnp.ndarray, current: jnp.ndarray) -> jnp.ndarray:
    """Edits left [B, N] float32 for N current images [B, N, H, W, C]
    float32 per target [B, H, W, C]."""
    current = self.config.seen_current(current)
    x = self.encoder.encode_pair(target, current).mean(axis=2)  # [B, N, D]
    return self.out(nnx.gelu(self.hidden(x)))[..., 0].astype(jnp.float32)
