"""Edits applied to token arrays on the device, and token-array hashes."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from treediff_jax.dsl.tokenizer import PAD


def apply_edit(
  program: jnp.ndarray,
  length: jnp.ndarray,
  position: jnp.ndarray,
  end: jnp.ndarray,
  replacement: jnp.ndarray,
  replacement_len: jnp.ndarray,
) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Replaces tokens [position, end) of each row by its replacement.

  Args:
    program: [B, L] int32 programs then <PAD>.
    length: [B] int32 program lengths.
    position, end: [B] int32 span of the replaced node.
    replacement: [B, M] int32 new tokens (then anything).
    replacement_len: [B] int32 tokens of the replacement used.

  Returns:
    edited [B, L] int32 (then <PAD>), and fits [B] bool: the result has at
    most L tokens (rows that do not fit hold a truncated program).
  """
  b, big_l = program.shape
  m = replacement.shape[1]
  i = jnp.arange(big_l)[None, :]
  pos, end = position[:, None], end[:, None]
  rlen = replacement_len[:, None]
  new_len = length[:, None] - (end - pos) + rlen
  from_prog_before = i < pos
  from_repl = (i >= pos) & (i < pos + rlen)
  src_after = jnp.clip(i - pos - rlen + end, 0, big_l - 1)
  after = jnp.take_along_axis(program, src_after, axis=1)
  repl = jnp.take_along_axis(replacement, jnp.clip(i - pos, 0, m - 1), axis=1)
  out = jnp.where(from_prog_before, program, jnp.where(from_repl, repl, after))
  out = jnp.where(i < new_len, out, PAD)
  del b
  return out.astype(jnp.int32), new_len[:, 0] <= big_l


_MULTIPLIERS = (0x9E3779B1, 0x85EBCA77)


def _powers(length: int, base: int) -> np.ndarray:
  out = np.ones(length, np.uint64)
  for i in range(1, length):
    out[i] = (out[i - 1] * base) % (1 << 32)
  return out.astype(np.uint32)


def hash_tokens(tokens: jnp.ndarray) -> jnp.ndarray:
  """Two independent 32-bit polynomial hashes of each token row.

  Args:
    tokens: [..., L] int32.

  Returns:
    [..., 2] uint32; equal rows give equal hashes, and two different rows
    collide with probability about 2**-64.
  """
  t = tokens.astype(jnp.uint32) + jnp.uint32(1)
  out = []
  for base in _MULTIPLIERS:
    p = jnp.asarray(_powers(tokens.shape[-1], base))
    h = jnp.sum(t * p, axis=-1, dtype=jnp.uint32)
    h = (h ^ (h >> 16)) * jnp.uint32(0x7FEB352D)
    out.append(h ^ (h >> 15))
  return jnp.stack(out, axis=-1)
