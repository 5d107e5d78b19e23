"""Transformer building blocks shared by the encoder and the decoder."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx


class MlpBlock(nnx.Module):
  """Position-wise feed-forward: [..., D] -> [..., D]."""

  def __init__(
    self, width: int, hidden: int, *, dtype, param_dtype, rngs: nnx.Rngs
  ):
    self.up = nnx.Linear(
      width, hidden, dtype=dtype, param_dtype=param_dtype, rngs=rngs
    )
    self.down = nnx.Linear(
      hidden, width, dtype=dtype, param_dtype=param_dtype, rngs=rngs
    )

  def __call__(self, x):
    return self.down(nnx.gelu(self.up(x)))


class Block(nnx.Module):
  """Pre-norm transformer block: self-attention, optional cross-attention to
  a memory, and an MLP. x [B, S, D] -> [B, S, D]."""

  def __init__(
    self,
    width: int,
    heads: int,
    mlp_ratio: int,
    *,
    cross: bool = False,
    dtype=jnp.float32,
    param_dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.norm1 = nnx.LayerNorm(width, **kw)
    self.attn = nnx.MultiHeadAttention(heads, width, decode=False, **kw)
    self.has_cross = cross
    if cross:
      self.norm_c = nnx.LayerNorm(width, **kw)
      self.cross = nnx.MultiHeadAttention(heads, width, decode=False, **kw)
    self.norm2 = nnx.LayerNorm(width, **kw)
    self.mlp = MlpBlock(
      width, width * mlp_ratio, dtype=dtype, param_dtype=param_dtype, rngs=rngs
    )

  def __call__(self, x, mask=None, memory=None):
    h = self.norm1(x)
    x = x + self.attn(h, h, h, mask=mask, deterministic=True)
    if self.has_cross:
      h = self.norm_c(x)
      x = x + self.cross(h, memory, memory, deterministic=True)
    return x + self.mlp(self.norm2(x))


def learned_positions(
  rngs: nnx.Rngs, length: int, width: int, param_dtype
) -> nnx.Param:
  """A [1, length, width] learned position embedding, N(0, 0.02) init."""
  init = nnx.initializers.normal(stddev=0.02)
  return nnx.Param(init(rngs.params(), (1, length, width), param_dtype))


def block_stack(
  depth: int,
  width: int,
  heads: int,
  mlp_ratio: int,
  *,
  cross: bool = False,
  dtype,
  param_dtype,
  rngs: nnx.Rngs,
) -> nnx.List:
  """`depth` transformer blocks (with cross-attention when `cross`)."""
  return nnx.List(
    [
      Block(
        width,
        heads,
        mlp_ratio,
        cross=cross,
        dtype=dtype,
        param_dtype=param_dtype,
        rngs=rngs,
      )
      for _ in range(depth)
    ]
  )
