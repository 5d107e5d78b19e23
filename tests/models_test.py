"""Shapes, dtypes and basic behaviour of the policy and value models."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from treediff_jax.dsl.languages import NAMES, get_language
from treediff_jax.dsl.tokenizer import PAD, Tokenizer
from treediff_jax.models.policy import PolicyModel, ValueModel, decode_variant
from treediff_jax.models.vit import stack_images


@pytest.mark.parametrize("name", NAMES)
def test_policy_and_value_shapes(name):
  lang = get_language(name)
  h, w, c = lang.canvas_shape
  batch = 3  # prime, so a transposed axis shows
  images = jnp.zeros((batch, h, w, c))
  tokens = jnp.ones((batch, lang.seq_len), jnp.int32)
  logits = PolicyModel(name, "tiny", rngs=nnx.Rngs(0))(images, images, tokens)
  assert logits.shape == (batch, lang.seq_len, Tokenizer(lang).vocab_size)
  assert logits.dtype == jnp.float32
  value = ValueModel(name, "tiny", rngs=nnx.Rngs(0))(images, images)
  assert value.shape == (batch,) and value.dtype == jnp.float32


def test_decoder_is_causal_and_ignores_padding():
  lang = get_language("rainbow")
  model = PolicyModel("rainbow", "tiny", rngs=nnx.Rngs(1))
  images = jax.random.uniform(jax.random.key(0), (1, 64, 64, 3))
  tokens = jnp.asarray(
    np.random.default_rng(0).integers(3, 20, (1, lang.seq_len)), jnp.int32
  )
  changed = tokens.at[0, 10].set(7 if int(tokens[0, 10]) != 7 else 8)
  a, b = model(images, images, tokens), model(images, images, changed)
  np.testing.assert_allclose(a[0, :10], b[0, :10], atol=1e-5)
  assert not np.allclose(a[0, 10:], b[0, 10:])
  padded = tokens.at[0, 20:].set(PAD)
  c = model(images, images, padded)
  np.testing.assert_allclose(a[0, :20], c[0, :20], atol=1e-5)


def test_stack_images_scales_to_unit_range():
  t = jnp.ones((1, 4, 4, 1))
  c = jnp.zeros((1, 4, 4, 1))
  s = stack_images(t, c)
  assert s.shape == (1, 4, 4, 3)
  np.testing.assert_array_equal(np.asarray(s[0, 0, 0]), [1.0, -1.0, 1.0])


@pytest.mark.parametrize("name", ["csg2d", "rainbow"])
def test_split_patch_embedding_equals_the_stacked_convolution(name):
  model = ValueModel(name, "tiny", rngs=nnx.Rngs(0))
  enc = model.encoder
  rng = np.random.default_rng(0)
  shape = get_language(name).canvas_shape
  t = jnp.asarray(rng.random((2,) + shape, np.float32))
  c = jnp.asarray(rng.random((2, 3) + shape, np.float32))
  want = []
  for n in range(3):
    x = enc.embed(stack_images(t, c[:, n]))  # the [p, p, 3C, D] convolution
    x = x.reshape(2, -1, x.shape[-1]) + enc.pos[...]
    for block in enc.blocks:
      x = block(x)
    want.append(enc.norm(x))
  want = np.stack(want, axis=1)  # [2, 3, P, D]
  np.testing.assert_allclose(enc.encode_pair(t, c), want, atol=2e-4)
  np.testing.assert_allclose(
    enc(stack_images(t, c[:, 1])), want[:, 1], atol=2e-4
  )
  score = model.score(t, c)
  assert score.shape == (2, 3)
  np.testing.assert_allclose(score[:, 2], model(t, c[:, 2]), atol=1e-5)


def test_bfloat16_compute_keeps_float32_params():
  model = PolicyModel("rainbow", "tiny", dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
  params = jax.tree.leaves(nnx.state(model, nnx.Param))
  assert all(p.dtype == jnp.float32 for p in params)
  images = jnp.zeros((1, 64, 64, 3))
  tokens = jnp.ones((1, get_language("rainbow").seq_len), jnp.int32)
  assert model(images, images, tokens).dtype == jnp.float32


def test_unknown_size_is_named():
  with pytest.raises(ValueError, match="unknown model size 'huge'"):
    decode_variant("huge")
