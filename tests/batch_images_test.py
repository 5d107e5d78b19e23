"""Images for training batches and the empty-target checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from data_gen import filters
from data_gen.worker import ExampleConfig, make_batch
from treediff_jax import render as render_lib
from treediff_jax.dsl.languages import NAMES, get_language
from treediff_jax.dsl.sampler import sample
from treediff_jax.render import batch as batch_lib


@pytest.mark.parametrize("name", NAMES)
def test_add_images_renders_targets_and_currents(name):
  lang = get_language(name)
  batch = make_batch(0, range(4), ExampleConfig(lang=name))
  out = batch_lib.add_images_jit(
    {k: jnp.asarray(v) for k, v in batch.items()}, lang=name
  )
  assert out["target_image"].shape == (4,) + lang.canvas_shape
  assert out["current_image"].shape == (4,) + lang.canvas_shape
  tok = render_lib.Tokenizer(lang)
  targets = [tok.decode(t) for t in batch["target_tokens"]]
  expected = render_lib.render_programs(name, targets)
  np.testing.assert_allclose(
    np.asarray(out["target_image"]), expected, atol=1e-5
  )
  # Targets were drawn through the host filter, so they are visible.
  assert bool(np.asarray(out["target_nonempty"]).all())


def test_sketched_targets_need_csg2d_and_a_key():
  batch = {
    k: jnp.asarray(v)
    for k, v in make_batch(0, range(2), ExampleConfig()).items()
  }
  out = batch_lib.add_images_jit(
    batch, lang="csg2d", key=jax.random.key(0), sketch=True
  )
  clean = batch_lib.add_images_jit(batch, lang="csg2d")
  assert out["target_image"].shape == (2, 128, 128, 1)
  assert np.median(np.asarray(out["target_image"])) == 1.0  # white paper
  np.testing.assert_array_equal(
    np.asarray(out["current_image"]), np.asarray(clean["current_image"])
  )
  with pytest.raises(ValueError, match="key"):
    batch_lib.add_images(batch, "csg2d", sketch=True)
  with pytest.raises(ValueError, match="csg2d only"):
    batch_lib.add_images(batch, "rainbow", key=jax.random.key(0), sketch=True)


def test_nonempty_mask():
  images = np.zeros((3, 32, 32, 3), np.float32)
  images[1, :8, :8] = 1.0  # 6% of the pixels differ
  images[2, 0, 0] = 1.0  # one pixel differs
  mask = np.asarray(batch_lib.nonempty(jnp.asarray(images)))
  assert mask.tolist() == [False, True, False]


@pytest.mark.parametrize(
  "name,agree", [("csg2d", 0.97), ("tinysvg", 0.9), ("rainbow", 0.98)]
)
def test_host_filter_agrees_with_the_rendered_check(name, agree):
  g = get_language(name).grammar
  rng = np.random.default_rng(5)
  programs = [sample(g, "s", 2, 8, rng) for _ in range(200)]
  exact = np.asarray(
    batch_lib.nonempty(jnp.asarray(render_lib.render_programs(name, programs)))
  )
  coarse = np.array([filters.looks_nonempty(name, p) for p in programs])
  assert (exact == coarse).mean() >= agree
  # It rarely throws away a visible target.
  assert (~coarse & exact).mean() <= 0.03
