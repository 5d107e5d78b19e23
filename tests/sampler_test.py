"""Property tests of constrained sampling over all three languages."""

import collections

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from treediff_jax.dsl.languages import NAMES, get_language
from treediff_jax.dsl.sampler import sample

languages = st.sampled_from(NAMES)
seeds = st.integers(0, 2**32 - 1)


@given(languages, seeds, st.integers(0, 6), st.integers(0, 6))
def test_sampled_programs_parse_print_back_and_size_in_range(
  name, seed, lo, span
):
  g = get_language(name).grammar
  lo = max(lo, 1)
  tree = sample(g, "s", lo, lo + span, np.random.default_rng(seed))
  assert lo <= tree.size <= lo + span
  text = g.to_text(tree)
  again = g.parse(text)
  assert again == tree
  assert g.to_text(again) == text
  assert again.size == tree.size


@pytest.mark.parametrize("name", NAMES)
def test_primitive_count_is_uniform_over_the_range(name):
  g = get_language(name).grammar
  rng = np.random.default_rng(0)
  counts = collections.Counter(
    sample(g, "s", 2, 8, rng).size for _ in range(1400)
  )
  assert sorted(counts) == list(range(2, 9))
  # 200 expected per count; 5 standard deviations is about 70.
  assert all(130 < c < 270 for c in counts.values()), counts


@given(languages, seeds)
def test_every_nonterminal_can_be_sampled(name, seed):
  g = get_language(name).grammar
  rng = np.random.default_rng(seed)
  for s in range(len(g.symbols)):
    hi = min(g.max_cost[s], g.min_cost[s] + 2)
    t = sample(g, s, 0, hi, rng)
    assert g.symbol_of(t) == s
    assert g.min_cost[s] <= t.size <= hi
    assert g.parse(g.to_text(t), s) == t


def test_infeasible_range_is_a_clear_error():
  g = get_language("csg2d").grammar
  with pytest.raises(ValueError, match="'num' derives 0..0 primitives"):
    sample(g, "num", 1, 2, 0)


def test_same_seed_same_program():
  g = get_language("tinysvg").grammar
  a = [
    g.to_text(sample(g, "s", 2, 8, np.random.default_rng(7))) for _ in range(2)
  ]
  assert a[0] == a[1]
