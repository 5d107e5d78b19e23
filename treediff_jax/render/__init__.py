"""Rendering programs to images on the device: the public entry points.

`render(lang, tokens)` is a pure, jit-able function of token arrays
([B, L] int32, padded with <PAD>) to images ([B, H, W, C] float32 in
[0, 1]). Device code never fails on a token array that is not a program; it
renders some finite image, and `validate` says on the host which rows are
not programs and why. `render_programs` is the host convenience: program
texts or trees in, a NumPy array of images out.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from treediff_jax import xla_options
from treediff_jax.dsl.grammar import ProgramSyntaxError
from treediff_jax.dsl.languages import get_language
from treediff_jax.dsl.tokenizer import Tokenizer
from treediff_jax.dsl.tree import Node
from treediff_jax.render import csg2d, svg

LANGUAGES = ("csg2d", "tinysvg", "rainbow")


def render(lang: str, tokens: jnp.ndarray) -> jnp.ndarray:
  """Renders program token arrays of language `lang` (static).

  Args:
    lang: "csg2d", "tinysvg" or "rainbow".
    tokens: [B, L] int32 token ids; rows may have different program lengths.

  Returns:
    [B, H, W, C] float32 in [0, 1]: CSG2D [B, 128, 128, 1] (1 inside the
    shape), TinySVG [B, 224, 224, 3], Rainbow [B, 64, 64, 3] (RGB on white).
  """
  name = get_language(lang).name
  if tokens.ndim != 2:
    raise ValueError(f"tokens must be [B, L], got shape {tokens.shape}")
  if name == "csg2d":
    return csg2d.render(tokens)
  return svg.render(tokens, name)


def render_in_chunks(lang: str, tokens: jnp.ndarray, chunk: int) -> jnp.ndarray:
  """`render` over `chunk` rows at a time (a `lax.map`), padding the last.

  Same result as `render`. Inside a larger jitted function this keeps each
  chunk's render one fused loop whose output is written out whole: when the
  images feed a consumer that rearranges pixels (a patch embedding), XLA
  may otherwise split the fused renderer into per-primitive arrays and
  lose several times its cost.

  Args:
    lang: language (static). tokens: [B, L] int32. chunk: rows per
      iteration (static).

  Returns:
    [B, H, W, C] float32, as `render`.
  """
  b = tokens.shape[0]
  if chunk <= 0 or b <= chunk:
    return render(lang, tokens)
  n = -(-b // chunk)
  padded = jnp.pad(tokens, ((0, n * chunk - b), (0, 0)))
  out = jax.lax.map(
    functools.partial(render, lang), padded.reshape(n, chunk, -1)
  )
  return out.reshape((n * chunk,) + out.shape[2:])[:b]


@functools.lru_cache(maxsize=None)
def renderer(lang: str):
  """The jitted `render` for one language: tokens [B, L] -> images."""
  name = get_language(lang).name
  return jax.jit(
    functools.partial(render, name),
    compiler_options=xla_options.renderer_options(name),
  )


def validate(lang: str, tokens) -> list[str | None]:
  """Host-side check of token rows: None for a program, else the reason.

  Args:
    lang: language name.
    tokens: [B, L] int token ids (NumPy or jax array).
  """
  tok = Tokenizer(get_language(lang))
  out: list[str | None] = []
  for row in np.asarray(tokens).reshape(len(tokens), -1):
    try:
      tok.decode(row)
      out.append(None)
    except ProgramSyntaxError as e:
      out.append(str(e))
  return out


def pad_tokens(
  lang: str, programs: Sequence[str | Node], multiple: int = 16
) -> np.ndarray:
  """Token arrays of programs, padded to a common length.

  The length is the longest program rounded up to `multiple`, so that
  batches of similar programs share one compiled renderer.

  Returns:
    [N, L] int32.

  Raises:
    ProgramSyntaxError: a program text does not parse; the message names
      its index.
  """
  language = get_language(lang)
  tok = Tokenizer(language)
  rows = []
  for i, p in enumerate(programs):
    if isinstance(p, Node):
      rows.append(tok.encode(p))
      continue
    try:
      rows.append(tok.encode_text(p))
    except ProgramSyntaxError as e:
      raise ProgramSyntaxError(
        e.language, e.position, e.expected, f"program {i}: {e.detail}", e.text
      ) from None
  length = max([len(r) for r in rows] + [1])
  length = -(-length // multiple) * multiple
  out = np.zeros((len(rows), length), np.int32)
  for i, r in enumerate(rows):
    out[i, : len(r)] = r
  return out


def render_programs(
  lang: str, programs: Sequence[str | Node], batch_size: int = 256
) -> np.ndarray:
  """Renders program texts or trees on the device.

  Returns:
    [N, H, W, C] float32 in [0, 1], in input order.

  Raises:
    ProgramSyntaxError: a program does not parse (nothing is rendered).
  """
  tokens = pad_tokens(lang, programs)
  shape = get_language(lang).canvas_shape
  if len(tokens) == 0:
    return np.zeros((0,) + shape, np.float32)
  fn = renderer(lang)
  out = []
  for i in range(0, len(tokens), batch_size):
    chunk = tokens[i : i + batch_size]
    n = len(chunk)
    if n < batch_size and len(tokens) > batch_size:  # keep one shape
      chunk = np.concatenate(
        [chunk, np.zeros((batch_size - n, chunk.shape[1]), np.int32)]
      )
    out.append(np.asarray(fn(jnp.asarray(chunk)))[:n])
  return np.concatenate(out)


def to_uint8(images) -> np.ndarray:
  """Float images in [0, 1] to uint8 0..255 (rounded), same shape."""
  return np.round(np.clip(np.asarray(images), 0, 1) * 255).astype(np.uint8)
