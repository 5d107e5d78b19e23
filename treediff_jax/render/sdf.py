"""Signed distance fields of the primitives and antialiased coverage.

Distances are in pixels, negative inside. Pixel (row i, column j) is sampled
at its centre (j + 0.5, i + 0.5); x runs along columns, y along rows.
"""

from __future__ import annotations

import jax.numpy as jnp

FAR = 1e4  # distance used for "no shape here"


def pixel_centres(height: int, width: int) -> tuple[jnp.ndarray, jnp.ndarray]:
  """x [1, W] and y [H, 1] float32 pixel-centre coordinates."""
  x = jnp.arange(width, dtype=jnp.float32)[None, :] + 0.5
  y = jnp.arange(height, dtype=jnp.float32)[:, None] + 0.5
  return x, y


def rounded_box(x, y, cx, cy, half_w, half_h, cos_a, sin_a, radius):
  """SDF of a rotated box with rounded corners (a circle when half sizes = 0).

  Args:
    x: [..., 1, W] pixel x; y: [..., H, 1] pixel y.
    cx, cy, half_w, half_h, cos_a, sin_a, radius: [..., 1, 1] parameters; the
      box is rotated by angle a about its centre (y down).

  Returns:
    [..., H, W] float32 signed distance.
  """
  ux, uy = x - cx, y - cy
  # Rotate the pixel into the box frame (inverse of the box rotation).
  qx = jnp.abs(ux * cos_a + uy * sin_a) - half_w
  qy = jnp.abs(uy * cos_a - ux * sin_a) - half_h
  outside = jnp.sqrt(
    jnp.square(jnp.maximum(qx, 0.0)) + jnp.square(jnp.maximum(qy, 0.0))
  )
  inside = jnp.minimum(jnp.maximum(qx, qy), 0.0)
  return outside + inside - radius


def coverage(distance, offset: float = 0.0, width: float = 1.0):
  """Antialiased coverage in [0, 1] from a signed distance in pixels.

  A linear ramp of `width` pixels centred `offset` pixels inside the edge.
  """
  return jnp.clip(0.5 - (distance + offset) / width, 0.0, 1.0)
