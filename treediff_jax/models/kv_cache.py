"""Key/value caches of cached edit decoding, and the attention over them.

`TreeDecoder.prefill` runs the decoder once over each program and keeps
every layer's self-attention keys and values (and the cross-attention keys
and values of the image tokens): the prefix cache, shared by the k edits
sampled for that program. `TreeDecoder.decode_step` then feeds one token to
each of the k edits of every program at once: the edits' own keys and
values go to a small edit cache, and the queries attend to the shared prefix
and to their edit so far.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

NEG = -1e30


class PrefixCache(NamedTuple):
  """Per layer (tuples): key [R, H, Dh, Lp] and value [R, H, Lp, Dh] of the
  program tokens, cross_key [R, H, Dh, P] and cross_value [R, H, P, Dh] of
  the image tokens (laid out for batched matmuls over (R, H)), in the
  compute dtype. length [R] int32: program tokens of each row."""

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


def empty_edit_cache(prefix: PrefixCache, k: int, slots: int) -> EditCache:
  """Zeros for `slots` edit tokens of k edits per program of `prefix`:
  key, value [R, H, k, slots, Dh] per layer, in the prefix's dtype."""
  r, h, d, _ = prefix.key[0].shape
  z = tuple(jnp.zeros((r, h, k, slots, d), a.dtype) for a in prefix.key)
  return EditCache(z, z)


def grouped_attention(
  q, prefix_k, prefix_v, prefix_ok, edit_k, edit_v, edit_ok
):
  """Attention of k queries per program over the program's shared prefix
  and each query's own edit tokens (softmax in float32).

  q [R, H, k, Dh]; prefix_k [R, H, Dh, Lp]; prefix_v [R, H, Lp, Dh];
  edit_k, edit_v [R, H, k, E, Dh]; masks prefix_ok [R, Lp], edit_ok [E]
  bool. Returns [R, H, k, Dh] in q's dtype.
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


def cross_attention(q, key, value):
  """q [R, H, k, Dh]; key [R, H, Dh, P]; value [R, H, P, Dh] -> [R, H, k,
  Dh] in q's dtype (softmax in float32)."""
  dt = q.dtype
  q = q.astype(jnp.float32) / math.sqrt(q.shape[-1])
  w = jax.nn.softmax(jnp.matmul(q, key.astype(jnp.float32)), axis=-1)
  return jnp.matmul(w, value.astype(jnp.float32)).astype(dt)


def keys_last(a: jnp.ndarray) -> jnp.ndarray:
  """Keys [R, T, H, Dh] -> [R, H, Dh, T] (cache layout)."""
  return jnp.transpose(a, (0, 2, 3, 1))


def heads_first(a: jnp.ndarray) -> jnp.ndarray:
  """Values [R, T, H, Dh] -> [R, H, T, Dh] (cache layout)."""
  return jnp.transpose(a, (0, 2, 1, 3))


def group(a: jnp.ndarray, r: int) -> jnp.ndarray:
  """One token of R * k rows [R * k, 1, H, Dh] -> [R, H, k, 1, Dh] (row
  r * k + i is edit i of program r)."""
  a = a.reshape((r, a.shape[0] // r) + a.shape[2:])  # [R, k, H, Dh]
  return jnp.transpose(a, (0, 2, 1, 3))[:, :, :, None]


def ungroup(a: jnp.ndarray) -> jnp.ndarray:
  """[R, H, k, Dh] -> [R * k, 1, H, Dh], the inverse of `group` on one
  token."""
  r, h, k, d = a.shape
  return jnp.transpose(a, (0, 2, 1, 3)).reshape(r * k, 1, h, d)
