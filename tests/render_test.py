"""The JAX renderers against the reference renderers and their own contracts."""

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from treediff_jax import render as render_lib
from treediff_jax.dsl.languages import NAMES, get_language
from treediff_jax.dsl.sampler import sample
from treediff_jax.render import csg2d, goal, svg

GOLDEN = pathlib.Path(__file__).resolve().parents[2] / "shared" / "golden"
reference = pytest.importorskip("treediff_jax.render.reference")


def _golden(name):
  path = GOLDEN / f"{name}.npz"
  if not path.exists():
    pytest.skip(f"no golden renders at {path}")
  data = np.load(path)
  return [str(p) for p in data["programs"]], data["images"] / 255.0


def _iou_value(a, b):
  return np.asarray(goal.binary_iou_value(jnp.asarray(a), jnp.asarray(b)))


@pytest.mark.parametrize("name", NAMES)
def test_golden_renders_meet_the_goal(name):
  programs, images = _golden(name)
  ours = render_lib.render_programs(name, programs)
  assert ours.shape == images.shape
  reached = np.asarray(
    goal.goal_reached(name, jnp.asarray(ours), jnp.asarray(images, jnp.float32))
  )
  assert reached.all(), np.flatnonzero(~reached)
  if name == "csg2d":
    assert _iou_value(ours, images).mean() >= 0.99


@pytest.fixture(scope="module", params=NAMES)
def oracle_sample(request):
  """500 sampled programs (2..8 primitives), our renders and the oracle's."""
  name = request.param
  lang = get_language(name)
  rng = np.random.default_rng(2024)
  programs = [sample(lang.grammar, "s", 2, 8, rng) for _ in range(500)]
  ours = render_lib.render_programs(name, programs)
  theirs = np.stack([reference.render(name, p) for p in programs])
  return name, programs, ours, theirs


def test_agreement_with_the_reference_renderers(oracle_sample):
  name, _, ours, theirs = oracle_sample
  reached = np.asarray(
    goal.goal_reached(name, jnp.asarray(ours), jnp.asarray(theirs))
  )
  mad = float(np.abs(ours - theirs).mean())
  print(
    f"{name}: {reached.mean():.4f} of 500 meet the goal against the "
    f"reference render; mean abs pixel difference {mad:.5f}"
  )
  if name == "csg2d":
    iou = _iou_value(ours, theirs)
    print(f"csg2d: mean IoU {iou.mean():.4f}, min {iou.min():.4f}")
    assert iou.mean() >= 0.99
    # Measured 0.992 (4 misses). skia's rasteriser (analytic coverage on
    # large paths, supersampling on small ones, flattened circles) moves the
    # 0.5 level of its coverage by up to ~0.1 px from the true edge, which
    # decides images whose foreground or background has a few dozen pixels;
    # and its path operations occasionally return a wrong region. Neither
    # can be reproduced by an exact renderer: see BENCHMARKS.md.
    assert reached.mean() >= 0.99
  else:
    assert reached.mean() >= 0.99
  assert mad < 0.002


@pytest.mark.slow  # kept out of CI's 10-minute default run
def test_jit_vmap_and_unbatched_calls_agree():
  for name in NAMES:
    lang = get_language(name)
    rng = np.random.default_rng(1)
    programs = [sample(lang.grammar, "s", 1, 5, rng) for _ in range(5)]
    tokens = jnp.asarray(render_lib.pad_tokens(name, programs))
    fn = lambda t, name=name: render_lib.render(name, t)
    batched = np.asarray(jax.jit(fn)(tokens))
    one = lambda row, fn=fn: fn(row[None])[0]
    vmapped = np.asarray(jax.jit(jax.vmap(one))(tokens))
    single = np.stack(
      [np.asarray(fn(tokens[i : i + 1]))[0] for i in range(len(programs))]
    )
    np.testing.assert_allclose(batched, single, atol=1e-5)
    np.testing.assert_allclose(vmapped, single, atol=1e-5)


def test_compiler_options_leave_csg2d_images_unchanged():
  # The CSG2D renderer asks XLA's CPU backend for fast min/max and, on
  # AVX-512 CPUs, 512-bit vectors (xla_options.py); its images, valid
  # programs or not, must be those of a plain jit.
  lang = get_language("csg2d")
  rng = np.random.default_rng(5)
  programs = [sample(lang.grammar, "s", 2, 8, rng) for _ in range(16)]
  tokens = render_lib.pad_tokens("csg2d", programs)
  vocab = render_lib.Tokenizer(lang).vocab_size
  junk = rng.integers(0, vocab, size=(16, tokens.shape[1]))
  tokens = jnp.asarray(np.concatenate([tokens, junk.astype(np.int32)]))
  draw = functools.partial(render_lib.render, "csg2d")
  plain = np.asarray(jax.jit(draw)(tokens))
  options = {
    "xla_cpu_enable_fast_min_max": True,
    "xla_cpu_prefer_vector_width": "512",
  }
  fast = jax.jit(draw, compiler_options=options)
  np.testing.assert_array_equal(np.asarray(fast(tokens)), plain)
  tuned = render_lib.renderer("csg2d")(tokens)
  np.testing.assert_array_equal(np.asarray(tuned), plain)


