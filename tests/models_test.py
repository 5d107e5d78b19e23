"""Shapes, dtypes and basic behaviour of the policy and value models."""

import dataclasses
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from treediff_jax.dsl import tokenizer
from treediff_jax.dsl.languages import NAMES, get_language
from treediff_jax.dsl.tokenizer import PAD, Tokenizer
from treediff_jax.model_configs import for_language, from_training_config
from treediff_jax.models import ModelConfig, PolicyModel, ValueModel
from treediff_jax.models import config as config_lib
from treediff_jax.models import decoder as decoder_lib
from treediff_jax.models.vit import stack_images


def _policy(lang, seed=0, **kw):
  return PolicyModel(for_language(lang, "tiny", **kw), rngs=nnx.Rngs(seed))


def _value(lang, seed=0, **kw):
  return ValueModel(for_language(lang, "tiny", **kw), rngs=nnx.Rngs(seed))


@pytest.mark.parametrize("name", NAMES)
def test_policy_and_value_shapes(name):
  lang = get_language(name)
  h, w, c = lang.canvas_shape
  batch = 3  # prime, so a transposed axis shows
  images = jnp.zeros((batch, h, w, c))
  tokens = jnp.ones((batch, lang.seq_len), jnp.int32)
  logits = _policy(name)(images, images, tokens)
  assert logits.shape == (batch, lang.seq_len, Tokenizer(lang).vocab_size)
  assert logits.dtype == jnp.float32
  value = _value(name)(images, images)
  assert value.shape == (batch,) and value.dtype == jnp.float32


def test_decoder_is_causal_and_ignores_padding():
  lang = get_language("rainbow")
  model = _policy("rainbow", seed=1)
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


