"""REPL Flow: steps of a program on the host, its training examples, the
device append and proposer, and the solver method."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from data_gen.worker import ExampleConfig, make_example
from treediff_jax import render
from treediff_jax.dsl import csg2d
from treediff_jax.dsl.grammar import ProgramSyntaxError
from treediff_jax.dsl.languages import get_language
from treediff_jax.dsl.rng import as_host_rng
from treediff_jax.dsl.sampler import sample
from treediff_jax.dsl.tokenizer import SOS, Tokenizer
from treediff_jax.model_configs import for_language
from treediff_jax.models import PolicyModel
from treediff_jax.search import repl
from treediff_jax.search.beam import SearchConfig
from treediff_jax.search.python_search import python_search
from treediff_jax.search.solver import make_solver

LANG = "csg2d"
G = get_language(LANG).grammar
TOK = Tokenizer(get_language(LANG))
L = get_language(LANG).max_program_len


def _programs(n, seed, lo=2, hi=8):
  rng = as_host_rng(seed)
  return [sample(G, G.start, lo, hi, rng) for _ in range(n)]


def _row(tree):
  return (
    TOK.pad_program(TOK.encode(tree))
    if tree is not None
    else (np.zeros(L, np.int32))
  )


@pytest.fixture(scope="module")
def model():
  return PolicyModel(for_language(LANG, "tiny"), rngs=nnx.Rngs(0))


def test_repl_steps_rebuild_a_program_that_renders_the_same():
  trees = _programs(24, 0)
  rebuilt = []
  for t in trees:
    steps = csg2d.repl_steps(G, t)
    assert len(steps) == t.size and steps[0].op == "+"
    b = csg2d.build_program(G, steps)
    want = csg2d.inorder(G, t)
    assert [(p.kind, p.args) for p in csg2d.inorder(G, b)] == [
      (p.kind, p.args) for p in want
    ]
    assert [p.op for p in csg2d.inorder(G, b)][1:] == [p.op for p in want][1:]
    # Every prefix is the first j steps of the in-order sequence.
    j = len(steps) // 2
    part = csg2d.inorder(G, csg2d.build_program(G, steps[:j]))
    assert [p.args for p in part] == [p.args for p in want[:j]]
    rebuilt.append(b)
  a = render.render_programs(LANG, [G.to_text(t) for t in trees])
  b = render.render_programs(LANG, [G.to_text(t) for t in rebuilt])
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
  assert csg2d.build_program(G, []) is None


def test_append_step_rejects_more_than_one_primitive():
  two = G.parse("(+ (Circle 1 2 3) (Circle 2 3 4))")
  with pytest.raises(ValueError, match="one circle or quad"):
    csg2d.append_step(G, None, csg2d.Step("+", two))
  one = G.parse("(Circle 1 2 3)")
  with pytest.raises(ValueError, match="operator"):
    csg2d.append_step(G, None, csg2d.Step("*", one))


def test_repl_sequences_round_trip_and_bad_actions_raise():
  t = G.parse("(- (Circle 3 4 5) (+ (Quad 1 2 3 4 G) (Circle 2 2 2)))")
  steps = csg2d.repl_steps(G, t)
  for j in range(len(steps)):
    current = csg2d.build_program(G, steps[:j])
    tokens, mask = TOK.repl_sequence(current, steps[j].op, steps[j].primitive)
    split = TOK.split_edit_sequence(tokens)
    assert split.position == 0
    assert mask[np.flatnonzero(tokens == SOS)[0] + 1] == 1.0
    got = TOK.apply_repl_action(split.program, split.replacement)
    assert got == csg2d.build_program(G, steps[: j + 1])
  prim = TOK.encode_text("(Circle 1 2 3)")
  with pytest.raises(ValueError, match="operator"):
    TOK.apply_repl_action([], prim)
  plus = G.terminal_id["+"] + 3
  with pytest.raises(ProgramSyntaxError):
    TOK.apply_repl_action([], np.r_[plus, prim[:-1]])
  both = TOK.encode_text("(+ (Circle 1 2 3) (Circle 1 2 3))")
  with pytest.raises(ValueError, match="one circle or quad"):
    TOK.apply_repl_action([], np.r_[plus, both])


def test_repl_examples_label_the_next_primitive():
  cfg = ExampleConfig(lang=LANG, label_mode="repl", rho=0.0)
  empties = 0
  for i in range(40):
    ex = make_example(7, i, cfg)
    split = TOK.split_edit_sequence(ex["tokens"])
    target = TOK.decode(ex["target_tokens"])
    steps = csg2d.repl_steps(G, target)
    j = len(steps) - int(ex["steps_left"])
    assert 0 <= j < len(steps)
    assert np.array_equal(
      _row(csg2d.build_program(G, steps[:j])), (ex["current_tokens"])
    )
    assert np.array_equal(
      split.program, ex["current_tokens"][: len(split.program)]
    )
    nxt = TOK.apply_repl_action(split.program, split.replacement)
    assert nxt == csg2d.build_program(G, steps[: j + 1])
    empties += j == 0
  assert 0 < empties < 40
  with pytest.raises(ValueError, match="csg2d"):
    ExampleConfig(lang="rainbow", label_mode="repl", rho=0.0)


def test_append_step_matches_the_host_and_flags_overflow():
  rng = np.random.default_rng(3)
  trees = _programs(12, 4, 1, 5) + [None, None]
  prims = _programs(14, 5, 1, 1)
  ops = rng.choice(["+", "-"], size=14)
  ops[-2:] = "+"
  m = max(p.ntok for p in prims)
  prim = np.stack([np.pad(TOK.encode(p), (0, m - p.ntok)) for p in prims])
  rows = np.stack([_row(t) for t in trees])
  out, fits = repl.append_step(
    LANG,
    jnp.asarray(rows),
    jnp.asarray((rows != 0).sum(1), jnp.int32),
    jnp.asarray([G.terminal_id[o] + 3 for o in ops], jnp.int32),
    jnp.asarray(prim),
    jnp.asarray([p.ntok for p in prims], jnp.int32),
  )
  assert np.all(np.asarray(fits))
  for t, p, o, row in zip(trees, prims, ops, np.asarray(out)):
    want = csg2d.append_step(G, t, csg2d.Step(str(o), p))
    assert np.array_equal(row, _row(want))
  counts = np.asarray(repl.primitive_count(LANG, out))
  assert counts.tolist() == [(t.size if t else 0) + 1 for t in trees]
  # A program of L - 10 tokens has no room for "(op  )" and a circle.
  long = np.zeros((1, L), np.int32)
  long[0, : L - 10] = 5
  _, fits = repl.append_step(
    LANG,
    jnp.asarray(long),
    jnp.asarray([L - 10]),
    jnp.asarray([G.terminal_id["+"] + 3]),
    jnp.asarray(prim[:1]),
    jnp.asarray([prims[0].ntok]),
  )
  assert not bool(fits[0])


def test_repl_proposals_append_one_primitive_or_restart(model):
  k = 3
  trees = [None, *_programs(2, 6, 1, 1), *_programs(1, 8, 2, 2)]
  beam = np.stack([_row(t) for t in trees])[None]  # [1, 4, L]
  images = np.asarray(render.renderer(LANG)(jnp.asarray(beam[0])))[None]
  targets = images[:, 3]
  prop = jax.jit(repl.repl_proposer(LANG, model, k, max_primitives=2))
  p = prop(jax.random.key(0), targets, beam, images, jnp.ones((1, 4), bool))
  toks, ok = np.asarray(p.tokens[0]), np.asarray(p.ok[0])
  restart = np.asarray(p.restart[0])
  assert ok.all()
  assert restart.tolist() == [False] * 9 + [True] * 3  # entry 3 is full
  for c in range(len(toks)):
    parent = trees[c // k] if not restart[c] else None
    child = TOK.decode(toks[c])
    assert child.size == (parent.size if parent else 0) + 1
    got, want = (
      csg2d.inorder(G, child),
      (csg2d.inorder(G, parent) if parent else []),
    )
    assert [q.args for q in got[: len(want)]] == [q.args for q in want]
  assert np.all(np.asarray(p.log_prob[0]) < 0)


@pytest.mark.slow  # kept out of CI's 10-minute default run
def test_repl_flow_search_counts_nodes_like_the_python_loop(model):
  targets = np.asarray(
    render.render_programs(
      LANG,
      [
        "(- (Quad 7 C 3 F K) (Circle 2 8 7))",
        "(+ (Circle 4 8 8) (Circle 2 3 3))",
      ],
    )
  )
  starts = np.zeros((2, L), np.int32)  # the empty canvas
  cfg = SearchConfig(beam=3, k=2, max_steps=5, max_nodes=25, rank="log_prob")
  prop = repl.repl_proposer(LANG, model, 2, max_primitives=2)
  key = jax.random.key(5)
  solve = make_solver(LANG, cfg, "repl_flow", model, max_primitives=2)
  got = solve(targets, starts[:, None], key)
  want = python_search(LANG, cfg, prop, targets, starts, key)
  for field in ("nodes", "steps", "solved", "programs"):
    np.testing.assert_array_equal(np.asarray(getattr(got, field)), want[field])
  # Programs stop at two primitives, so depth 2 holds at most 2 + 6 nodes:
  # the rest came from restarts on the empty canvas.
  assert not np.asarray(got.solved).any()
  assert np.asarray(got.nodes).min() > 8
  assert render.validate(LANG, np.asarray(got.programs)) == [None] * 2
  assert all(TOK.decode(p).size <= 2 for p in np.asarray(got.programs))


def test_repl_flow_solver_explains_bad_settings(model):
  with pytest.raises(ValueError, match="csg2d"):
    make_solver(
      "rainbow",
      SearchConfig(rank="log_prob"),
      "repl_flow",
      PolicyModel(for_language("rainbow", "tiny"), rngs=nnx.Rngs(0)),
    )
  with pytest.raises(ValueError, match="log_prob or goal"):
    make_solver(LANG, SearchConfig(rank="value"), "repl_flow", model)
  with pytest.raises(ValueError, match="label_mode repl"):
    make_solver(LANG, SearchConfig(rank="log_prob"), "repl_flow")
