"""Property tests of noise (mutations) and reverse paths."""

import collections

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from treediff_jax.dsl import edits
from treediff_jax.dsl.languages import NAMES, get_language
from treediff_jax.dsl.sampler import sample
from treediff_jax.dsl.tree import edit_sites, node_at, position_of

languages = st.sampled_from(NAMES)
seeds = st.integers(0, 2**32 - 1)


def _is_small_edit(g, root, edit):
  """The edit replaces an editable node by a small subtree of its symbol."""
  old = node_at(root, edit.address)
  sites = {s.address for s in edit_sites(g, root)}
  return (
    edit.address in sites
    and g.symbol_of(old) == g.symbol_of(edit.replacement)
    and edit.replacement.size <= edits.SIGMA_SMALL
  )


@given(languages, seeds)
def test_mutation_is_valid_different_and_small(name, seed):
  g = get_language(name).grammar
  rng = np.random.default_rng(seed)
  tree = sample(g, "s", 1, 8, rng)
  e = edits.random_mutation(g, tree, rng)
  assert e is not None
  old = node_at(tree, e.address)
  assert old.size <= edits.SIGMA_SMALL
  assert _is_small_edit(g, tree, e)
  new_tree = e.apply(g, tree)
  assert new_tree != tree
  text = g.to_text(new_tree)
  assert g.to_text(g.parse(text)) == text
  assert g.parse(text) == new_tree
  # Everything outside the edited node is unchanged.
  pos = position_of(g, tree, e.address)
  old_toks, new_toks = g.tokens(tree), g.tokens(new_tree)
  assert old_toks[:pos] == new_toks[:pos]
  assert old_toks[pos + old.ntok :] == new_toks[pos + e.replacement.ntok :]


def test_mutation_picks_counts_uniformly():
  # Nodes of 0, 1 and 2 primitives should be chosen about equally often,
  # although a program has far more 0-primitive nodes (numbers).
  g = get_language("csg2d").grammar
  rng = np.random.default_rng(1)
  counts = collections.Counter()
  for _ in range(900):
    tree = sample(g, "s", 4, 8, rng)
    e = edits.random_mutation(g, tree, rng)
    counts[node_at(tree, e.address).size] += 1
  assert all(240 < counts[k] < 360 for k in (0, 1, 2)), counts


@given(languages, seeds, st.integers(1, 5))
def test_noise_applies_t_valid_mutations(name, seed, steps):
  g = get_language(name).grammar
  rng = np.random.default_rng(seed)
  tree = sample(g, "s", 2, 8, rng)
  noised, muts = edits.noise(g, tree, steps, rng)
  assert len(muts) == steps
  assert edits.apply_edits(g, tree, muts) == noised
  assert g.parse(g.to_text(noised)) == noised


@given(languages, seeds, st.booleans(), st.integers(1, 5))
def test_reverse_path_reaches_target_with_small_valid_steps(
  name, seed, random_start, steps
):
  g = get_language(name).grammar
  rng = np.random.default_rng(seed)
  target = sample(g, "s", 2, 8, rng)
  if random_start:
    source = sample(g, "s", 2, 8, rng)
  else:
    source, _ = edits.noise(g, target, steps, rng)
  path = edits.reverse_path(g, source, target, rng)
  assert path is not None
  current = source
  for e in path:
    assert _is_small_edit(g, current, e)
    nxt = e.apply(g, current)
    assert nxt != current
    assert g.parse(g.to_text(nxt)) == nxt
    current = nxt
  assert current == target
  assert (len(path) == 0) == (source == target)


@given(languages, seeds)
def test_reverse_path_between_unrelated_large_programs(name, seed):
  g = get_language(name).grammar
  rng = np.random.default_rng(seed)
  a = sample(g, "s", 10, 14, rng)
  b = sample(g, "s", 10, 14, rng)
  path = edits.reverse_path(g, a, b, rng)
  assert path is not None
  assert edits.apply_edits(g, a, path) == b
  assert all(e.replacement.size <= edits.SIGMA_SMALL for e in path)


@pytest.mark.parametrize("name", NAMES)
def test_paths_from_noise_are_short(name):
  g = get_language(name).grammar
  rng = np.random.default_rng(0)
  lengths = collections.defaultdict(list)
  for _ in range(400):
    target = sample(g, "s", 2, 8, rng)
    t = int(rng.integers(1, 6))
    source, muts = edits.noise(g, target, t, rng)
    path = edits.reverse_path(g, source, target, rng)
    lengths[t].append(len(path))
    if t == 1:
      # Undoing one mutation edits only inside its replacement, at most once
      # per editable node there.
      assert len(path) <= len(edit_sites(g, muts[0].replacement))
  summary = {
    t: (round(float(np.mean(v)), 2), int(np.max(v)))
    for t, v in sorted(lengths.items())
  }
  print(f"{name}: path length by noise steps t -> (mean, max): {summary}")
  assert np.mean(sum(lengths.values(), [])) <= 5.0, summary
  assert max(max(v) for v in lengths.values()) <= 25, summary


def test_small_approximation_keeps_production_and_small_parts():
  g = get_language("csg2d").grammar
  target = g.parse("(- (Circle 1 2 3) (+ (Quad 1 2 3 4 H) (Circle 5 6 7)))")
  approx = edits.small_approximation(g, target, 2, np.random.default_rng(0))
  assert approx.size == 2
  text = g.to_text(approx)
  assert text.startswith("(- (Circle 1 2 3) (")
  assert approx.prod == target.prod


def test_invert_last_mutation_restores_the_program():
  g = get_language("rainbow").grammar
  rng = np.random.default_rng(3)
  tree = sample(g, "s", 3, 5, rng)
  e = edits.random_mutation(g, tree, rng)
  after = e.apply(g, tree)
  assert edits.invert_last_mutation(tree, e).apply(g, after) == tree
