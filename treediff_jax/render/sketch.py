"""CSG2D-Sketch: a stochastic hand-drawn rendering of a CSG2D program.

The observation model imitates a person sketching the program's outline
(docs/design.md; noise figures in drawing units of 4 pixels): every
primitive is jittered (positions sd 0.5, sizes sd 0.5 for quads and 0.3 per
radius for circles, which become slightly elliptical; angles sd 1 degree for
quads, 2 for circles), the jittered primitives are composed as in CSG2D,
the outline wobbles by a smooth random displacement (sd about 0.2 units),
circles lose a short random arc where the pen lifts off, and the outline is
stroked with a width uniform in [0.05, 0.5] units. Black strokes (0.0) on
white (1.0): the opposite polarity of the clean render.

All randomness comes from the `jax.random` key: the same key gives the same
sketch.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from treediff_jax.dsl.languages import get_language
from treediff_jax.render import csg2d, sdf

DRAW_UNIT = 4.0  # pixels per drawing unit
POSITION_SD = 0.5
QUAD_SIZE_SD = 0.5
CIRCLE_RADIUS_SD = 0.3
QUAD_ANGLE_SD_DEG = 1.0
CIRCLE_ANGLE_SD_DEG = 2.0
WOBBLE_SD = 0.2
STROKE_WIDTH_RANGE = (0.05, 0.5)
PEN_LIFT_MAX_RAD = 0.35
_WAVES = 4  # sinusoids summed into the wobble field


def _rotated_ellipse_distance(x, y, cx, cy, rx, ry, cos_a, sin_a):
  """Approximate signed distance to an ellipse rotated by angle a (pixels)."""
  ux, uy = x - cx, y - cy
  qx = ux * cos_a + uy * sin_a
  qy = uy * cos_a - ux * sin_a
  rx, ry = jnp.maximum(rx, 0.5), jnp.maximum(ry, 0.5)
  k0 = jnp.sqrt(jnp.square(qx / rx) + jnp.square(qy / ry))
  k1 = jnp.sqrt(jnp.square(qx / (rx * rx)) + jnp.square(qy / (ry * ry)))
  return k0 * (k0 - 1.0) / jnp.maximum(k1, 1e-6)


def _sketch_one(params: dict, key: jnp.ndarray, height: int, width: int):
  """One sketch from one program's primitive parameters ([K] arrays)."""
  k = params["cx"].shape[0]
  keys = jax.random.split(key, 8)
  normal = lambda i, sd: sd * jax.random.normal(keys[i], (k,))
  u = DRAW_UNIT
  circle = params["half_w"] <= 0  # circles have zero box half-sizes
  cx = params["cx"] + normal(0, POSITION_SD * u)
  cy = params["cy"] + normal(1, POSITION_SD * u)
  size_noise = jax.random.normal(keys[2], (2, k))
  radius = params["radius"] + csg2d.CIRCLE_SHIFT
  rx = radius + CIRCLE_RADIUS_SD * u * size_noise[0]
  ry = radius + CIRCLE_RADIUS_SD * u * size_noise[1]
  half_w = params["half_w"] + QUAD_SIZE_SD * u / 2 * size_noise[0]
  half_h = params["half_h"] + QUAD_SIZE_SD * u / 2 * size_noise[1]
  angle_sd = jnp.where(circle, CIRCLE_ANGLE_SD_DEG, QUAD_ANGLE_SD_DEG)
  turn = jnp.deg2rad(angle_sd * jax.random.normal(keys[3], (k,)))
  cos = params["cos"] * jnp.cos(turn) - params["sin"] * jnp.sin(turn)
  sin = params["sin"] * jnp.cos(turn) + params["cos"] * jnp.sin(turn)
  draws = params["radius"] > -sdf.FAR / 2  # present and not empty

  x, y = sdf.pixel_centres(height, width)
  e = lambda a: a[:, None, None]  # [K] -> [K, 1, 1]
  d_circle = _rotated_ellipse_distance(
    x, y, e(cx), e(cy), e(rx), e(ry), e(cos), e(sin)
  )
  d_quad = sdf.rounded_box(
    x,
    y,
    e(cx),
    e(cy),
    e(jnp.maximum(half_w, 0.0)),
    e(jnp.maximum(half_h, 0.0)),
    e(cos),
    e(sin),
    0.0,
  )
  d = jnp.where(e(circle), d_circle, d_quad)
  d = jnp.where(e(draws), d, sdf.FAR)  # [K, H, W]

  # Fold as CSG2D does, remembering which primitive each pixel's edge is on.
  acc, owner = d[0], jnp.zeros((height, width), jnp.int32)
  for s in range(1, k):
    cand = jnp.where(
      params["union"][s], jnp.minimum(acc, d[s]), jnp.maximum(acc, -d[s])
    )
    owner = jnp.where(cand != acc, s, owner)
    acc = cand

  # A smooth wobble of the outline.
  freq = jax.random.uniform(
    keys[4], (_WAVES,), minval=2 * math.pi / 64, maxval=2 * math.pi / 16
  )
  theta = jax.random.uniform(keys[5], (_WAVES,), maxval=2 * math.pi)
  phase = jax.random.uniform(keys[6], (_WAVES,), maxval=2 * math.pi)
  w = lambda a: a[:, None, None]
  waves = jnp.sin(
    w(freq) * (x * w(jnp.cos(theta)) + y * w(jnp.sin(theta))) + w(phase)
  )
  acc = acc + WOBBLE_SD * u * math.sqrt(2.0 / _WAVES) * jnp.sum(waves, 0)

  # The pen lifts off for a short arc of every circle.
  lift_keys = jax.random.split(keys[7], 3)
  lift_start = jax.random.uniform(lift_keys[0], (k,), maxval=2 * math.pi)
  lift_len = jax.random.uniform(lift_keys[1], (k,), maxval=PEN_LIFT_MAX_RAD)
  oc = lambda a: jnp.take(a, owner)
  ang = jnp.arctan2(y - oc(cy), x - oc(cx))
  rel = jnp.mod(ang - oc(lift_start), 2 * math.pi)
  lifted = oc(circle) & (rel < oc(lift_len))

  lo, hi = STROKE_WIDTH_RANGE
  stroke = u * jax.random.uniform(lift_keys[2], (), minval=lo, maxval=hi)
  half = stroke / 2
  ink = jnp.clip(
    jnp.minimum(acc + 0.5, half) - jnp.maximum(acc - 0.5, -half), 0.0, 1.0
  )
  ink = jnp.where(lifted, 0.0, ink)
  return 1.0 - ink


def sketch(
  tokens: jnp.ndarray, key: jnp.ndarray, num_slots: int | None = None
) -> jnp.ndarray:
  """Stochastic sketches of CSG2D programs.

  Args:
    tokens: [B, L] int32 CSG2D program tokens (padding after the program).
    key: a `jax.random` key; example b uses `fold_in(key, b)`, so a sketch
      depends only on the key, its program and its index in the batch.
    num_slots: primitive slots (static); defaults to the most L tokens hold.

  Returns:
    [B, 128, 128, 1] float32: white background 1.0, black strokes 0.0.
  """
  if num_slots is None:
    num_slots = csg2d.max_primitives(tokens.shape[-1])
  params = csg2d.primitive_params(tokens, num_slots)
  params = {k: v for k, v in params.items() if k != "present"}
  height, width, _ = get_language("csg2d").canvas_shape
  keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(
    jnp.arange(tokens.shape[0])
  )
  images = jax.vmap(lambda p, k: _sketch_one(p, k, height, width))(params, keys)
  return images[..., None]


sketch_jit = jax.jit(sketch, static_argnums=2)
