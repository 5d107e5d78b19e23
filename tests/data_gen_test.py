"""Tests of the example generator: shapes, determinism, a fixed regression."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from data_gen.worker import ExampleConfig, make_batch, make_example
from treediff_jax.dsl.examples import make_training_example
from treediff_jax.dsl.languages import NAMES, get_language

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _digest(batch):
  h = hashlib.sha256()
  for k in sorted(batch):
    h.update(k.encode())
    h.update(np.ascontiguousarray(batch[k]).tobytes())
  return h.hexdigest()


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_dtypes(name):
  lang = get_language(name)
  b = make_batch(0, range(8), ExampleConfig(lang=name))
  assert b["tokens"].shape == (8, lang.seq_len)
  assert b["tokens"].dtype == np.int32
  assert b["loss_mask"].shape == (8, lang.seq_len)
  assert b["loss_mask"].dtype == np.float32
  assert b["current_tokens"].shape == (8, lang.max_program_len)
  assert b["target_tokens"].shape == (8, lang.max_program_len)
  assert b["steps_left"].shape == (8,) and b["steps_left"].dtype == np.int32
  assert np.all(b["steps_left"] >= 1)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_examples_other_seed_other_examples(name):
  config = ExampleConfig(lang=name)
  a = make_batch(3, range(16), config)
  b = make_batch(3, range(16), config)
  c = make_batch(4, range(16), config)
  assert _digest(a) == _digest(b)
  assert _digest(a) != _digest(c)
  # Example i does not depend on which other examples were made.
  single = make_example(3, 5, config)
  assert all(np.array_equal(single[k], a[k][5]) for k in single)


def test_examples_are_identical_in_a_fresh_process_with_another_hash_seed():
  code = (
    "from data_gen.worker import make_batch, ExampleConfig;"
    "import hashlib, numpy as np;"
    "b = make_batch(11, range(12), ExampleConfig(lang='tinysvg'));"
    "h = hashlib.sha256();"
    "[h.update(np.ascontiguousarray(b[k]).tobytes()) for k in sorted(b)];"
    "print(h.hexdigest())"
  )
  outs = set()
  for hash_seed in ("1", "2"):
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    out = subprocess.run(
      [sys.executable, "-c", code],
      cwd=REPO,
      env=env,
      capture_output=True,
      text=True,
      check=True,
    )
    outs.add(out.stdout.strip())
  assert len(outs) == 1


# The first examples of seed 0 for CSG2D. If this changes, the data stream of
# every seeded run changes: update it only together with a note on why.
REGRESSION_CSG2D_SEED0 = [
  ("(+ (+ (Circle 8 4 C) (Circle 2 2 D)) (Circle C F F))", 27, 6),
]


def test_fixed_seed_regression():
  from treediff_jax.dsl.tokenizer import Tokenizer

  tok = Tokenizer(get_language("csg2d"))
  ex = make_example(0, 299, ExampleConfig())
  got = (
    tok.decode_text(ex["current_tokens"]),
    int(ex["edit_position"]),
    int(ex["steps_left"]),
  )
  assert got == REGRESSION_CSG2D_SEED0[0]


def test_rho_one_starts_are_random_and_rho_zero_are_noised():
  lang = get_language("rainbow")
  rng = np.random.default_rng(0)
  assert all(
    make_training_example(lang, rng, rho=1.0).random_start for _ in range(20)
  )
  assert not any(
    make_training_example(lang, rng, rho=0.0).random_start for _ in range(20)
  )


def test_last_mutation_labels_undo_the_last_mutation():
  lang = get_language("csg2d")
  g = lang.grammar
  rng = np.random.default_rng(0)
  for _ in range(20):
    ex = make_training_example(
      lang, rng, rho=0.0, label_mode="last_mutation", max_noise_steps=1
    )
    assert ex.edit.apply(g, ex.current) == ex.target
  with pytest.raises(ValueError, match="rho=0"):
    make_training_example(lang, rng, label_mode="last_mutation")


def test_bad_settings_are_named():
  lang = get_language("csg2d")
  with pytest.raises(ValueError, match="label_mode"):
    make_training_example(lang, 0, label_mode="oracle")
  with pytest.raises(ValueError, match="rho"):
    make_training_example(lang, 0, rho=1.5)
  with pytest.raises(ValueError, match="no training example"):
    make_training_example(lang, 0, target_filter=lambda t: False, max_tries=5)
