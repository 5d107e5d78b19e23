"""The models' frozen configuration and the table of size presets.

A `ModelConfig` says everything the models need: the transformer sizes and
what the language fixes (vocabulary, canvas, patch size, sequence length).
It knows nothing of languages; `treediff_jax.model_configs` builds one from a
language name or a training config.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

# Sizes: width, encoder blocks, decoder blocks, heads; MLP ratio 4. `base`
# matches the reference policy's transformer (8 layers, width 256, 16 heads);
# its image encoder is a 4-block ViT instead of an NF-ResNet26.
PRESETS = {
  "tiny": dict(width=64, encoder_depth=1, decoder_depth=2, heads=4),
  "small": dict(width=128, encoder_depth=2, decoder_depth=3, heads=4),
  "base": dict(width=256, encoder_depth=4, decoder_depth=8, heads=16),
}
MLP_RATIO = 4

# Image stems: how images become the encoder's P = (H/p)(W/p) tokens.
#   patch  one linear p x p patch embedding (the ViT's).
#   conv   log2(p) stride-2 3 x 3 convolutions with GELUs between them,
#          channels growing to the width (a small convolutional encoder
#          under the transformer blocks, after the reference's ResNet).
STEMS = ("patch", "conv")

# Compute dtypes by name; parameters are always float32.
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Everything a PolicyModel or a ValueModel is built from.

  Attributes:
    width, encoder_depth, decoder_depth, heads, mlp_ratio: transformer
      sizes (`preset` fills them from a named size).
    vocab_size: token vocabulary of the decoder.
    canvas_shape: (H, W, C) of the images.
    patch: ViT patch size; divides H and W.
    max_len: decoder positions (the longest token sequence).
    blank_current: the model was trained without the current image: it
      replaces every current image it is given by zeros.
    dtype: compute dtype name, "float32" or "bfloat16".
    stem: how images become tokens, one of STEMS.
    anchors: where program tokens look in the image ("spatial" models;
      empty: nowhere): per primitive keyword, where its centre, last token
      and size digits sit (`models.spatial`); every program token of a
      primitive gets the image token under its centre added to its
      embedding (`TreeDecoder`).
    digit0: token id of the digit 0 (digits are consecutive ids).
    unit_px: pixels per number unit of the centre coordinates.
    box_features: program tokens also get fixed image statistics of their
      primitive's box (`models.spatial.box_features`); needs anchors.
  """

  width: int
  encoder_depth: int
  decoder_depth: int
  heads: int
  mlp_ratio: int
  vocab_size: int
  canvas_shape: tuple[int, int, int]
  patch: int
  max_len: int
  blank_current: bool = False
  dtype: str = "float32"
  stem: str = "patch"
  anchors: tuple = ()
  digit0: int = 0
  unit_px: int = 0
  box_features: bool = False

  def __post_init__(self):
    # Hashable whatever sequence it came as (a graphdef holds the config).
    object.__setattr__(self, "canvas_shape", tuple(self.canvas_shape))
    object.__setattr__(
      self, "anchors", tuple(tuple(int(v) for v in a) for a in self.anchors)
    )
    if any(len(a) != 7 for a in self.anchors):
      raise ValueError(
        "each anchor is (keyword id, x offset, y offset, last offset, size "
        f"offsets a and b, scale %), got {self.anchors}"
      )
    if self.box_features and not self.anchors:
      raise ValueError("box_features needs anchors (a spatial model)")
    if self.anchors and self.unit_px < 1:
      raise ValueError(f"anchors need unit_px >= 1, got {self.unit_px}")
    if self.dtype not in DTYPES:
      raise ValueError(
        f"unknown model dtype {self.dtype!r}; choose one of {', '.join(DTYPES)}"
      )
    if self.stem not in STEMS:
      raise ValueError(
        f"unknown image stem {self.stem!r}; choose one of {', '.join(STEMS)}"
      )
    if self.stem == "conv" and self.patch & (self.patch - 1):
      raise ValueError(
        f"the conv stem needs a power-of-two patch, not {self.patch}"
      )
    h, w, _ = self.canvas_shape
    if h % self.patch or w % self.patch:
      raise ValueError(f"patch {self.patch} does not divide the image {h}x{w}")
    if self.max_len < 1:
      raise ValueError(f"max_len must be at least 1, got {self.max_len}")

  @classmethod
  def preset(
    cls,
    size: str,
    *,
    vocab_size: int,
    canvas_shape: tuple[int, int, int],
    patch: int,
    max_len: int,
    blank_current: bool = False,
    dtype: str = "float32",
    stem: str = "patch",
    anchors: tuple = (),
    digit0: int = 0,
    unit_px: int = 0,
    box_features: bool = False,
  ) -> ModelConfig:
    """The config of the named size (`tiny`, `small`, `base`).

    Raises:
      ValueError: an unknown size (the message names the known ones).
    """
    if size not in PRESETS:
      raise ValueError(
        f"unknown model size {size!r}; choose one of {', '.join(PRESETS)}"
      )
    return cls(
      **PRESETS[size],
      mlp_ratio=MLP_RATIO,
      vocab_size=vocab_size,
      canvas_shape=canvas_shape,
      patch=patch,
      max_len=max_len,
      blank_current=blank_current,
      dtype=dtype,
      stem=stem,
      anchors=anchors,
      digit0=digit0,
      unit_px=unit_px,
      box_features=box_features,
    )

  @property
  def compute_dtype(self):
    """The jnp dtype of activations (jnp.float32 or jnp.bfloat16)."""
    return DTYPES[self.dtype]

  def seen_current(self, current: jnp.ndarray) -> jnp.ndarray:
    """The current images [..., H, W, C] as the model sees them: zeros of
    the same shape and dtype where `blank_current`, else unchanged."""
    return jnp.zeros_like(current) if self.blank_current else current
