"""Programs on the host (NumPy and lark, no jax): grammars, languages,
sampling, noise and reverse paths, tokens."""

from treediff_jax.dsl.grammar import Grammar, ProgramSyntaxError
from treediff_jax.dsl.languages import NAMES, Language, get_language
from treediff_jax.dsl.sampler import sample
from treediff_jax.dsl.tokenizer import Tokenizer

__all__ = [
  "NAMES",
  "Grammar",
  "Language",
  "ProgramSyntaxError",
  "Tokenizer",
  "get_language",
  "sample",
]
