"""The policy: predicts the next token of an edit from two images."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from treediff_jax.models.config import ModelConfig
from treediff_jax.models.decoder import TreeDecoder
from treediff_jax.models.spatial import ImageTokens, cell_tables
from treediff_jax.models.vit import ViTEncoder


class PolicyModel(nnx.Module):
  """Predicts the next token of an edit.

  __call__(target [B, H, W, C], current [B, H, W, C] float32 in [0, 1],
  tokens [B, S] int32) -> logits [B, S, V] float32, where position i
  predicts token i + 1 of the edit sequence (S <= config.max_len). Cached
  decoding goes through `decoder` (`TreeDecoder.prefill`, `decode_step`)
  on image tokens from `encode` / `encode_many`. A `config.blank_current`
  model replaces every current image by zeros. A `config.box_features`
  model's image tokens are an `ImageTokens` (tokens and summed-area
  tables of the images); index them with `jax.tree.map`.
  """

  def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
    self.config = config
    self.encoder = ViTEncoder.from_config(config, rngs=rngs)
    self.decoder = TreeDecoder.from_config(config, rngs=rngs)

  def encode(self, target: jnp.ndarray, current: jnp.ndarray):
    """Image tokens [B, P, D] (compute dtype) of target, current [B, H, W,
    C] float32 (an ImageTokens for box-feature models)."""
    return jax.tree.map(
      lambda m: m[:, 0], self.encode_many(target, current[:, None])
    )

  def encode_many(
    self, target: jnp.ndarray, current: jnp.ndarray
  ) -> jnp.ndarray:
    """Image tokens [B, N, P, D] (compute dtype) of N current images
    [B, N, H, W, C] float32 per target [B, H, W, C] (the target's share
    computed once); for box-feature models an ImageTokens whose cells are
    [B, N, G + 1, G + 1, 3] float32."""
    current = self.config.seen_current(current)
    tokens = self.encoder.encode_pair(target, current)
    if not self.config.box_features:
      return tokens
    cells = cell_tables(target[:, None], current, self.config.unit_px)
    return ImageTokens(tokens, cells)

  def __call__(
    self, target: jnp.ndarray, current: jnp.ndarray, tokens: jnp.ndarray
  ) -> jnp.ndarray:
    return self.decoder(tokens, self.encode(target, current))
