"""Cached autoregressive decoding of edits with the policy's decoder.

`prefill` runs the decoder once over the program tokens and keeps every
layer's self-attention keys and values (and the cross-attention keys and
values of the image tokens); `step` then feeds one token per row at a
per-row position, so rows whose programs have different lengths decode
together. The logits equal those of the full `TreeDecoder` forward pass on
the same sequence (tested), at a fraction of the cost.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from treediff_jax.dsl.tokenizer import PAD
from treediff_jax.models.decoder import TreeDecoder


class DecoderCache(NamedTuple):
  """Keys and values of every decoder layer, one tuple entry per layer.

  key, value: [B, S, H, Dh] self-attention keys/values at sequence slots.
  cross_key, cross_value: [B, P, H, Dh] of the image tokens.
  """

  key: tuple
  value: tuple
  cross_key: tuple
  cross_value: tuple


def _attend(attn: nnx.MultiHeadAttention, q, k, v, mask):
  x = attn.attention_fn(q, k, v, mask=mask, dtype=attn.dtype)
  return attn.out(x)


def prefill(
  decoder: TreeDecoder, tokens: jnp.ndarray, memory: jnp.ndarray, length: int
) -> DecoderCache:
  """Runs the decoder over program tokens and caches keys and values.

  Args:
    decoder: the policy's decoder.
    tokens: [B, Lp] int32 program tokens then <PAD>.
    memory: [B, P, D] image tokens from the encoder.
    length: slots of the cache (static), at least Lp plus the edit.

  Returns:
    A DecoderCache with slots [0, Lp) filled.
  """
  b, lp = tokens.shape
  x = decoder.embed(tokens) + decoder.pos[...][:, :lp].astype(decoder.dtype)
  mask = nnx.combine_masks(
    nnx.make_causal_mask(tokens),
    nnx.make_attention_mask(tokens != PAD, tokens != PAD),
  )
  keys, values, ckeys, cvalues = [], [], [], []
  for block in decoder.blocks:
    attn = block.attn
    h = block.norm1(x)
    q, k, v = attn.query(h), attn.key(h), attn.value(h)
    x = x + _attend(attn, q, k, v, mask)
    pad = ((0, 0), (0, length - lp), (0, 0), (0, 0))
    keys.append(jnp.pad(k, pad))
    values.append(jnp.pad(v, pad))
    cross = block.cross
    ck, cv = cross.key(memory), cross.value(memory)
    ckeys.append(ck)
    cvalues.append(cv)
    h = block.norm_c(x)
    x = x + _attend(cross, cross.query(h), ck, cv, None)
    x = x + block.mlp(block.norm2(x))
  del b
  return DecoderCache(tuple(keys), tuple(values), tuple(ckeys), tuple(cvalues))


def step(
  decoder: TreeDecoder,
  cache: DecoderCache,
  token: jnp.ndarray,
  index: jnp.ndarray,
) -> tuple[jnp.ndarray, DecoderCache]:
  """Feeds one token per row at its own sequence slot.

  Args:
    decoder: the policy's decoder.
    cache: from `prefill` (and earlier steps); every slot before `index`
      of a row must hold that row's tokens.
    token: [B] int32 token at slot `index`.
    index: [B] int32 slot of each row's token.

  Returns:
    logits [B, V] float32 for the token at `index + 1`, and the cache.
  """
  rows = jnp.arange(token.shape[0])
  pos = decoder.pos[...][0, index].astype(decoder.dtype)  # [B, D]
  x = (decoder.embed(token) + pos)[:, None]  # [B, 1, D]
  slots = cache.key[0].shape[1]
  mask = (jnp.arange(slots)[None, :] <= index[:, None])[:, None, None, :]
  keys, values = [], []
  for i, block in enumerate(decoder.blocks):
    attn = block.attn
    h = block.norm1(x)
    q, k, v = attn.query(h), attn.key(h), attn.value(h)
    kc = cache.key[i].at[rows, index].set(k[:, 0])
    vc = cache.value[i].at[rows, index].set(v[:, 0])
    keys.append(kc)
    values.append(vc)
    x = x + _attend(attn, q, kc, vc, mask)
    cross = block.cross
    h = block.norm_c(x)
    x = x + _attend(
      cross, cross.query(h), cache.cross_key[i], cache.cross_value[i], None
    )
    x = x + block.mlp(block.norm2(x))
  logits = decoder.head(decoder.norm(x).astype(jnp.float32))[:, 0]
  new = cache._replace(key=tuple(keys), value=tuple(values))
  return logits, new


def repeat_rows(cache: DecoderCache, k: int) -> DecoderCache:
  """Each row of the cache `k` times in a row: B rows -> B * k rows."""
  return jax.tree.map(lambda a: jnp.repeat(a, k, axis=0), cache)
