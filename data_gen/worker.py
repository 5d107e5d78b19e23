"""Training examples as fixed-shape NumPy arrays, one pure function per example.

`make_example(seed, index, config)` depends only on its arguments, so a data
stream is reproducible from (seed, index) and a resumed run continues where
it stopped. This module never imports jax: it runs in worker processes.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from data_gen import filters
from treediff_jax.dsl import csg2d
from treediff_jax.dsl.examples import LABEL_MODES, make_training_example
from treediff_jax.dsl.languages import get_language
from treediff_jax.dsl.rng import HostRng
from treediff_jax.dsl.sampler import sample
from treediff_jax.dsl.tokenizer import Tokenizer

# "whole_program": the autoregressive baseline's examples, the target program
# decoded from a blank current program; "repl": REPL Flow's examples (CSG2D),
# the next primitive of the target's in-order sequence after the ones placed
# so far (see `make_example`).
ALL_LABEL_MODES = LABEL_MODES + ("whole_program", "repl")


@dataclasses.dataclass(frozen=True)
class ExampleConfig:
  """How training examples are drawn (see `make_training_example`)."""

  lang: str = "csg2d"
  rho: float = 0.2
  min_primitives: int = 2
  max_primitives: int = 8
  max_noise_steps: int = 5
  label_mode: str = "path"
  # Redraw targets that plausibly render almost one colour (a coarse host
  # estimate; the trainer's exact mask is `render.batch.nonempty`).
  reject_empty: bool = True

  def __post_init__(self):
    """Raises ValueError for an unusable setting. The message starts with
    the setting's name (the trainer prefixes `config.input.`), except for an
    unknown language, which `get_language` names."""
    get_language(self.lang)
    if not 0.0 <= self.rho <= 1.0:
      raise ValueError(f"rho must be in [0, 1], got {self.rho}")
    if not 0 <= self.min_primitives <= self.max_primitives:
      raise ValueError(
        f"min_primitives must be in [0, max_primitives], got "
        f"min_primitives={self.min_primitives}, "
        f"max_primitives={self.max_primitives}"
      )
    if self.max_noise_steps < 1:
      raise ValueError(
        f"max_noise_steps must be >= 1, got {self.max_noise_steps}"
      )
    if self.label_mode not in ALL_LABEL_MODES:
      raise ValueError(
        f"label_mode must be one of {ALL_LABEL_MODES}, got {self.label_mode!r}"
      )
    if self.label_mode == "last_mutation" and self.rho != 0:
      raise ValueError(
        f"label_mode='last_mutation' needs rho=0, got rho={self.rho}"
      )
    if self.label_mode == "repl" and get_language(self.lang).name != "csg2d":
      raise ValueError("label_mode='repl' (REPL Flow) needs lang csg2d")


def seed_words(seed, *more) -> list[int]:
  """The entropy words of a stream seeded `seed` (an int, or a tuple such as
  (run seed, process index)), followed by the ints `more`."""
  seed = tuple(seed) if isinstance(seed, (tuple, list)) else (seed,)
  return [*map(int, seed), *map(int, more)]


def example_rng(seed, index: int) -> HostRng:
  """The random stream of example `index` of the run seeded `seed` (an int,
  or a tuple such as (run seed, process index))."""
  return HostRng(np.random.default_rng(seed_words(seed, index)))


def make_example(
  seed,
  index: int,
  config: ExampleConfig = ExampleConfig(),
  max_tries: int = 100,
) -> dict[str, np.ndarray]:
  """Example `index` of the stream seeded `seed`.

  Examples whose programs or edit do not fit the language's token budget are
  redrawn from the same stream.

  Returns:
    tokens: [S] int32 edit sequence (program, <SOS>, <POS p>, replacement,
      <EOS>, padding), S = language.seq_len.
    loss_mask: [S] float32, 1 on the tokens after <SOS>.
    current_tokens: [L] int32 padded current program, L = max_program_len.
    target_tokens: [L] int32 padded target program.
    steps_left: [] int32 reverse-path steps from current to target (>= 1).
    edit_position: [] int32 token index of the edited node.

  With label_mode "whole_program" the current program is empty (all
  <PAD>), the sequence is `<SOS> <POS 0> target <EOS>`, steps_left is 1
  and edit_position 0. With label_mode "repl" the current program is the
  left-nested fold of the target's first j in-order primitives (j uniform in
  [0, n), empty for j = 0), the sequence is `current, <SOS>, <POS 0>, op,
  primitive, <EOS>` for primitive j + 1, steps_left is n - j and
  edit_position 0.
  """
  lang = get_language(config.lang)
  tok = _tokenizer(config.lang)
  rng = example_rng(seed, index)
  target_filter = None
  if config.reject_empty:
    target_filter = functools.partial(filters.looks_nonempty, lang.name)
  if config.label_mode == "whole_program":
    return _whole_program_example(
      lang, tok, rng, config, target_filter, max_tries
    )
  if config.label_mode == "repl":
    return _repl_example(lang, tok, rng, config, target_filter, max_tries)
  for _ in range(max_tries):
    ex = make_training_example(
      lang,
      rng,
      rho=config.rho,
      min_primitives=config.min_primitives,
      max_primitives=config.max_primitives,
      max_noise_steps=config.max_noise_steps,
      label_mode=config.label_mode,
      target_filter=target_filter,
    )
    if (
      ex.current.ntok > lang.max_program_len
      or ex.target.ntok > lang.max_program_len
      or ex.edit.replacement.ntok + 3 > lang.max_edit_len
    ):
      continue
    tokens, mask = tok.edit_sequence(
      ex.current, ex.position, ex.edit.replacement
    )
    return {
      "tokens": tokens,
      "loss_mask": mask,
      "current_tokens": tok.pad_program(tok.encode(ex.current)),
      "target_tokens": tok.pad_program(tok.encode(ex.target)),
      "steps_left": np.int32(ex.steps_left),
      "edit_position": np.int32(ex.position),
    }
  raise ValueError(
    f"{config.lang}: no example within the token budget in {max_tries} tries"
  )


def _sample_target(lang, rng, config, target_filter, max_tries, max_tokens):
  """A target of at most `max_tokens` tokens that passes `target_filter`.

  Raises:
    ValueError: none within `max_tries` draws.
  """
  g = lang.grammar
  for _ in range(max_tries):
    target = sample(
      g, g.start, config.min_primitives, config.max_primitives, rng
    )
    if target.ntok > max_tokens:
      continue
    if target_filter is not None and not target_filter(target):
      continue
    return target
  raise ValueError(
    f"{config.lang}: no program within the token budget in {max_tries} tries"
  )


def _whole_program_example(lang, tok, rng, config, target_filter, max_tries):
  max_tokens = min(lang.max_program_len, lang.seq_len - 3)
  target = _sample_target(
    lang, rng, config, target_filter, max_tries, max_tokens
  )
  tokens, mask = tok.program_sequence(target)
  return {
    "tokens": tokens,
    "loss_mask": mask,
    "current_tokens": np.zeros(lang.max_program_len, np.int32),
    "target_tokens": tok.pad_program(tok.encode(target)),
    "steps_left": np.int32(1),
    "edit_position": np.int32(0),
  }


def _repl_example(lang, tok, rng, config, target_filter, max_tries):
  target = _sample_target(
    lang, rng, config, target_filter, max_tries, lang.max_program_len
  )
  steps = csg2d.repl_steps(lang.grammar, target)
  j = rng.below(len(steps))
  current = csg2d.build_program(lang.grammar, steps[:j])
  tokens, mask = tok.repl_sequence(current, steps[j].op, steps[j].primitive)
  return {
    "tokens": tokens,
    "loss_mask": mask,
    "current_tokens": np.zeros(lang.max_program_len, np.int32)
    if current is None
    else tok.pad_program(tok.encode(current)),
    "target_tokens": tok.pad_program(tok.encode(target)),
    "steps_left": np.int32(len(steps) - j),
    "edit_position": np.int32(0),
  }


def make_batch(
  seed, indices, config: ExampleConfig = ExampleConfig()
) -> dict[str, np.ndarray]:
  """Stacks `make_example(seed, i, config)` for i in `indices`: [B, ...]."""
  examples = [make_example(seed, int(i), config) for i in indices]
  return {k: np.stack([e[k] for e in examples]) for k in examples[0]}


@functools.lru_cache(maxsize=None)
def _tokenizer(lang: str) -> Tokenizer:
  return Tokenizer(get_language(lang))
