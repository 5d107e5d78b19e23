"""Spatial policies: program tokens see the image under their primitive."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from treediff_jax import exported, render
from treediff_jax.configs import policy_tiny
from treediff_jax.dsl.languages import get_language
from treediff_jax.dsl.tokenizer import EOS, PAD, SOS, Tokenizer
from treediff_jax.model_configs import (
  for_language,
  from_training_config,
  spatial_anchors,
)
from treediff_jax.models import PolicyModel
from treediff_jax.models import spatial as spatial_lib
from treediff_jax.search.beam import SearchConfig
from treediff_jax.search.solver import make_solver, random_starts
from treediff_jax.trainers import common

CSG = get_language("csg2d")
TOK = Tokenizer(CSG)


def _spatial_policy(seed=0, scale=0.0, boxes=False):
  """A tiny spatial csg2d policy; `scale` > 0 fills the (zero-initialised)
  projections so that the image under each primitive shows in the output."""
  model = PolicyModel(
    for_language("csg2d", "tiny", spatial=True, box_features=boxes),
    rngs=nnx.Rngs(seed),
  )
  if scale:
    kernels = [model.decoder.spatial_proj.kernel]
    if boxes:
      kernels.append(model.decoder.box_proj.kernel)
    for i, k in enumerate(kernels):
      key = jax.random.fold_in(jax.random.key(seed), i)
      k.set_value(scale * jax.random.normal(key, k.shape))
  return model


def test_spatial_special_ids_are_the_tokenizers():
  assert (spatial_lib.PAD, spatial_lib.SOS) == (PAD, SOS)


def test_anchors_are_read_from_the_tokenized_primitives():
  anchors, digit0 = spatial_anchors(CSG)
  strings = TOK.token_strings()
  assert strings[digit0] == "0"
  by_kw = {strings[a[0]]: a[1:] for a in anchors}
  # "( Circle _ r _ x _ y )": centre x, y, last ")", radius twice, 100%;
  # "( Quad _ x _ y _ w _ h _ a )": x, y, ")", w, h, 71% (rotations).
  assert by_kw == {
    "Circle": (4, 6, 7, 2, 2, 100),
    "Quad": (2, 4, 11, 6, 8, 71),
  }


def test_each_program_token_maps_to_the_patch_under_its_primitive():
  ids = TOK.encode_text("(+ (Circle 1 2 3) (Quad F 4 3 4 G))")
  edit = [SOS, TOK.pos_offset + 3, TOK.token_strings().index("5"), EOS]
  seq = jnp.asarray(np.concatenate([ids, edit])[None], jnp.int32)
  cfg = for_language("csg2d", "tiny", spatial=True)
  g = CSG.canvas_shape[0] // CSG.patch
  located = spatial_lib.locate(seq, cfg.anchors, cfg.digit0)
  index, valid = spatial_lib.anchor_patches(
    located, cfg.unit_px, cfg.patch, (g, g)
  )
  index, valid = np.asarray(index[0]), np.asarray(valid[0])
  circle = slice(3, 12)  # "(" .. ")" of the circle
  quad = slice(13, 26)
  # Circle centre (16, 24) px, Quad centre (120, 32) px; 16-px patches.
  assert valid[circle].all() and (index[circle] == 1 * g + 1).all()
  assert valid[quad].all() and (index[quad] == 2 * g + 7).all()
  outside = np.ones(len(index), bool)
  outside[circle] = outside[quad] = False
  # "(+ " before, the spaces and ")" between, and every edit token.
  assert not valid[outside].any()


def test_a_zero_projection_gives_the_non_spatial_model():
  """A spatial model whose projection is zero (as initialised) computes
  what the non-spatial model with the same other weights computes."""
  spatial = _spatial_policy(seed=3)
  plain = PolicyModel(for_language("csg2d", "tiny"), rngs=nnx.Rngs(3))
  kept = common._copy_params(plain, spatial)
  assert sorted(kept) == [
    "decoder/spatial_norm/bias",
    "decoder/spatial_norm/scale",
    "decoder/spatial_proj/bias",
    "decoder/spatial_proj/kernel",
  ]
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.random((2, 1) + CSG.canvas_shape, np.float32))
  ids = TOK.encode_text("(- (Circle 4 5 6) (Circle 2 8 8))")
  seq = jnp.asarray(np.concatenate([ids, [SOS]])[None], jnp.int32)
  np.testing.assert_allclose(
    spatial(images[0], images[1], seq),
    plain(images[0], images[1], seq),
    atol=1e-5,
  )


def test_the_image_under_a_primitive_reaches_its_tokens_only():
  """Changing the image token under one primitive changes the spatial
  input of that primitive's tokens and of no other token."""
  model = _spatial_policy(seed=4, scale=0.5)
  ids = TOK.encode_text("(+ (Circle 1 2 2) (Circle 1 C C))")
  seq = jnp.asarray(ids[None], jnp.int32)
  cfg = model.config
  located = spatial_lib.locate(seq, cfg.anchors, cfg.digit0)
  rng = np.random.default_rng(3)
  memory = jnp.asarray(
    rng.normal(size=(1, 64, model.config.width)), jnp.float32
  )
  # A new image token under Circle 1 2 2 (not a constant shift, which the
  # layer norm removes).
  changed = memory.at[0, 1 * 8 + 1].set(rng.normal(size=model.config.width))
  d = np.abs(
    np.asarray(model.decoder._spatial(located, changed))
    - np.asarray(model.decoder._spatial(located, memory))
  ).max(axis=-1)[0]
  first = np.zeros(len(ids), bool)
  first[3:12] = True  # "(" .. ")" of the first circle
  assert (d[first] > 1e-3).all()
  np.testing.assert_array_equal(d[~first], 0)


