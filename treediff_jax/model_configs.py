"""Model configs of a language: the one place that turns a language name
and a size (or a training config) into a `models.ModelConfig`."""

from __future__ import annotations

from treediff_jax.dsl.languages import Language, get_language
from treediff_jax.dsl.tokenizer import Tokenizer
from treediff_jax.models.config import ModelConfig

# The primitives of spatial models: a probe program of each, which of its
# numbers (in order) are the centre's x and y and the two sizes, and the
# scale (%) from the larger size to the box's half extent: a circle's
# radius; half the longer side of a quad times sqrt(2), for any rotation.
# Coordinates are in CSG2D number units of 8 pixels (../shared/DESIGN.md).
_SPATIAL_PROBES = {
  "csg2d": (
    ("(Circle 1 2 3)", 1, 2, 0, 0, 100),
    ("(Quad 1 2 3 4 G)", 0, 1, 2, 3, 71),
  ),
}
_UNIT_PX = 8


def spatial_anchors(language: Language) -> tuple[tuple, int]:
  """(anchors, digit0) of `language` for `ModelConfig`: per primitive
  (keyword id, x offset, y offset, last offset, size offsets a and b,
  scale %), found by tokenizing a probe program of it.

  Raises:
    NotImplementedError: a language without spatial anchors (TinySVG and
      Rainbow place shapes relative to each other, through Arrange and
      Move, so no token holds a shape's position).
  """
  if language.name not in _SPATIAL_PROBES:
    raise NotImplementedError(
      f"spatial models are defined for csg2d programs only, not "
      f"{language.name!r}: its shapes are placed relative to each other, "
      "so no token holds a shape's position"
    )
  tok = Tokenizer(language)
  digit0 = tok.token_strings().index("0")
  digits = set(range(digit0, digit0 + 16))
  anchors = []
  for text, xi, yi, ai, bi, scale in _SPATIAL_PROBES[language.name]:
    ids = tok.encode_text(text)
    kw = 1  # "(" then the keyword
    nums = [i for i, t in enumerate(ids) if int(t) in digits]
    anchors.append(
      (
        int(ids[kw]),
        nums[xi] - kw,
        nums[yi] - kw,
        len(ids) - 1 - kw,
        nums[ai] - kw,
        nums[bi] - kw,
        scale,
      )
    )
  return tuple(anchors), digit0


def for_language(
  lang: str,
  size: str,
  *,
  max_len: int = 0,
  blank_current: bool = False,
  dtype: str = "float32",
  stem: str = "patch",
  spatial: bool = False,
  box_features: bool = False,
) -> ModelConfig:
  """The config of a `size` model (`tiny`, `small`, `base`) for `lang`.

  Vocabulary from the language's Tokenizer; canvas shape and patch size
  from the language; `max_len` 0: the language's sequence length;
  `spatial`: program tokens see the image under their primitive
  (`spatial_anchors`); `box_features` (spatial models): and fixed image
  statistics of its box.

  Raises:
    ValueError: an unknown language, size or dtype.
    NotImplementedError: `spatial` for a language without anchors.
  """
  language = get_language(lang)
  anchors, digit0 = spatial_anchors(language) if spatial else ((), 0)
  return ModelConfig.preset(
    size,
    vocab_size=Tokenizer(language).vocab_size,
    canvas_shape=language.canvas_shape,
    patch=language.patch,
    max_len=max_len or language.seq_len,
    blank_current=blank_current,
    dtype=dtype,
    stem=stem,
    anchors=anchors,
    digit0=digit0,
    unit_px=_UNIT_PX if spatial else 0,
    box_features=box_features,
  )


def from_training_config(config) -> ModelConfig:
  """The model config of a training ConfigDict: config.lang,
  config.model.size, .max_len, .dtype, .stem, .spatial, .box_features and
  config.input.blank_current
  (absent fields of older configs take their defaults)."""
  return for_language(
    config.lang,
    config.model.size,
    max_len=config.model.get("max_len", 0),
    blank_current=bool(config.input.get("blank_current", False)),
    dtype=config.model.get("dtype", "float32"),
    stem=config.model.get("stem", "patch"),
    spatial=bool(config.model.get("spatial", False)),
    box_features=bool(config.model.get("box_features", False)),
  )
