"""Cached autoregressive decoding of edits with the policy's decoder.

`prefill` runs the decoder once over each program and keeps every layer's
self-attention keys and values (and the cross-attention keys and values of
the image tokens): the prefix cache, shared by the k edits sampled for that
program. `step` then feeds one token to each of the k edits of every program
at once: the edits' own keys and values go to a small edit cache, and the
queries attend to the shared prefix and to their edit so far. Programs of
different lengths decode together: the edit token at edit slot j of a
program of n tokens sits at sequence position n + j. The logits equal those
of the full `TreeDecoder` forward pass on the same sequence (tested).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from treediff_jax.dsl.tokenizer import PAD
from treediff_jax.models.decoder import TreeDecoder

NEG = -1e30


class PrefixCache(NamedTuple):
  """Per layer (tuples): key [R, H, Dh, Lp] and value [R, H, Lp, Dh] of the
  program tokens, cross_key [R, H, Dh, P] and cross_value [R, H, P, Dh] of
  the image tokens (laid out for batched matmuls over (R, H)). length [R]
  int32: program tokens of each row."""

  key: tuple
  value: tuple
  cross_key: tuple
  cross_value: tuple
  length: jnp.ndarray


class EditCache(NamedTuple):
  """Per layer (tuples): key, value [R, H, k, E, Dh] of the edit tokens fed
  so far (slot j of [r, :, i] is token j of edit i of program r)."""

  key: tuple
  value: tuple


def _prefill_full(decoder: TreeDecoder, tokens, memory) -> PrefixCache:
  lp = tokens.shape[1]
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
    x = x + attn.out(attn.attention_fn(q, k, v, mask=mask, dtype=attn.dtype))
    keys.append(jnp.transpose(k, (0, 2, 3, 1)))  # [R, H, Dh, Lp]
    values.append(jnp.transpose(v, (0, 2, 1, 3)))  # [R, H, Lp, Dh]
    cross = block.cross
    ck, cv = cross.key(memory), cross.value(memory)
    ckeys.append(jnp.transpose(ck, (0, 2, 3, 1)))  # [R, H, Dh, P]
    cvalues.append(jnp.transpose(cv, (0, 2, 1, 3)))  # [R, H, P, Dh]
    h = block.norm_c(x)
    y = cross.attention_fn(cross.query(h), ck, cv, dtype=cross.dtype)
    x = x + cross.out(y)
    x = x + block.mlp(block.norm2(x))
  length = jnp.sum(tokens != PAD, axis=1).astype(jnp.int32)
  return PrefixCache(
    tuple(keys), tuple(values), tuple(ckeys), tuple(cvalues), length
  )


def prefill(
  decoder: TreeDecoder,
  tokens: jnp.ndarray,
  memory: jnp.ndarray,
  bucket: int = 32,
) -> PrefixCache:
  """Runs the decoder over program tokens and caches keys and values.

  The pass runs over the first `bucket`-multiple of token columns that
  holds every program of the batch (one compiled branch per multiple,
  picked with `lax.switch`), so short programs cost less.

  Args:
    decoder: the policy's decoder.
    tokens: [R, Lp] int32 program tokens then <PAD>.
    memory: [R, P, D] image tokens from the encoder.
    bucket: column granularity (0: always all Lp columns).
  """
  lp = tokens.shape[1]
  if not bucket or bucket >= lp:
    return _prefill_full(decoder, tokens, memory)
  sizes = sorted({min(lp, s) for s in range(bucket, lp + bucket, bucket)})

  def branch(size):
    def run(tokens, memory):
      c = _prefill_full(decoder, tokens[:, :size], memory)
      grow = lambda a, axis: jnp.pad(  # noqa: E731
        a, [(0, lp - size if i == axis else 0) for i in range(a.ndim)]
      )
      return c._replace(
        key=tuple(grow(a, 3) for a in c.key),
        value=tuple(grow(a, 2) for a in c.value),
      )

    return run

  longest = jnp.max(jnp.sum(tokens != PAD, axis=1))
  index = jnp.searchsorted(jnp.asarray(sizes), longest)
  return jax.lax.switch(
    jnp.minimum(index, len(sizes) - 1),
    [branch(s) for s in sizes],
    tokens,
    memory,
  )


def empty_edit_cache(prefix: PrefixCache, k: int, slots: int) -> EditCache:
  """Zeros for `slots` edit tokens of k edits per program."""
  r, h, d, _ = prefix.key[0].shape
  z = tuple(jnp.zeros((r, h, k, slots, d), a.dtype) for a in prefix.key)
  return EditCache(z, z)


def _grouped_attention(
  q, prefix_k, prefix_v, prefix_ok, edit_k, edit_v, edit_ok
):
  """Attention of k queries per program over the program's shared prefix
  and each query's own edit tokens.

  q [R, H, k, Dh]; prefix_k [R, H, Dh, Lp]; prefix_v [R, H, Lp, Dh];
  edit_k, edit_v [R, H, k, E, Dh]; masks prefix_ok [R, Lp], edit_ok [E].
  Returns [R, H, k, Dh].
  """
  dt = q.dtype
  q = q.astype(jnp.float32) / math.sqrt(q.shape[-1])
  sp = jnp.matmul(q, prefix_k.astype(jnp.float32))  # [R, H, k, Lp]
  sp = jnp.where(prefix_ok[:, None, None, :], sp, NEG)
  # Batched dot products over (R, H, k): twice as fast on CPU as a
  # broadcast multiply and sum.
  se = jnp.einsum("rhkd,rhked->rhke", q, edit_k.astype(jnp.float32))
  se = jnp.where(edit_ok, se, NEG)  # [R, H, k, E]
  m = jnp.maximum(sp.max(-1, keepdims=True), se.max(-1, keepdims=True))
  wp, we = jnp.exp(sp - m), jnp.exp(se - m)
  z = wp.sum(-1, keepdims=True) + we.sum(-1, keepdims=True)
  out = jnp.matmul(wp, prefix_v.astype(jnp.float32))
  out = out + jnp.einsum("rhke,rhked->rhkd", we, edit_v.astype(jnp.float32))
  return (out / z).astype(dt)


def _cross_attention(q, key, value):
  """q [R, H, k, Dh]; key [R, H, Dh, P]; value [R, H, P, Dh] -> [R, H, k,
  Dh]."""
  dt = q.dtype
  q = q.astype(jnp.float32) / math.sqrt(q.shape[-1])
  w = jax.nn.softmax(jnp.matmul(q, key.astype(jnp.float32)), axis=-1)
  return jnp.matmul(w, value.astype(jnp.float32)).astype(dt)


def step(
  decoder: TreeDecoder,
  prefix: PrefixCache,
  edits: EditCache,
  token: jnp.ndarray,
  slot,
) -> tuple[jnp.ndarray, EditCache]:
  """Feeds edit token `slot` (a scalar, the same for every row).

  Args:
    decoder: the policy's decoder.
    prefix: from `prefill` on R programs.
    edits: the edit cache of k edits per program.
    token: [R * k] int32 the token at edit slot `slot`; row r * k + i is
      edit i of program r.
    slot: [] int32.

  Returns:
    logits [R * k, V] float32 for the next token, and the edit cache.
  """
  r = prefix.length.shape[0]
  rk = token.shape[0]
  k = rk // r
  e = edits.key[0].shape[3]
  position = jnp.repeat(prefix.length, k) + slot  # [R * k]
  pos = decoder.pos[...][0, position].astype(decoder.dtype)
  x = (decoder.embed(token) + pos)[:, None]  # [R * k, 1, D]
  lp = prefix.key[0].shape[3]
  prefix_ok = jnp.arange(lp)[None, :] < prefix.length[:, None]
  edit_ok = jnp.arange(e) <= slot
  keys, values = [], []

  def heads_first(a):  # [R * k, 1, H, Dh] -> [R, H, k, 1, Dh]
    return jnp.transpose(a.reshape((r, k) + a.shape[2:]), (0, 2, 1, 3))[
      :, :, :, None
    ]

  for i, block in enumerate(decoder.blocks):
    attn = block.attn
    h = block.norm1(x)
    q, kk, v = attn.query(h), attn.key(h), attn.value(h)  # [RK, 1, H, Dh]
    nh, dh = q.shape[-2:]
    kc = jax.lax.dynamic_update_slice_in_dim(
      edits.key[i], heads_first(kk), slot, axis=3
    )
    vc = jax.lax.dynamic_update_slice_in_dim(
      edits.value[i], heads_first(v), slot, axis=3
    )
    keys.append(kc)
    values.append(vc)
    y = _grouped_attention(
      heads_first(q)[:, :, :, 0],
      prefix.key[i],
      prefix.value[i],
      prefix_ok,
      kc,
      vc,
      edit_ok,
    )  # [R, H, k, Dh]
    y = jnp.transpose(y, (0, 2, 1, 3)).reshape(rk, 1, nh, dh)
    x = x + attn.out(y)
    cross = block.cross
    h = block.norm_c(x)
    y = _cross_attention(
      heads_first(cross.query(h))[:, :, :, 0],
      prefix.cross_key[i],
      prefix.cross_value[i],
    )
    y = jnp.transpose(y, (0, 2, 1, 3)).reshape(rk, 1, nh, dh)
    x = x + cross.out(y)
    x = x + block.mlp(block.norm2(x))
  logits = decoder.head(decoder.norm(x).astype(jnp.float32))[:, 0]
  return logits, EditCache(tuple(keys), tuple(values))
