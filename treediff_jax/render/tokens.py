"""Device-side helpers that read structure off program token arrays.

All functions are pure jax.numpy over fixed shapes; they never fail on
malformed input (gathers are clamped), so a token array that is not a program
yields some defined, finite result.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from treediff_jax.dsl.languages import Language
from treediff_jax.dsl.tokenizer import NUM_SPECIAL, Tokenizer


def token_id(language: Language, terminal: str) -> int:
  """Vocabulary id of a terminal string."""
  return NUM_SPECIAL + language.grammar.terminal_id[terminal]


def lookup_table(
  language: Language, values: dict[str, float], default: float = 0.0
) -> np.ndarray:
  """[vocab] float32 table mapping token id -> value for listed terminals."""
  table = np.full(Tokenizer(language).vocab_size, default, np.float32)
  for terminal, v in values.items():
    table[token_id(language, terminal)] = v
  return table


def nth_positions(mask: jnp.ndarray, n: int) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Positions of the first `n` True entries of each row.

  Args:
    mask: [B, L] bool.
    n: number of slots.

  Returns:
    positions: [B, n] int32 (0 where absent).
    present: [B, n] bool.
  """
  rank = jnp.cumsum(mask, axis=-1, dtype=jnp.int32)  # [B, L]
  slots = jnp.arange(1, n + 1, dtype=jnp.int32)
  hit = mask[:, None, :] & (rank[:, None, :] == slots[None, :, None])
  return jnp.argmax(hit, axis=-1).astype(jnp.int32), jnp.any(hit, axis=-1)


def gather(values: jnp.ndarray, positions: jnp.ndarray) -> jnp.ndarray:
  """values[b, positions[b, ...]], positions clamped to the row: [B, ...]."""
  length = values.shape[-1]
  pos = jnp.clip(positions, 0, length - 1)
  flat = pos.reshape(pos.shape[0], -1)
  out = jnp.take_along_axis(values, flat, axis=-1)
  return out.reshape(pos.shape)


def open_depth(tokens: jnp.ndarray, open_id: int, close_id: int) -> jnp.ndarray:
  """[B, L] int32: number of unclosed '(' strictly before each token."""
  step = (tokens == open_id).astype(jnp.int32) - (tokens == close_id).astype(
    jnp.int32
  )
  return jnp.cumsum(step, axis=-1) - step


def enclosing_open(
  tokens: jnp.ndarray, depth: jnp.ndarray, positions: jnp.ndarray, open_id: int
) -> jnp.ndarray:
  """Position of the '(' that encloses each queried position.

  Args:
    tokens: [B, L] int32.
    depth: [B, L] from `open_depth`.
    positions: [B, K] int32 queried positions.
    open_id: token id of '('.

  Returns:
    [B, K] int32, the last '(' before the position one level up (0 if none).
  """
  length = tokens.shape[-1]
  idx = jnp.arange(length, dtype=jnp.int32)
  target = gather(depth, positions) - 1  # [B, K]
  cand = (
    (tokens == open_id)[:, None, :]
    & (depth[:, None, :] == target[..., None])
    & (idx[None, None, :] < positions[..., None])
  )
  return jnp.max(jnp.where(cand, idx, 0), axis=-1)
