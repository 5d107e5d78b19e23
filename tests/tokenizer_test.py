"""Tests of token ids, the edit-sequence layout and edit labels."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from data_gen.worker import ExampleConfig, example_rng, make_example
from treediff_jax.dsl import edits
from treediff_jax.dsl.examples import make_training_example
from treediff_jax.dsl.grammar import ProgramSyntaxError
from treediff_jax.dsl.languages import NAMES, get_language
from treediff_jax.dsl.sampler import sample
from treediff_jax.dsl.tokenizer import EOS, PAD, SOS, Tokenizer

languages = st.sampled_from(NAMES)
seeds = st.integers(0, 2**32 - 1)


@given(languages, seeds)
def test_token_round_trip_is_exact(name, seed):
  lang = get_language(name)
  tok = Tokenizer(lang)
  tree = sample(lang.grammar, "s", 1, 10, np.random.default_rng(seed))
  ids = tok.encode(tree)
  assert ids.dtype == np.int32
  assert np.all((ids >= 3) & (ids < tok.pos_offset))
  assert tok.decode(ids) == tree
  assert tok.decode_text(ids) == lang.grammar.to_text(tree)
  assert np.array_equal(tok.encode_text(lang.grammar.to_text(tree)), ids)
  if len(ids) <= lang.max_program_len:
    padded = tok.pad_program(ids)
    assert padded.shape == (lang.max_program_len,)
    assert tok.decode(padded) == tree


def test_vocabulary_layout():
  tok = Tokenizer(get_language("csg2d"))
  names = tok.token_strings()
  assert names[:3] == ["<PAD>", "<SOS>", "<EOS>"]
  assert len(names) == tok.vocab_size
  assert names[tok.pos_offset] == "<POS 0>"
  assert names[-1] == f"<POS {tok.max_program_len - 1}>"
  assert {"(", ")", " ", "Circle", "Quad", "+", "-"} <= set(names)


@given(languages, seeds)
def test_edit_sequence_layout_and_mask(name, seed):
  lang = get_language(name)
  tok = Tokenizer(lang)
  ex = make_training_example(lang, example_rng(seed, 0))
  if ex.current.ntok > lang.max_program_len:
    return
  tokens, mask = tok.edit_sequence(ex.current, ex.position, ex.edit.replacement)
  assert tokens.shape == mask.shape == (lang.seq_len,)
  n, m = ex.current.ntok, ex.edit.replacement.ntok
  assert tokens[n] == SOS and tokens[n + 2 + m] == EOS
  assert np.all(tokens[n + 3 + m :] == PAD)
  assert np.array_equal(np.flatnonzero(mask), np.arange(n + 1, n + 3 + m))
  split = tok.split_edit_sequence(tokens)
  assert split.position == ex.position
  assert tok.decode(split.program) == ex.current
  g = lang.grammar
  assert (
    tok.decode(split.replacement, g.symbol_of(ex.edit.replacement))
    == ex.edit.replacement
  )


@given(languages, seeds)
def test_edit_label_gives_the_next_program_on_the_path(name, seed):
  lang = get_language(name)
  g = lang.grammar
  tok = Tokenizer(lang)
  rng = example_rng(seed, 1)
  target = sample(g, "s", 2, 8, rng)
  source, _ = edits.noise(g, target, 3, rng)
  path = edits.reverse_path(g, source, target, rng)
  current = source
  for e in path:
    nxt = e.apply(g, current)
    got = tok.apply_edit(
      tok.encode(current), e.position(g, current), tok.encode(e.replacement)
    )
    assert got == nxt
    current = nxt
  assert current == target


@given(languages, seeds, st.integers(0, 10**6))
def test_example_arrays_decode_to_a_consistent_example(name, seed, index):
  config = ExampleConfig(lang=name)
  ex = make_example(seed, index, config)
  lang = get_language(name)
  tok = Tokenizer(lang)
  split = tok.split_edit_sequence(ex["tokens"])
  current = tok.decode(ex["current_tokens"])
  target = tok.decode(ex["target_tokens"])
  assert tok.decode(split.program) == current
  assert split.position == int(ex["edit_position"])
  after = tok.apply_edit(split.program, split.position, split.replacement)
  assert after.size >= 1
  steps = int(ex["steps_left"])
  assert steps >= 1
  # One step left means the label edit reaches the target exactly.
  if steps == 1:
    assert after == target
  else:
    assert current != target


def test_apply_edit_rejects_bad_positions_and_replacements():
  lang = get_language("csg2d")
  tok = Tokenizer(lang)
  prog = tok.encode_text("(+ (Circle 1 2 3) (Circle 4 5 6))")
  with pytest.raises(ValueError, match="no editable node starts at token 2"):
    tok.apply_edit(prog, 2, tok.encode_text("(Circle 1 1 1)"))
  # Token 6 is the first number of the first circle: a `num` node.
  assert tok.decode_text(prog[6:7]) == "1"
  with pytest.raises(ProgramSyntaxError):
    tok.apply_edit(prog, 6, tok.encode_text("(Circle 1 1 1)"))
  nine = tok.encode_text("(Circle 9 1 1)")[3:4]
  out = tok.apply_edit(prog, 6, nine)
  assert lang.grammar.to_text(out) == "(+ (Circle 9 2 3) (Circle 4 5 6))"


def test_decoding_special_tokens_is_a_syntax_error():
  tok = Tokenizer(get_language("rainbow"))
  ids = tok.encode_text("(Box red)")
  bad = np.concatenate([ids[:2], [SOS], ids[2:]])
  with pytest.raises(ProgramSyntaxError, match="index 2"):
    tok.decode(bad)


def test_too_long_program_is_refused_by_name():
  lang = get_language("rainbow")
  tok = Tokenizer(lang)
  tree = sample(lang.grammar, "s", 60, 60, 0)
  with pytest.raises(ValueError, match="exceeds max_program_len"):
    tok.pad_program(tok.encode(tree))
