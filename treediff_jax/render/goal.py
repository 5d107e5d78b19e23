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


def _iou(a, b):
  """[B, ...] bool masks -> [B] IoU; 1 where both are empty."""
  axes = tuple(range(1, a.ndim))
  inter = jnp.sum(a & b, axis=axes)
  union = jnp.sum(a | b, axis=axes)
  return jnp.where(union == 0, 1.0, inter / jnp.maximum(union, 1))


def binary_iou_value(images: jnp.ndarray, targets: jnp.ndarray) -> jnp.ndarray:
  """Inversion-tolerant mean foreground/background IoU.

  Args:
    images: [B, H, W, C] float32 in [0, 1].
    targets: [B, H, W, C] float32 in [0, 1].

  Returns:
    [B] float32 in [0, 1]; 1 for identical thresholded images.
  """
  a, b = images > 0.5, targets > 0.5
  same = (_iou(a, b) + _iou(~a, ~b)) / 2
  inverted = (_iou(~a, b) + _iou(a, ~b)) / 2
  return jnp.maximum(same, inverted)


def gaussian_value(
  images: jnp.ndarray, targets: jnp.ndarray, sigma: float = GAUSSIAN_SIGMA
) -> jnp.ndarray:
  """Mean log-density of pixel differences under N(0, sigma^2).

  Args:
    images, targets: [B, H, W, C] float32 in [0, 1].

  Returns:
    [B] float32; at most log N(0; 0, sigma^2), reached for equal images.
  """
  axes = tuple(range(1, images.ndim))
  diff = images - targets
  log_norm = -0.5 * math.log(2 * math.pi * sigma * sigma)
  return log_norm - jnp.mean(jnp.square(diff), axis=axes) / (2 * sigma * sigma)


def gaussian_threshold(
  sigma: float = GAUSSIAN_SIGMA, fraction: float = GAUSSIAN_FRACTION
) -> float:
  """The Gaussian rule's threshold: `fraction` of the value at zero error."""
  return fraction * (-0.5 * math.log(2 * math.pi * sigma * sigma))


def _name(lang: str) -> str:
  from treediff_jax.dsl.languages import ALIASES  # pylint: disable=g-import-not-at-top

  return ALIASES.get(lang, lang)


def goal_value(
  lang: str, images: jnp.ndarray, targets: jnp.ndarray
) -> jnp.ndarray:
  """The graded value of `lang`'s goal check: [B] float32 (higher = closer)."""
  lang = _name(lang)
  if lang == "csg2d":
    return binary_iou_value(images, targets)
  if lang in ("tinysvg", "rainbow"):
    return gaussian_value(images, targets)
  raise ValueError(f"no goal check for language {lang!r}")


def goal_reached(
  lang: str, images: jnp.ndarray, targets: jnp.ndarray
) -> jnp.ndarray:
  """Whether each image meets its target under `lang`'s rule: [B] bool."""
  value = goal_value(lang, images, targets)
  if _name(lang) == "csg2d":
    return value > IOU_THRESHOLD
  return value > gaussian_threshold()
