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
    return self.forward(x, mask, memory)[0]

  def forward(self, x, mask=None, memory=None):
    """The block over all positions, and the keys and values it used.

    Args:
      x: [B, S, D].
      mask: optional [B, 1, S, S] bool self-attention mask.
      memory: [B, P, D] (blocks with cross-attention).

    Returns:
      (x [B, S, D], (key, value [B, S, H, Dh], cross_key, cross_value
      [B, P, H, Dh] or None without cross-attention)).
    """
    q, k, v = self.self_qkv(x)
    x = self.add_self(x, attend(self.attn, q, k, v, mask))
    ck = cv = None
    if self.has_cross:
      ck, cv = self.cross_kv(memory)
      x = self.add_cross(x, attend(self.cross, self.cross_query(x), ck, cv))
    return self.add_mlp(x), (k, v, ck, cv)

  # The pieces of `forward`, shared with cached decoding. Heads are laid
  # out [..., H, Dh] after the leading axes of the input.

  def self_qkv(self, x):
    """Self-attention query, key, value [..., S, H, Dh] of x [..., S, D]."""
    h = self.norm1(x)
    return self.attn.query(h), self.attn.key(h), self.attn.value(h)

  def add_self(self, x, heads):
    """x [..., D] plus the self-attention output of heads [..., H, Dh]."""
    return x + self.attn.out(heads)

  def cross_query(self, x):
    """Cross-attention query [..., H, Dh] of x [..., D]."""
    return self.cross.query(self.norm_c(x))

  def cross_kv(self, memory):
    """Cross-attention key, value [B, P, H, Dh] of memory [B, P, D]."""
    return self.cross.key(memory), self.cross.value(memory)

  def add_cross(self, x, heads):
    """x [..., D] plus the cross-attention output of heads [..., H, Dh]."""
    return x + self.cross.out(heads)

  def add_mlp(self, x):
    """x [..., D] plus the MLP of its normed self."""
    return x + self.mlp(self.norm2(x))


def attend(attn: nnx.MultiHeadAttention, q, k, v, mask=None):
  """`attn`'s attention function as `attn.__call__` applies it (no dropout):
  q [B, S, H, Dh], k, v [B, T, H, Dh], mask [B, 1, S, T] -> [B, S, H, Dh]."""
  return attn.attention_fn(
    q,
    k,
    v,
    mask=mask,
    deterministic=True,
    dtype=attn.dtype,
    precision=attn.precision,
  )


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
