"""CSG2D rendering from token arrays, on the device.

The primitives are found by their keyword tokens (`Circle`, `Quad`) in token
order, which is the in-order sequence P1, P2, ... of the reference. The
operator between P(k-1) and P(k) belongs to the binop whose two children meet
between them: its separator is the last `" "` preceded by `")"` before P(k),
and its operator token follows the `"("` that encloses that separator. The
image is the left fold ((P1 op1 P2) op2 P3) ... of the signed distances (union
= min, difference = max(a, -b)), then antialiased coverage.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from treediff_jax.dsl.languages import get_language
from treediff_jax.render import sdf
from treediff_jax.render import tokens as tk

UNIT = 8.0  # pixels per number unit
# skia fills large paths with analytic coverage and small ones by 4x4
# supersampling, after flattening circles into line segments; its 0.5 level
# sits up to ~0.1 px off the true edge, inside circles on average. Circles
# are drawn CIRCLE_SHIFT pixels smaller: the shift that maximises the share
# of 2,000 sampled programs (seed 7, not the test sample) whose render meets
# the goal check against skia's (BENCHMARKS.md).
CIRCLE_SHIFT = 0.015


@functools.lru_cache(maxsize=None)
def _tables():
  lang = get_language("csg2d")
  ids = {
    t: tk.token_id(lang, t) for t in ("(", ")", " ", "Circle", "Quad", "+", "-")
  }
  value = tk.lookup_table(
    lang, {c: float(i) for i, c in enumerate("0123456789ABCDEF")}
  )
  # A token that is not an angle reads as 0 degrees (cos 1, sin 0).
  cos = tk.lookup_table(
    lang,
    {c: math.cos(math.radians(45 * i)) for i, c in enumerate("GHIJKLMN")},
    default=1.0,
  )
  sin = tk.lookup_table(
    lang, {c: math.sin(math.radians(45 * i)) for i, c in enumerate("GHIJKLMN")}
  )
  return ids, value, cos, sin, lang.canvas_shape


def max_primitives(length: int) -> int:
  """Most primitives a CSG2D program of `length` tokens can hold.

  n circles joined by n - 1 binops take 9n + 5(n - 1) tokens.
  """
  return max(1, (length + 5) // 14)


def primitive_params(tokens: jnp.ndarray, num_slots: int):
  """Per-slot primitive parameters read off the tokens.

  Args:
    tokens: [B, L] int32 program tokens (padding after the program).
    num_slots: K, the number of primitive slots.

  Returns:
    dict of [B, K] arrays: cx, cy, half_w, half_h, radius, cos, sin (pixels;
    radius is -FAR for slots that draw nothing), `union` (bool, the operator
    joining slot k to the fold; True for absent slots) and `present`.
  """
  ids, value_t, cos_t, sin_t, _ = _tables()
  value_t, cos_t, sin_t = (jnp.asarray(t) for t in (value_t, cos_t, sin_t))
  is_circle = tokens == ids["Circle"]
  kw_pos, present = tk.nth_positions(
    is_circle | (tokens == ids["Quad"]), num_slots
  )
  circle = tk.gather(is_circle, kw_pos)
  arg = [value_t[tk.gather(tokens, kw_pos + 2 * i)] for i in (1, 2, 3, 4)]
  angle_tok = tk.gather(tokens, kw_pos + 10)
  zero, one = jnp.zeros_like(arg[0]), jnp.ones_like(arg[0])
  # Circle: r x y.  Quad: x y w h angle.
  cx = jnp.where(circle, arg[1], arg[0]) * UNIT
  cy = jnp.where(circle, arg[2], arg[1]) * UNIT
  half_w = jnp.where(circle, zero, arg[2] * UNIT / 2)
  half_h = jnp.where(circle, zero, arg[3] * UNIT / 2)
  cos = jnp.where(circle, one, cos_t[angle_tok])
  sin = jnp.where(circle, zero, sin_t[angle_tok])
  radius = jnp.where(circle, arg[0] * UNIT - CIRCLE_SHIFT, zero)
  # Zero radius, width or height draws nothing; neither does an absent slot,
  # which joins the fold as a union with nothing. Both get a radius of -FAR,
  # which pushes their distance out to about +FAR.
  empty = jnp.where(circle, arg[0] <= 0, (half_w <= 0) | (half_h <= 0))
  radius = jnp.where(present & ~empty, radius, -sdf.FAR)

  # Operator joining slot k (k >= 1) to the fold of the slots before it.
  length = tokens.shape[-1]
  idx = jnp.arange(length, dtype=jnp.int32)
  prev = jnp.concatenate(
    [jnp.full_like(tokens[:, :1], -1), tokens[:, :-1]], axis=-1
  )
  is_sep = (tokens == ids[" "]) & (prev == ids[")"])
  last_sep = jax.lax.cummax(jnp.where(is_sep, idx, -1), axis=1)  # [B, L]
  sep = tk.gather(last_sep, kw_pos - 2)  # the '(' of P(k) is at kw_pos - 1
  depth = tk.open_depth(tokens, ids["("], ids[")"])
  binop = tk.enclosing_open(tokens, depth, sep, ids["("])
  union = (tk.gather(tokens, binop + 1) == ids["+"]) | ~present
  return dict(
    cx=cx,
    cy=cy,
    half_w=half_w,
    half_h=half_h,
    radius=radius,
    cos=cos,
    sin=sin,
    union=union,
    present=present,
  )


def signed_distance(tokens: jnp.ndarray, num_slots: int | None = None):
  """Signed distance of the whole program: [B, H, W] float32 pixels."""
  if num_slots is None:
    num_slots = max_primitives(tokens.shape[-1])
  p = primitive_params(tokens, num_slots)
  height, width, _ = _tables()[4]
  x, y = sdf.pixel_centres(height, width)
  e = lambda a: a[:, None, None]  # [B] -> [B, 1, 1]

  def slot(k):  # [B, H, W] signed distance of slot k
    q = {n: v[:, k] for n, v in p.items()}
    d = sdf.rounded_box(
      x,
      y,
      e(q["cx"]),
      e(q["cy"]),
      e(q["half_w"]),
      e(q["half_h"]),
      e(q["cos"]),
      e(q["sin"]),
      e(q["radius"]),
    )
    return q, d

  # Computing each slot next to the accumulator lets XLA fuse them instead of
  # materialising a [B, K, H, W] array.
  acc = slot(0)[1]
  for k in range(1, num_slots):
    q, dk = slot(k)
    acc = jnp.where(e(q["union"]), jnp.minimum(acc, dk), jnp.maximum(acc, -dk))
  return acc


def render(tokens: jnp.ndarray, num_slots: int | None = None) -> jnp.ndarray:
  """Renders CSG2D token arrays.

  Args:
    tokens: [B, L] int32 program token ids, padded with <PAD>; a batch may mix
      lengths. Arrays that are not programs render to some finite image.
    num_slots: primitive slots to evaluate (static); defaults to the most a
      program of L tokens can hold. Primitives beyond it are not drawn.

  Returns:
    [B, 128, 128, 1] float32 coverage in [0, 1] (1 inside the shape).
  """
  return sdf.coverage(signed_distance(tokens, num_slots))[..., None]


render_jit = jax.jit(render, static_argnums=1)
