"""Rankings and the proposal mix on handmade cases with known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from treediff_jax import render
from treediff_jax.dsl.languages import get_language
from treediff_jax.dsl.tokenizer import Tokenizer
from treediff_jax.search import propose as proposers
from treediff_jax.search import ranking
from treediff_jax.search.beam import SearchConfig, search

LANG = "csg2d"


def _frontier(**kw):
  base = dict(
    goal=jnp.array([[0.5, 0.5, 0.9]]),
    log_prob=jnp.array([[-1.0, -3.0, -2.0]]),
    parent_score=jnp.array([[0.0, 0.0, -4.0]]),
    value=jnp.array([[3.0, 1.0, 5.0]]),
  )
  base.update(kw)
  return ranking.Frontier(**base)


@pytest.mark.parametrize(
  "name, weights, best, carried",
  [
    ("value", {}, 1, [0.0, 0.0, 0.0]),  # fewest edits left
    ("log_prob", {}, 0, [-1.0, -3.0, -6.0]),  # path sum: -1 > -3 > -6
    ("goal", {}, 2, [0.0, 0.0, 0.0]),
    # The goal value leads; the value model decides between equal goals,
    # and outweighs the goal only when weighted so.
    ("goal_value", dict(value_weight=0.01), 2, None),
    ("goal_value", dict(value_weight=1.0), 1, None),
    ("goal_log_prob", dict(log_prob_weight=0.01), 2, None),
    ("goal_log_prob", dict(log_prob_weight=1.0), 0, None),
  ],
)
def test_each_ranking_puts_the_known_best_first(name, weights, best, carried):
  config = SearchConfig(rank=name, **weights)
  rank, carry = ranking.get(name).score(_frontier(), config)
  assert int(jnp.argmax(rank[0])) == best
  if carried is not None:
    np.testing.assert_allclose(carry[0], carried)


def test_ties_in_the_goal_value_go_to_the_learned_signal():
  f = _frontier(goal=jnp.array([[0.7, 0.7, 0.7]]))
  config = SearchConfig(rank="goal_value")
  assert int(jnp.argmax(ranking.get("goal_value").score(f, config)[0])) == 1
  config = SearchConfig(rank="goal_log_prob")
  assert int(jnp.argmax(ranking.get("goal_log_prob").score(f, config)[0])) == 0


def test_unknown_ranking_is_named():
  with pytest.raises(ValueError, match="unknown ranking 'x'.*goal_value"):
    SearchConfig(rank="x")
  with pytest.raises(ValueError, match="uniform_share"):
    SearchConfig(uniform_share=1.5)


def _rows(texts):
  tok = Tokenizer(get_language(LANG))
  return jnp.asarray(render.pad_tokens(LANG, texts, tok.max_program_len))


# Step 1 offers A (overlaps the target: the better goal value, but the
# lower log-probability and the larger predicted distance) and B; step 2
# reaches the target only from A. So the target is solved exactly when the
# ranking keeps A.
START, A, B, TARGET, JUNK = (
  "(Circle 1 2 3)",
  "(Circle 4 7 7)",
  "(Circle 1 2 2)",
  "(Circle 7 7 7)",
  "(Circle 9 9 2)",
)


def _two_step_proposer():
  rows = _rows([A, B, TARGET, JUNK])

  def propose(key, targets, beam, images, live):
    del key, targets, images
    from_a = jnp.all(beam[:, 0] == rows[0], axis=-1)  # [B]
    step1 = jnp.all(beam[:, 0] == _rows([START])[0], axis=-1)
    cands = jnp.where(
      step1[:, None, None],
      rows[None, :2],
      jnp.where(
        from_a[:, None, None], rows[None, 2:], rows[None, 3:][:, [0, 0]]
      ),
    )
    ok = jnp.ones((beam.shape[0], 2), bool) & live[:, :1]
    log_prob = jnp.broadcast_to(jnp.array([-5.0, -1.0]), ok.shape)
    return proposers.Proposals(cands, ok, log_prob)

  return propose


def _value_fn(targets, images):
  del targets
  return 10.0 * images.mean(axis=(2, 3, 4))  # more ink, more edits left


@pytest.mark.parametrize(
  "rank, weights, keeps_a",
  [
    ("goal", {}, True),
    pytest.param("log_prob", {}, False, marks=pytest.mark.slow),
    pytest.param("value", {}, False, marks=pytest.mark.slow),
    ("goal_value", dict(value_weight=100.0), False),
    pytest.param(
      "goal_value", dict(value_weight=1e-4), True, marks=pytest.mark.slow
    ),
    ("goal_log_prob", dict(log_prob_weight=100.0), False),
    pytest.param(
      "goal_log_prob", dict(log_prob_weight=1e-4), True, marks=pytest.mark.slow
    ),
  ],
)
def test_the_search_keeps_what_the_ranking_puts_first(rank, weights, keeps_a):
  targets = render.render_programs(LANG, [TARGET])
  cfg = SearchConfig(beam=1, k=2, max_steps=2, rank=rank, **weights)
  r = jax.jit(
    lambda t, s, k: search(LANG, cfg, _two_step_proposer(), _value_fn, t, s, k)
  )(targets, _rows([START]), jax.random.key(0))
  assert bool(r.solved[0]) == keeps_a


def _constant_proposer(text, log_prob, k):
  row = _rows([text])[0]

  def propose(key, targets, beam, images, live):
    del key, targets, images
    b, w = beam.shape[:2]
    tokens = jnp.broadcast_to(row, (b, w * k, row.shape[0]))
    ok = jnp.repeat(live, k, axis=1)
    return proposers.Proposals(tokens, ok, jnp.full((b, w * k), log_prob))

  return propose


def test_mixed_proposer_lays_out_each_entrys_edits_in_turn():
  mixed = proposers.mixed_proposer(
    [(_constant_proposer(A, -1.0, 2), 2), (_constant_proposer(B, -2.0, 1), 1)]
  )
  beam = jnp.zeros((2, 3, get_language(LANG).max_program_len), jnp.int32)
  live = jnp.array([[True, False, True], [True, True, True]])
  p = mixed(jax.random.key(0), None, beam, None, live)
  assert p.tokens.shape == (2, 9, beam.shape[-1])
  # Entry w's candidates are 3w, 3w + 1 (policy) and 3w + 2 (uniform).
  np.testing.assert_allclose(p.log_prob[0], [-1, -1, -2] * 3)
  np.testing.assert_array_equal(p.ok[0], [True] * 3 + [False] * 3 + [True] * 3)
  a, b = np.asarray(_rows([A, B]))
  np.testing.assert_array_equal(np.asarray(p.tokens[1, 2]), b)
  np.testing.assert_array_equal(np.asarray(p.tokens[1, 4]), a)


def test_uniform_share_sets_how_many_edits_are_random():
  assert SearchConfig(k=4, uniform_share=0.25).uniform_k == 1
  assert SearchConfig(k=3, uniform_share=0.0).uniform_k == 0
  assert SearchConfig(k=48, uniform_share=1.0).uniform_k == 48


@pytest.mark.slow  # a policy search of up to 3,000 nodes
def test_a_policy_search_with_uniform_share_makes_hill_climbings_moves():
  """With a random-weight policy, the uniform share still finds targets
  one or two number edits away (as hill climbing does); a uniform share of
  0 leaves the same search to the untrained policy."""
  from flax import nnx

  from treediff_jax.model_configs import for_language
  from treediff_jax.models import PolicyModel
  from treediff_jax.search.solver import make_solver

  policy = PolicyModel(for_language(LANG, "tiny"), rngs=nnx.Rngs(0))
  programs = ["(Circle 8 8 6)", "(Circle A 8 4)", "(Circle 6 9 4)"]
  targets = render.render_programs(LANG, programs)
  starts = render.pad_tokens(LANG, ["(Circle 8 8 4)"] * 3, 160)
  cfg = SearchConfig(
    beam=4, k=48, max_steps=30, max_nodes=3000, rank="goal", uniform_share=0.5
  )
  solve = make_solver(LANG, cfg, "tree_diffusion_search", policy)
  r = solve(targets, starts, jax.random.key(0))
  assert np.asarray(r.solved).all(), np.asarray(r.best_goal)
