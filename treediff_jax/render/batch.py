"""Images for batches of training examples, rendered on the device.

Workers produce token arrays only; the trainer turns a batch into images
here, in one jit-able call per batch: the target render (or, for
CSG2D-Sketch, a sketch of the target), the current render, and a mask of
targets whose render is not almost one colour.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from treediff_jax import render as render_lib
from treediff_jax.dsl.languages import EMPTY_FRACTION
from treediff_jax.render import sketch as sketch_lib


def nonempty(images: jnp.ndarray) -> jnp.ndarray:
  """Whether no single value covers over 99% of each image's pixels.

  Pixels are compared as 8-bit values on all channels. A value that covers
  over 99% of the image also covers almost surely one of five probe pixels
  (the corners and the centre), so the largest share among the probes'
  values decides.

  Args:
    images: [B, H, W, C] float32 in [0, 1].

  Returns:
    [B] bool.
  """
  quant = jnp.round(images * 255).astype(jnp.int32)
  h, w = images.shape[1], images.shape[2]
  probes = ((0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (h // 2, w // 2))
  share = jnp.zeros(images.shape[0], jnp.float32)
  for y, x in probes:
    same = jnp.all(quant == quant[:, y : y + 1, x : x + 1, :], axis=-1)
    share = jnp.maximum(share, jnp.mean(same, axis=(1, 2)))
  return share <= EMPTY_FRACTION


def add_images(
  batch: dict, lang: str, key: jnp.ndarray | None = None, sketch: bool = False
) -> dict:
  """Adds rendered images to a batch of examples.

  Args:
    batch: dict with `target_tokens` and `current_tokens`, [B, L] int32.
    lang: language of the programs (static).
    key: `jax.random` key for sketches (needed when `sketch`).
    sketch: draw the target as a CSG2D-Sketch (CSG2D only).

  Returns:
    The batch plus `target_image` (the sketch where `sketch`),
    `clean_target_image` and `current_image`, [B, H, W, C] float32, and
    `target_nonempty`, [B] bool (from the clean target render).
  """
  out = dict(batch)
  target = clean = render_lib.render(lang, batch["target_tokens"])
  out["current_image"] = render_lib.render(lang, batch["current_tokens"])
  out["target_nonempty"] = nonempty(target)
  if sketch:
    if lang not in ("csg2d", "csg2da"):
      raise ValueError(f"sketched targets exist for csg2d only, not {lang!r}")
    if key is None:
      raise ValueError("sketched targets need a jax.random key")
    target = sketch_lib.sketch(batch["target_tokens"], key)
  out["target_image"] = target
  out["clean_target_image"] = clean
  return out


add_images_jit = jax.jit(add_images, static_argnames=("lang", "sketch"))
