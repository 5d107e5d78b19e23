"""Goal checks: does a render match the target? Batched JAX functions.

CSG2D uses a binary IoU rule: threshold both images at 0.5, average the IoU
of the foreground and of the background, do the same with one image
inverted, and take the larger; the goal is reached above 0.98. TinySVG and
Rainbow use a Gaussian rule: the mean log-density of the pixel differences
under N(0, 0.1^2) must exceed 0.99 of its value at zero difference.
Each check also returns the graded value it thresholds, for ranking.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

IOU_THRESHOLD = 0.98
GAUSSIAN_SIGMA = 0.1
GAUSSIAN_FRACTION = 0.99


_PIXEL_AXES = (-3, -2, -1)


def _ratio(inter, union):
  return jnp.where(union == 0, 1.0, inter / jnp.maximum(union, 1.0))


def binary_iou_value(images: jnp.ndarray, targets: jnp.ndarray) -> jnp.ndarray:
  """Inversion-tolerant mean foreground/background IoU.

  Args:
    images: [..., H, W, C] float32 in [0, 1].
    targets: [..., H, W, C] float32 in [0, 1], broadcastable to `images`
      (e.g. [B, 1, H, W, C] against [B, K, H, W, C]).

  Returns:
    [...] float32 in [0, 1]; 1 for identical thresholded images.
  """
  a = (images > 0.5).astype(jnp.float32)
  b = (targets > 0.5).astype(jnp.float32)
  n = float(images.shape[-3] * images.shape[-2] * images.shape[-1])
  # Three sums give all four IoUs: |a & b|, |a|, |b|.
  both = jnp.sum(a * b, axis=_PIXEL_AXES)
  sa = jnp.sum(a, axis=_PIXEL_AXES)
  sb = jnp.sum(b, axis=_PIXEL_AXES)
  fg = _ratio(both, sa + sb - both)  # a vs b
  bg = _ratio(n - sa - sb + both, n - both)  # ~a vs ~b
  same = (fg + bg) / 2
  inv_fg = _ratio(sb - both, n - sa + both)  # ~a vs b
  inv_bg = _ratio(sa - both, n - sb + both)  # a vs ~b
  inverted = (inv_fg + inv_bg) / 2
  return jnp.maximum(same, inverted)


def gaussian_value(
  images: jnp.ndarray, targets: jnp.ndarray, sigma: float = GAUSSIAN_SIGMA
) -> jnp.ndarray:
  """Mean log-density of pixel differences under N(0, sigma^2).

  Args:
    images, targets: [..., H, W, C] float32 in [0, 1] (broadcastable).

  Returns:
    [...] float32; at most log N(0; 0, sigma^2), reached for equal images.
  """
  diff = images - targets
  log_norm = -0.5 * math.log(2 * math.pi * sigma * sigma)
  msd = jnp.mean(jnp.square(diff), axis=_PIXEL_AXES)
  return log_norm - msd / (2 * sigma * sigma)


def gaussian_threshold(
  sigma: float = GAUSSIAN_SIGMA, fraction: float = GAUSSIAN_FRACTION
) -> float:
  """The Gaussian rule's threshold: `fraction` of the value at zero error."""
  return fraction * (-0.5 * math.log(2 * math.pi * sigma * sigma))


def _name(lang: str) -> str:
  from treediff_jax.dsl.languages import ALIASES

  return ALIASES.get(lang, lang)


def goal_value(
  lang: str, images: jnp.ndarray, targets: jnp.ndarray
) -> jnp.ndarray:
  """The graded value of `lang`'s goal check, higher is closer.

  images, targets: [..., H, W, C] float32 (broadcastable) -> [...] float32.
  """
  lang = _name(lang)
  if lang == "csg2d":
    return binary_iou_value(images, targets)
  if lang in ("tinysvg", "rainbow"):
    return gaussian_value(images, targets)
  raise ValueError(f"no goal check for language {lang!r}")


def goal_threshold(lang: str) -> float:
  """The graded value above which `lang`'s goal is reached."""
  if _name(lang) == "csg2d":
    return IOU_THRESHOLD
  return gaussian_threshold()


def goal_reached(
  lang: str, images: jnp.ndarray, targets: jnp.ndarray
) -> jnp.ndarray:
  """Whether each image meets its target under `lang`'s rule: [B] bool
  (shapes as `goal_value`)."""
  return goal_value(lang, images, targets) > goal_threshold(lang)