# float32 is also covered by search_test's cached-decoding test.
@pytest.mark.parametrize(
  "dtype", [pytest.param("float32", marks=pytest.mark.slow), "bfloat16"]
)
def test_cached_decoding_equals_the_full_pass(dtype):
  """prefill + decode_step on k edits of R programs of different lengths
  give the full forward pass's logits of program-then-edit sequences."""
  lang = get_language("rainbow")
  model = _policy("rainbow", seed=2, dtype=dtype)
  rng = np.random.default_rng(1)
  r, k, e, lp = 3, 2, 4, 12
  lengths = np.array([5, 12, 8])
  programs = rng.integers(3, 30, (r, lp)) * (np.arange(lp) < lengths[:, None])
  edit = rng.integers(3, 30, (r * k, e))
  seqs = np.zeros((r * k, lp + e), np.int64)
  for row in range(r * k):
    n = lengths[row // k]
    seqs[row, :n], seqs[row, n : n + e] = programs[row // k, :n], edit[row]
  images = jnp.asarray(rng.random((2, r) + lang.canvas_shape, np.float32))
  memory = model.encode(images[0], images[1])
  full = model.decoder(jnp.asarray(seqs, jnp.int32), jnp.repeat(memory, k, 0))
  prefix = model.decoder.prefill(jnp.asarray(programs, jnp.int32), memory)
  np.testing.assert_array_equal(prefix.length, lengths)
  cache = model.decoder.empty_edit_cache(prefix, k, e)
  assert cache.key[0].shape == (r, 4, k, e, 16)
  step = jax.jit(model.decoder.decode_step)
  at = np.repeat(lengths, k)
  atol = 2e-5 if dtype == "float32" else 0.05
  for slot in range(e):
    token = jnp.asarray(edit[:, slot], jnp.int32)
    logits, cache = step(prefix, cache, token, jnp.int32(slot))
    assert logits.shape == (r * k, full.shape[-1])
    assert logits.dtype == jnp.float32
    want = full[np.arange(r * k), at + slot]
    np.testing.assert_allclose(logits, want, atol=atol)


def test_stack_images_scales_to_unit_range():
  t = jnp.ones((1, 4, 4, 1))
  c = jnp.zeros((1, 4, 4, 1))
  s = stack_images(t, c)
  assert s.shape == (1, 4, 4, 3)
  np.testing.assert_array_equal(np.asarray(s[0, 0, 0]), [1.0, -1.0, 1.0])


@pytest.mark.parametrize("name", ["csg2d", "rainbow"])
def test_split_patch_embedding_equals_the_stacked_convolution(name):
  model = _value(name)
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


@pytest.mark.parametrize("name", ["csg2d", "rainbow"])
def test_conv_stem_encodes_pairs_as_the_stacked_images(name):
  c = for_language(name, "tiny", stem="conv")
  model = ValueModel(c, rngs=nnx.Rngs(0))
  enc = model.encoder
  p = get_language(name).patch
  assert len(enc.convs.convs) == p.bit_length() - 1  # one per halving
  rng = np.random.default_rng(0)
  shape = c.canvas_shape
  t = jnp.asarray(rng.random((2,) + shape, np.float32))
  cur = jnp.asarray(rng.random((2, 3) + shape, np.float32))
  got = enc.encode_pair(t, cur)
  assert got.shape == (2, 3, (shape[0] // p) * (shape[1] // p), c.width)
  for n in range(3):
    np.testing.assert_allclose(
      got[:, n], enc(stack_images(t, cur[:, n])), atol=1e-5
    )
  assert not hasattr(enc, "embed")  # the stem replaces the patch embedding


def test_stem_is_part_of_the_model_config():
  from treediff_jax.configs import common
  from treediff_jax.workdir import FIXED

  config = common.policy_config("csg2d", "small")
  assert from_training_config(config).stem == "patch"
  config.model.stem = "conv"
  assert from_training_config(config).stem == "conv"
  assert "model.stem" in FIXED
  del config.model["stem"]  # configs written before the field: patch
  assert from_training_config(config).stem == "patch"
  with pytest.raises(ValueError, match="unknown image stem 'resnet'"):
    for_language("csg2d", "tiny", stem="resnet")
  with pytest.raises(ValueError, match="power-of-two patch, not 28"):
    for_language("tinysvg", "tiny", stem="conv")


def test_bfloat16_compute_keeps_float32_params():
  model = _policy("rainbow", dtype="bfloat16")
  params = jax.tree.leaves(nnx.state(model, nnx.Param))
  assert all(p.dtype == jnp.float32 for p in params)
  images = jnp.zeros((1, 64, 64, 3))
  tokens = jnp.ones((1, get_language("rainbow").seq_len), jnp.int32)
  assert model(images, images, tokens).dtype == jnp.float32


def test_unknown_size_is_named():
  with pytest.raises(ValueError, match="unknown model size 'huge'"):
    for_language("rainbow", "huge")
  with pytest.raises(ValueError, match="tiny, small, base"):
    ModelConfig.preset(
      "huge", vocab_size=10, canvas_shape=(8, 8, 1), patch=8, max_len=4
    )
  with pytest.raises(ValueError, match="unknown model dtype 'float16'"):
    for_language("rainbow", "tiny", dtype="float16")


def test_presets_table():
  sizes = {
    name: (c["width"], c["encoder_depth"], c["decoder_depth"], c["heads"])
    for name, c in config_lib.PRESETS.items()
  }
  assert sizes == {
    "tiny": (64, 1, 2, 4),
    "small": (128, 2, 3, 4),
    "base": (256, 4, 8, 16),
  }
  c = for_language("tinysvg", "base", max_len=40, blank_current=True)
  assert (c.width, c.encoder_depth, c.decoder_depth, c.heads) == (
    256,
    4,
    8,
    16,
  )
  assert c.mlp_ratio == 4 and c.blank_current and c.dtype == "float32"
  lang = get_language("tinysvg")
  assert c.canvas_shape == lang.canvas_shape and c.patch == lang.patch == 28
  assert c.vocab_size == Tokenizer(lang).vocab_size and c.max_len == 40
  assert for_language("tinysvg", "base").max_len == lang.seq_len
  # Frozen and hashable: it sits in the model's graphdef.
  with pytest.raises(dataclasses.FrozenInstanceError):
    c.width = 1
  assert hash(c) == hash(dataclasses.replace(c))


def test_training_config_builds_the_model_config():
  from treediff_jax.configs import common

  config = common.policy_config("csg2d", "small")
  config.model.dtype = "bfloat16"
  config.model.max_len = 64
  config.input.blank_current = True
  c = from_training_config(config)
  assert c == for_language(
    "csg2d", "small", max_len=64, blank_current=True, dtype="bfloat16"
  )
  assert c.compute_dtype == jnp.bfloat16 and c.patch == 16


def test_blank_current_models_ignore_the_current_image():
  lang = get_language("rainbow")
  rng = np.random.default_rng(0)
  t, c1, c2 = (
    jnp.asarray(rng.random((2,) + lang.canvas_shape, np.float32))
    for _ in range(3)
  )
  tokens = jnp.asarray(rng.integers(3, 20, (2, lang.seq_len)), jnp.int32)
  policy = _policy("rainbow", blank_current=True)
  value = _value("rainbow", blank_current=True)
  np.testing.assert_array_equal(policy(t, c1, tokens), policy(t, c2, tokens))
  np.testing.assert_array_equal(value(t, c1), value(t, c2))
  both = jnp.stack([c1, c2], axis=1)  # [B, 2, H, W, C]
  many = policy.encode_many(t, both)
  np.testing.assert_array_equal(many[:, 0], many[:, 1])
  score = value.score(t, both)
  np.testing.assert_array_equal(score[:, 0], score[:, 1])
  # The same weights seeing the current image tell them apart, and on a
  # blank image agree with the blanking model.
  seeing = _policy("rainbow")
  assert not np.allclose(seeing(t, c1, tokens), seeing(t, c2, tokens))
  np.testing.assert_array_equal(
    seeing(t, jnp.zeros_like(c1), tokens), policy(t, c1, tokens)
  )
  np.testing.assert_array_equal(
    _value("rainbow")(t, jnp.zeros_like(c1)), value(t, c1)
  )


def test_decoder_pad_id_is_the_tokenizers():
  assert decoder_lib.PAD == tokenizer.PAD


def test_models_do_not_import_the_languages():
  code = (
    "import sys, treediff_jax.models; "
    "print(sorted(m for m in sys.modules if m.startswith('treediff_jax.dsl')))"
  )
  res = subprocess.run(
    [sys.executable, "-c", code], capture_output=True, text=True, check=True
  )
  assert res.stdout.strip() == "[]", res.stdout
