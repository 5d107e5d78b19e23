"""Model configs of a language: the one place that turns a language name
and a size (or a training config) into a `models.ModelConfig`."""

from __future__ import annotations

from treediff_jax.dsl.languages import get_language
from treediff_jax.dsl.tokenizer import Tokenizer
from treediff_jax.models.config import ModelConfig


def for_language(
  lang: str,
  size: str,
  *,
  max_len: int = 0,
  blank_current: bool = False,
  dtype: str = "float32",
  stem: str = "patch",
) -> ModelConfig:
  """The config of a `size` model (`tiny`, `small`, `base`) for `lang`.

  Vocabulary from the language's Tokenizer; canvas shape and patch size
  from the language; `max_len` 0: the language's sequence length.

  Raises:
    ValueError: an unknown language, size or dtype.
  """
  language = get_language(lang)
  return ModelConfig.preset(
    size,
    vocab_size=Tokenizer(language).vocab_size,
    canvas_shape=language.canvas_shape,
    patch=language.patch,
    max_len=max_len or language.seq_len,
    blank_current=blank_current,
    dtype=dtype,
    stem=stem,
  )


def from_training_config(config) -> ModelConfig:
  """The model config of a training ConfigDict: config.lang,
  config.model.size, .max_len, .dtype, .stem and config.input.blank_current
  (absent fields of older configs take their defaults)."""
  return for_language(
    config.lang,
    config.model.size,
    max_len=config.model.get("max_len", 0),
    blank_current=bool(config.input.get("blank_current", False)),
    dtype=config.model.get("dtype", "float32"),
    stem=config.model.get("stem", "patch"),
  )