@pytest.mark.parametrize("boxes", [False, True])
def test_cached_decoding_equals_the_full_pass(boxes):
  model = _spatial_policy(seed=5, scale=0.3, boxes=boxes)
  texts = ["(Circle 3 4 5)", "(+ (Quad 1 2 3 4 H) (Circle 2 9 9))"]
  programs = [TOK.encode_text(t) for t in texts]
  lp = max(len(p) for p in programs)
  padded = np.zeros((2, lp), np.int32)
  for i, p in enumerate(programs):
    padded[i, : len(p)] = p
  digit = TOK.token_strings().index("7")
  edit = np.array([SOS, TOK.pos_offset + 1, digit, EOS], np.int32)
  seqs = np.zeros((2, lp + len(edit)), np.int32)
  for i, p in enumerate(programs):
    seqs[i, : len(p)] = p
    seqs[i, len(p) : len(p) + len(edit)] = edit
  rng = np.random.default_rng(1)
  images = jnp.asarray(rng.random((2, 2) + CSG.canvas_shape, np.float32))
  memory = model.encode(images[0], images[1])
  full = model.decoder(jnp.asarray(seqs), memory)
  prefix = model.decoder.prefill(jnp.asarray(padded), memory)
  cache = model.decoder.empty_edit_cache(prefix, 1, len(edit))
  at = np.array([len(p) for p in programs])
  for slot in range(len(edit)):
    logits, cache = model.decoder.decode_step(
      prefix, cache, jnp.asarray(edit[[slot, slot]]), jnp.int32(slot)
    )
    np.testing.assert_allclose(logits, full[np.arange(2), at + slot], atol=2e-5)


def test_box_features_measure_the_difference_inside_each_box():
  """A target square that fills the circle's box exactly and one cell of
  the quad's: the statistics say so."""
  ids = TOK.encode_text("(+ (Circle 2 4 4) (Quad 8 8 4 2 H))")
  target = np.zeros((1, 1) + CSG.canvas_shape, np.float32)
  target[0, 0, 16:48, 16:48] = 1  # cells [2, 6) x [2, 6)
  current = np.zeros_like(target)
  cells = spatial_lib.cell_tables(jnp.asarray(target), jnp.asarray(current), 8)[
    :, 0
  ]
  assert cells.shape == (1, 17, 17, 3)
  anchors, digit0 = spatial_anchors(CSG)
  located = spatial_lib.locate(jnp.asarray(ids[None]), anchors, digit0)
  feats = spatial_lib.box_features(located, cells)
  valid = located.valid
  feats = np.asarray(feats[0])
  circle, quad = feats[4], feats[14]  # the keyword tokens
  # Circle 2 at (4, 4): box [2, 6)^2, all of it differs, all of the
  # difference is in it; its target mean is 1, current 0; 16 of 256 cells.
  np.testing.assert_allclose(
    circle[[0, 4, 5, 6, 7]], [1, 1, 1, 0, 16 / 256], rtol=1e-3, atol=1e-6
  )
  # Quad 4 x 2 at (8, 8), 45 degrees: half extent ceil(4 * 0.71) = 3, box
  # [5, 11)^2; it holds cell (5, 5) of the square: 1 of 36 cells.
  np.testing.assert_allclose(
    quad[[0, 4, 7]], [1 / 36, 1 / 16, 36 / 256], rtol=1e-3
  )
  assert not np.asarray(valid[0])[[0, 1, 2, 12, 26]].any()
  np.testing.assert_array_equal(feats[[0, 1, 2, 12, 26]], 0)


