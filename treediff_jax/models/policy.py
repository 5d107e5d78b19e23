"""The policy (edit proposer) and the value model, and their size table."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
from flax import nnx

from treediff_jax.dsl.languages import get_language
from treediff_jax.dsl.tokenizer import Tokenizer
from treediff_jax.models.decoder import TreeDecoder
from treediff_jax.models.vit import ViTEncoder


@dataclasses.dataclass(frozen=True)
class Variant:
  width: int
  encoder_depth: int
  decoder_depth: int
  heads: int
  mlp_ratio: int = 4


# `base` matches the reference policy's transformer (8 layers, width 256,
# 16 heads); its image encoder is a 4-block ViT instead of an NF-ResNet26.
VARIANTS = {
  "tiny": Variant(64, 1, 2, 4),
  "small": Variant(128, 2, 3, 4),
  "base": Variant(256, 4, 8, 16),
}

# Patch size per canvas: 8 x 8 = 64 image tokens for every language.
PATCH = {"csg2d": 16, "tinysvg": 28, "rainbow": 8}


def decode_variant(name: str) -> Variant:
  """The size variant called `name` (`tiny`, `small`, `base`)."""
  if name not in VARIANTS:
    raise ValueError(
      f"unknown model size {name!r}; choose one of {', '.join(VARIANTS)}"
    )
  return VARIANTS[name]


def _encoder(lang, v: Variant, dtype, param_dtype, rngs):
  h, w, c = lang.canvas_shape
  return ViTEncoder(
    (h, w, 3 * c),
    PATCH[lang.name],
    v.width,
    v.encoder_depth,
    v.heads,
    v.mlp_ratio,
    dtype=dtype,
    param_dtype=param_dtype,
    rngs=rngs,
  )


class PolicyModel(nnx.Module):
  """Predicts the next token of an edit.

  __call__(target [B, H, W, C], current [B, H, W, C] float32 in [0, 1],
  tokens [B, S] int32) -> logits [B, S, V] float32, where position i
  predicts token i + 1 of the edit sequence. `max_len` (default: the
  language's sequence length) bounds S.
  """

  def __init__(
    self,
    lang: str,
    size: str = "tiny",
    *,
    max_len: int = 0,
    dtype=jnp.float32,
    param_dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    language = get_language(lang)
    v = decode_variant(size)
    tok = Tokenizer(language)
    max_len = max_len or language.seq_len
    self.encoder = _encoder(language, v, dtype, param_dtype, rngs)
    self.decoder = TreeDecoder(
      tok.vocab_size,
      max_len,
      v.width,
      v.decoder_depth,
      v.heads,
      v.mlp_ratio,
      dtype=dtype,
      param_dtype=param_dtype,
      rngs=rngs,
    )

  def encode(self, target, current):
    """Image tokens [B, P, D] of (target, current) [B, H, W, C]."""
    return self.encoder.encode_pair(target, current[:, None])[:, 0]

  def encode_many(self, target, current):
    """Image tokens [B, N, P, D] of N current images [B, N, H, W, C] per
    target [B, H, W, C] (the target's share computed once)."""
    return self.encoder.encode_pair(target, current)

  def __call__(self, target, current, tokens):
    return self.decoder(tokens, self.encode(target, current))


class ValueModel(nnx.Module):
  """Predicts the number of edits left: (target, current) [B, H, W, C]
  float32 -> [B] float32."""

  def __init__(
    self,
    lang: str,
    size: str = "tiny",
    *,
    dtype=jnp.float32,
    param_dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    language = get_language(lang)
    v = decode_variant(size)
    self.encoder = _encoder(language, v, dtype, param_dtype, rngs)
    self.hidden = nnx.Linear(
      v.width, v.width, dtype=dtype, param_dtype=param_dtype, rngs=rngs
    )
    self.out = nnx.Linear(
      v.width, 1, dtype=dtype, param_dtype=param_dtype, rngs=rngs
    )

  def __call__(self, target, current):
    return self.score(target, current[:, None])[:, 0]

  def score(self, target, current):
    """Edits left [B, N] float32 for N current images [B, N, H, W, C] per
    target [B, H, W, C]."""
    x = self.encoder.encode_pair(target, current).mean(axis=2)  # [B, N, D]
    return self.out(nnx.gelu(self.hidden(x)))[..., 0].astype(jnp.float32)
