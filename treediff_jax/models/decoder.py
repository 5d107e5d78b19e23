"""Transformer decoder over program + edit tokens, attending to the image."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from treediff_jax.dsl.tokenizer import PAD
from treediff_jax.models.layers import block_stack, learned_positions


class TreeDecoder(nnx.Module):
  """Causal decoder: tokens [B, S] int32 + image tokens [B, P, D] ->
  next-token logits [B, S, V] float32 (position i predicts token i + 1)."""

  def __init__(
    self,
    vocab_size: int,
    max_len: int,
    width: int,
    depth: int,
    heads: int,
    mlp_ratio: int = 4,
    *,
    dtype=jnp.float32,
    param_dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    self.dtype = dtype
    self.embed = nnx.Embed(
      vocab_size, width, dtype=dtype, param_dtype=param_dtype, rngs=rngs
    )
    self.pos = learned_positions(rngs, max_len, width, param_dtype)
    self.blocks = block_stack(
      depth,
      width,
      heads,
      mlp_ratio,
      cross=True,
      dtype=dtype,
      param_dtype=param_dtype,
      rngs=rngs,
    )
    self.norm = nnx.LayerNorm(
      width, dtype=dtype, param_dtype=param_dtype, rngs=rngs
    )
    # Logits in float32 whatever the compute dtype.
    self.head = nnx.Linear(
      width, vocab_size, dtype=jnp.float32, param_dtype=param_dtype, rngs=rngs
    )

  def __call__(self, tokens: jnp.ndarray, memory: jnp.ndarray) -> jnp.ndarray:
    seq = tokens.shape[1]
    x = self.embed(tokens) + self.pos[...][:, :seq].astype(self.dtype)
    mask = nnx.combine_masks(
      nnx.make_causal_mask(tokens),
      nnx.make_attention_mask(tokens != PAD, tokens != PAD),
    )
    for block in self.blocks:
      x = block(x, mask=mask, memory=memory)
    return self.head(self.norm(x).astype(jnp.float32))  # [B, S, V]
