"""Fuzzing: malformed program text raises ProgramSyntaxError, nothing else."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from treediff_jax.dsl.grammar import ProgramSyntaxError
from treediff_jax.dsl.languages import NAMES, get_language
from treediff_jax.dsl.sampler import sample

languages = st.sampled_from(NAMES)


def _parse_or_syntax_error(g, text):
  """Parses `text`; only ProgramSyntaxError may escape. Returns the tree."""
  try:
    tree = g.parse(text)
  except ProgramSyntaxError as e:
    assert e.language == g.name
    assert 0 <= e.position <= len(text)
    return None
  # Whatever parses prints back to the same text, up to ignored whitespace.
  assert g.to_text(tree) == "".join(c for c in text if c not in "\t\n\f\r")
  return tree


@given(languages, st.text(max_size=80))
def test_random_strings(name, text):
  _parse_or_syntax_error(get_language(name).grammar, text)


@given(
  languages,
  st.lists(
    st.sampled_from(
      [
        "(",
        ")",
        " ",
        "Circle",
        "Quad",
        "+",
        "-",
        "A",
        "3",
        "G",
        "Arrange",
        "Move",
        "Box",
        "Ball",
        "red",
        "none",
        "v",
        "h",
        "true",
        "9",
        "\n",
        "x",
      ]
    ),
    max_size=40,
  ),
)
def test_random_token_soup(name, parts):
  _parse_or_syntax_error(get_language(name).grammar, "".join(parts))


@given(languages, st.integers(0, 2**32 - 1), st.data())
def test_mutated_valid_programs(name, seed, data):
  g = get_language(name).grammar
  text = g.to_text(sample(g, "s", 1, 6, np.random.default_rng(seed)))
  i = data.draw(st.integers(0, len(text)))
  j = data.draw(st.integers(i, min(len(text), i + 5)))
  insert = data.draw(st.text(alphabet="() +-ABCGNRvhx019 \n", max_size=4))
  _parse_or_syntax_error(g, text[:i] + insert + text[j:])


def test_a_deleted_parenthesis_is_reported_at_the_end():
  g = get_language("csg2d").grammar
  text = "(+ (Circle 1 2 3) (Circle 4 5 6)"
  try:
    g.parse(text)
  except ProgramSyntaxError as e:
    assert e.position == len(text)
    assert e.expected == (")",)
    assert "ends early" in str(e)
  else:
    raise AssertionError("no error")
