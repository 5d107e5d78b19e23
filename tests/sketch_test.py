"""The CSG2D-Sketch observation model."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from treediff_jax import render as render_lib
from treediff_jax.render import sketch

GOLDEN = pathlib.Path(__file__).resolve().parents[2] / "shared" / "golden"


def _outline_distance(ink, clean):
  """Mean distance (px) from inked pixels to the clean render's outline."""
  from scipy import ndimage

  out = []
  for s, c in zip(ink, clean):
    m = c > 0.5
    edge = m ^ ndimage.binary_erosion(m)
    if edge.sum() == 0 or (s > 0.3).sum() == 0:
      continue
    out.append(ndimage.distance_transform_edt(~edge)[s > 0.3].mean())
  return float(np.mean(out))


@pytest.fixture(scope="module")
def programs():
  path = GOLDEN / "csg2d_sketch_examples.npz"
  if not path.exists():
    pytest.skip(f"no reference sketches at {path}")
  data = np.load(path)
  return [str(p) for p in data["programs"]], data["images"][..., 0] / 255.0


def test_sketches_are_random_per_key_and_fixed_per_key(programs):
  texts, _ = programs
  tokens = jnp.asarray(render_lib.pad_tokens("csg2d", texts[:8]))
  a = np.asarray(sketch.sketch_jit(tokens, jax.random.key(0)))
  b = np.asarray(sketch.sketch_jit(tokens, jax.random.key(0)))
  c = np.asarray(sketch.sketch_jit(tokens, jax.random.key(1)))
  assert a.shape == (8, 128, 128, 1)
  np.testing.assert_array_equal(a, b)
  assert np.abs(a - c).mean() > 1e-3
  assert a.min() >= 0 and a.max() <= 1
  # White background, black strokes.
  assert np.median(a) == 1.0


def test_sketch_statistics_match_the_reference_sketches(programs):
  texts, reference = programs
  tokens = jnp.asarray(render_lib.pad_tokens("csg2d", texts))
  ours = np.asarray(sketch.sketch_jit(tokens, jax.random.key(0)))[..., 0]
  clean = render_lib.render_programs("csg2d", texts)[..., 0]
  ink_ours, ink_ref = 1 - ours, 1 - reference
  cov_ours, cov_ref = ink_ours.mean(), ink_ref.mean()
  dist_ours = _outline_distance(ink_ours, clean)
  dist_ref = _outline_distance(ink_ref, clean)
  print(
    f"ink coverage ours {cov_ours:.4f} reference {cov_ref:.4f}; mean "
    f"distance of ink to the clean outline ours {dist_ours:.2f} px "
    f"reference {dist_ref:.2f} px"
  )
  assert 0.5 < cov_ours / cov_ref < 2.0
  assert 0.4 < dist_ours / dist_ref < 2.5
  # Close to the clean outline: ink lies within a few pixels of it.
  assert dist_ours < 4.0