@pytest.mark.parametrize("name", NAMES)
def test_mixed_lengths_in_one_batch(name):
  lang = get_language(name)
  rng = np.random.default_rng(3)
  programs = [sample(lang.grammar, "s", n, n, rng) for n in (1, 6, 2, 9)]
  together = render_lib.render_programs(name, programs)
  for p, image in zip(programs, together):
    alone = render_lib.render_programs(name, [p])[0]
    np.testing.assert_allclose(image, alone, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_invalid_token_arrays_render_finite_images(name):
  rng = np.random.default_rng(0)
  vocab = render_lib.Tokenizer(get_language(name)).vocab_size
  garbage = rng.integers(0, vocab, size=(6, 64)).astype(np.int32)
  garbage[0] = 0  # all padding
  valid = render_lib.pad_tokens(
    name,
    [
      "(Box red)"
      if name == "rainbow"
      else "(Circle 4 8 8)"
      if name == "csg2d"
      else "(Rectangle 4 2 red none 0)"
    ],
    multiple=64,
  )
  tokens = np.concatenate([garbage, valid])
  images = np.asarray(render_lib.render(name, jnp.asarray(tokens)))
  assert np.isfinite(images).all()
  assert images.min() >= 0 and images.max() <= 1
  reasons = render_lib.validate(name, tokens)
  assert all(r is not None for r in reasons[:6])
  assert reasons[6] is None


def test_render_rejects_wrong_rank_and_bad_text():
  with pytest.raises(ValueError, match=r"\[B, L\]"):
    render_lib.render("csg2d", jnp.zeros((3,), jnp.int32))
  with pytest.raises(render_lib.ProgramSyntaxError, match="program 1"):
    render_lib.render_programs("csg2d", ["(Circle 1 2 3)", "(Circle 1 2)"])


def test_slot_budgets_hold_for_extreme_programs():
  g = get_language("tinysvg").grammar
  leaf = "(Rectangle 1 1 red none 0)"
  moves = leaf
  for _ in range(20):
    moves = f"(Move {moves} 1 0 false false)"
  arranges = leaf
  for _ in range(12):
    arranges = f"(Arrange h {leaf} {arranges} 0)"
  for text, count in ((moves, 21), (arranges, 25)):
    n_tokens = len(g.tokens(g.parse(text)))
    assert svg.max_nodes("tinysvg", n_tokens) >= count
  assert svg.max_leaves("tinysvg", len(g.tokens(g.parse(arranges)))) >= 13
  c = get_language("csg2d").grammar
  circles = "(Circle 1 1 1)"
  for _ in range(9):
    circles = f"(+ {circles} (Circle 1 1 1))"
  assert csg2d.max_primitives(len(c.tokens(c.parse(circles)))) >= 10
  r = get_language("rainbow").grammar
  boxes = "(Box red)"
  for _ in range(9):
    boxes = f"(Arrange h {boxes} (Box red))"
  n_tokens = len(r.tokens(r.parse(boxes)))
  assert svg.max_nodes("rainbow", n_tokens) >= 19
  assert svg.max_leaves("rainbow", n_tokens) >= 10


@pytest.mark.parametrize("name", ["tinysvg", "rainbow"])
def test_per_example_and_batched_painting_agree(name):
  lang = get_language(name)
  rng = np.random.default_rng(4)
  programs = [sample(lang.grammar, "s", 2, 8, rng) for _ in range(6)]
  tokens = jnp.asarray(render_lib.pad_tokens(name, programs))
  a = svg.render_jit(tokens, name, None, True)
  b = svg.render_jit(tokens, name, None, False)
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4)


def test_csg2d_left_fold_quirk():
  # (- A (+ B C)) renders as (A - B) + C.
  a = render_lib.render_programs(
    "csg2d",
    [
      "(- (Circle 4 8 8) (+ (Circle 2 8 8) (Circle 1 2 2)))",
      "(+ (- (Circle 4 8 8) (Circle 2 8 8)) (Circle 1 2 2))",
      "(- (Circle 4 8 8) (+ (Circle 2 8 8) (Circle 1 8 8)))",
    ],
  )
  np.testing.assert_allclose(a[0], a[1], atol=1e-6)
  assert a[0][64, 64, 0] < 0.5  # the hole at the centre is not refilled
  assert a[0][16, 16, 0] > 0.5  # the small circle is added at the end