def test_box_models_need_image_tokens_with_cells():
  model = _spatial_policy(seed=8, boxes=True)
  ids = jnp.asarray(TOK.encode_text("(Circle 1 2 3)")[None])
  memory = jnp.zeros((1, 64, model.config.width))
  with pytest.raises(ValueError, match="ImageTokens"):
    model.decoder(ids, memory)


def test_languages_without_anchors_are_refused_by_name():
  with pytest.raises(NotImplementedError, match="tinysvg"):
    for_language("tinysvg", "tiny", spatial=True)


def test_training_starts_from_an_exported_non_spatial_model(tmp_path):
  """init_from an exported model copies its parameters by path into a
  spatial model and keeps the new ones at their initial values."""
  c = policy_tiny.get_config("lang=csg2d")
  plain = PolicyModel(for_language("csg2d", "tiny"), rngs=nnx.Rngs(7))
  folder = exported.save(plain, c, str(tmp_path / "plain"))
  c.model.spatial = True
  c.init_from = folder
  model = PolicyModel(from_training_config(c), rngs=nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, common.make_optimizer(c), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))

  class _NoCheckpoints:
    def latest_step(self):
      return None

  state, step = common._restore_or_init(c, graphdef, state, _NoCheckpoints())
  assert step == 0
  model, _ = nnx.merge(graphdef, state)
  np.testing.assert_array_equal(
    model.decoder.embed.embedding[...], plain.decoder.embed.embedding[...]
  )
  np.testing.assert_array_equal(model.decoder.spatial_proj.kernel[...], 0)


@pytest.mark.parametrize("boxes", [False, True])
def test_a_spatial_policy_drives_the_search(boxes):
  policy = _spatial_policy(seed=6, scale=0.1, boxes=boxes)
  solve = make_solver(
    "csg2d",
    SearchConfig(beam=4, k=3, max_steps=2, rank="log_prob"),
    "tree_diffusion",
    policy,
    None,
  )
  rng = np.random.default_rng(2)
  starts = random_starts("csg2d", 2, rng)
  targets = np.asarray(
    render.render("csg2d", jnp.asarray(random_starts("csg2d", 2, rng)))
  )
  r = solve(targets, starts, jax.random.key(0))
  assert render.validate("csg2d", np.asarray(r.programs)) == [None] * 2


def test_box_features_stay_finite_where_the_images_agree():
  """Boxes where target and current agree, on images that differ
  elsewhere: the summed-area table's round-off must not turn into NaNs."""
  rng = np.random.default_rng(4)
  target = rng.random((8, 1) + CSG.canvas_shape).astype(np.float32)
  current = target.copy()
  current[:, :, :40, :40] = rng.random((8, 1, 40, 40, 1))
  cells = spatial_lib.cell_tables(jnp.asarray(target), jnp.asarray(current), 8)[
    :, 0
  ]
  ids = TOK.encode_text("(+ (Circle 3 C C) (Quad D 9 2 3 I))")
  anchors, digit0 = spatial_anchors(CSG)
  located = spatial_lib.locate(
    jnp.asarray(np.repeat(ids[None], 8, 0)), anchors, digit0
  )
  feats = spatial_lib.box_features(located, cells)
  valid = located.valid
  feats = np.asarray(feats)
  assert np.isfinite(feats).all() and (feats >= 0).all()
  assert np.asarray(valid).any()
