"""Where program tokens look in the image (spatial policies).

A spatial policy knows, for each program token, the primitive it lies in
and that primitive's centre and extent, read from the primitive's digit
tokens through the `anchors` of its `ModelConfig`. Two inputs follow:

  locate          finds each token's primitive, once per forward pass;
  anchor_patches  the encoder's image token under the centre (learned
                  features, gathered);
  box_features    fixed statistics of the images inside the primitive's
                  box, from summed-area tables of 1-unit cells: how much
                  target and current differ there, and what share of all
                  their difference lies there.

An anchor is (keyword id, x offset, y offset, last offset, size offset a,
size offset b, scale %): offsets from the keyword token to the centre's x
and y digits, to the primitive's last token, and to the two digits whose
larger value, times scale / 100 and rounded up, is the box's half extent
in number units.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

# The tokenizer's <PAD> and <SOS> ids (treediff_jax.dsl.tokenizer; tested
# equal): the tokens before the first <SOS> are the program.
PAD = 0
SOS = 1
# Digits are 0..15 (one hex digit each).
NUM_DIGITS = 16
# Statistics per token from `box_features`.
NUM_BOX_FEATURES = 8


class ImageTokens(NamedTuple):
  """What a box-feature policy's decoder reads of the images.

  tokens: [..., P, D] the encoder's image tokens.
  cells: [..., G + 1, G + 1, 3] float32 summed-area tables over 1-unit
    cells of the target, the current image and their absolute difference
    (channel means), with a zero first row and column.
  """

  tokens: jnp.ndarray
  cells: jnp.ndarray


def cell_tables(
  target: jnp.ndarray, current: jnp.ndarray, unit_px: int
) -> jnp.ndarray:
  """Summed-area tables of unit cells.

  Args:
    target: [..., H, W, C] float32 in [0, 1].
    current: [..., H, W, C] float32 (broadcast against target).
    unit_px: cell side in pixels (divides H and W).

  Returns:
    [..., H/u + 1, W/u + 1, 3] float32: the cumulative sums of the cell
    means of target, current and |target - current|.
  """
  target, current = jnp.broadcast_arrays(target, current)
  stack = jnp.stack([target, current, jnp.abs(target - current)], axis=-1).mean(
    axis=-2
  )  # [..., H, W, 3]
  *lead, h, w, _ = stack.shape
  u = unit_px
  cells = stack.reshape(*lead, h // u, u, w // u, u, 3).mean(axis=(-4, -2))
  table = jnp.cumsum(jnp.cumsum(cells, axis=-3), axis=-2)
  pad = [(0, 0)] * len(lead) + [(1, 0), (1, 0), (0, 0)]
  return jnp.pad(table, pad).astype(jnp.float32)


class Located(NamedTuple):
  """Per program token [B, S]: its primitive's centre and half extent in
  number units, and whether it lies in a primitive."""

  x: jnp.ndarray
  y: jnp.ndarray
  half: jnp.ndarray
  valid: jnp.ndarray


def locate(tokens: jnp.ndarray, anchors: tuple, digit0: int) -> Located:
  """Finds each program token's primitive: the one whose keyword is the
  nearest at or after the token before it, from the token before the
  keyword to its last token; only program tokens (before the first <SOS>)
  count.

  Args:
    tokens: [B, S] int32.
    anchors: the model config's anchors; digit0: token id of digit 0.
  """
  s = tokens.shape[1]
  col = jnp.arange(s, dtype=jnp.int32)[None, :]
  is_kw = jnp.zeros(tokens.shape, bool)
  for a in anchors:
    is_kw = is_kw | (tokens == a[0])
  last_kw = jax.lax.cummax(jnp.where(is_kw, col, -1), axis=1)
  next_is_kw = jnp.pad(is_kw[:, 1:], ((0, 0), (0, 1)))
  anchor = jnp.where(next_is_kw, col + 1, last_kw)  # -1: none
  at = jnp.clip(anchor, 0, s - 1)
  kw_tok = jnp.take_along_axis(tokens, at, axis=1)

  def field(i, default):
    out = jnp.full_like(anchor, default)
    for a in anchors:
      out = jnp.where(kw_tok == a[0], a[i], out)
    return out

  def digit(offset):
    t = jnp.take_along_axis(tokens, jnp.clip(at + offset, 0, s - 1), axis=1)
    return t - digit0

  x, y = digit(field(1, 0)), digit(field(2, 0))
  size = jnp.maximum(digit(field(4, 0)), digit(field(5, 0)))
  half = -(-jnp.clip(size, 0, NUM_DIGITS) * field(6, 100) // 100)
  program = jnp.cumsum(tokens == SOS, axis=1) == 0
  in_range = (x >= 0) & (x < NUM_DIGITS) & (y >= 0) & (y < NUM_DIGITS)
  valid = (
    (anchor >= 0)
    & (col <= anchor + field(3, -1))
    & program
    & (tokens != PAD)
    & in_range
  )
  return Located(x, y, half, valid)


def anchor_patches(
  a: Located,
  unit_px: int,
  patch: int,
  grid: tuple[int, int],
) -> tuple[jnp.ndarray, jnp.ndarray]:
  """The image token under each program token's primitive centre.

  Args:
    a: from `locate`.
    unit_px: pixels per number unit.
    patch: pixels per image token side; grid: (rows, columns) of image
      tokens.

  Returns:
    index [B, S] int32 row-major image-token index (0 where not valid) and
    valid [B, S] bool (the token lies in a primitive of the program).
  """
  rows, cols = grid
  r = jnp.clip((a.y * unit_px) // patch, 0, rows - 1)
  c = jnp.clip((a.x * unit_px) // patch, 0, cols - 1)
  index = jnp.where(a.valid, r * cols + c, 0).astype(jnp.int32)
  return index, a.valid


def _box_sum(cells, y0, y1, x0, x1):
  """Sums [B, S, 3] of the cells [y0, y1) x [x0, x1) from summed-area
  tables cells [B, G + 1, G + 1, 3]."""
  b, g1 = cells.shape[0], cells.shape[1]
  flat = cells.reshape(b, g1 * cells.shape[2], 3)
  w = cells.shape[2]

  def at(yy, xx):
    return jnp.take_along_axis(flat, (yy * w + xx)[..., None], axis=1)

  # Clipped at 0: the table's float32 round-off can leave an empty box a
  # tiny negative sum (and its square root a NaN).
  return jnp.maximum(at(y1, x1) - at(y0, x1) - at(y1, x0) + at(y0, x0), 0.0)


def box_features(a: Located, cells: jnp.ndarray) -> jnp.ndarray:
  """Image statistics inside each program token's primitive box.

  Args:
    a: from `locate` on tokens [B, S].
    cells: [B, G + 1, G + 1, 3] float32 from `cell_tables`.

  Returns:
    features [B, S, NUM_BOX_FEATURES] float32, zeros where not `a.valid`.
    The features: the mean |target - current| in the
    box and in the box grown by one unit, the square roots of both, the
    share of all of the difference that lies in the box, the means of
    target and current in the box, and the box's share of the canvas.
  """
  g = cells.shape[1] - 1

  def box(grow):
    e = a.half + grow
    y0, y1 = jnp.clip(a.y - e, 0, g), jnp.clip(a.y + e, 0, g)
    x0, x1 = jnp.clip(a.x - e, 0, g), jnp.clip(a.x + e, 0, g)
    area = jnp.maximum((y1 - y0) * (x1 - x0), 1).astype(jnp.float32)
    return _box_sum(cells, y0, y1, x0, x1), area[..., None]

  inner, area = box(0)
  outer, outer_area = box(1)
  total = cells[:, -1, -1, 2][:, None]  # [B, 1]
  d_in = inner[..., 2:3] / area
  d_out = outer[..., 2:3] / outer_area
  feats = jnp.concatenate(
    [
      d_in,
      d_out,
      jnp.sqrt(d_in + 1e-6),
      jnp.sqrt(d_out + 1e-6),
      inner[..., 2:3] / (total[..., None] + 1e-3),
      inner[..., 0:1] / area,
      inner[..., 1:2] / area,
      area / (g * g),
    ],
    axis=-1,
  )
  return jnp.where(a.valid[..., None], feats, 0.0)
