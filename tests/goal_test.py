"""Goal checks: the CSG2D IoU rule and the TinySVG/Rainbow Gaussian rule."""

import jax.numpy as jnp
import numpy as np
import pytest

from treediff_jax import render as render_lib
from treediff_jax.render import goal


def test_iou_rule_is_inversion_tolerant_and_thresholded():
  a = np.zeros((1, 32, 32, 1), np.float32)
  a[0, 8:24, 8:24] = 1
  assert goal.goal_reached("csg2d", jnp.asarray(a), jnp.asarray(a))[0]
  assert goal.goal_reached("csg2d", jnp.asarray(a), jnp.asarray(1 - a))[0]
  b = a.copy()
  b[0, 8:24, 8:10] = 0  # 32 of 256 foreground pixels missing
  value = float(goal.goal_value("csg2d", jnp.asarray(a), jnp.asarray(b))[0])
  assert 0.9 < value < 0.98
  assert not goal.goal_reached("csg2d", jnp.asarray(a), jnp.asarray(b))[0]
  empty = np.zeros_like(a)
  assert (
    float(goal.binary_iou_value(jnp.asarray(empty), jnp.asarray(empty))[0])
    == 1.0
  )


def test_gaussian_rule_fails_a_one_pixel_shift():
  images = render_lib.render_programs(
    "tinysvg",
    [
      "(Rectangle 4 2 red none 0)",
      "(Move (Rectangle 4 2 red none 0) 0 0 false false)",
    ],
  )
  same = goal.goal_reached(
    "tinysvg", jnp.asarray(images[:1]), jnp.asarray(images[1:])
  )
  assert same[0]
  shifted = np.roll(images[:1], 1, axis=2)
  assert not goal.goal_reached(
    "tinysvg", jnp.asarray(shifted), jnp.asarray(images[:1])
  )[0]
  # The documented example: pixels x 100..123, y 106..117.
  red = images[0, ..., 1] < 0.5
  ys, xs = np.nonzero(red)
  assert (xs.min(), xs.max(), ys.min(), ys.max()) == (100, 123, 106, 117)


def test_values_rank_closer_images_higher():
  rng = np.random.default_rng(0)
  target = rng.random((1, 16, 16, 3)).astype(np.float32)
  near = np.clip(target + 0.01, 0, 1)
  far = np.clip(target + 0.2, 0, 1)
  v = [
    float(goal.goal_value("rainbow", jnp.asarray(x), jnp.asarray(target))[0])
    for x in (target, near, far)
  ]
  assert v[0] > v[1] > v[2]
  assert v[0] == pytest.approx(-0.5 * np.log(2 * np.pi * 0.01), rel=1e-6)


def test_unknown_language_is_named():
  with pytest.raises(ValueError, match="csg3d"):
    goal.goal_value("csg3d", jnp.zeros((1, 2, 2, 1)), jnp.zeros((1, 2, 2, 1)))
