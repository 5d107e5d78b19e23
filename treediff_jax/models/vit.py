"""Vision transformer encoder over stacked (target, current, |diff|) images."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from treediff_jax.models.layers import block_stack, learned_positions


def stack_images(target: jnp.ndarray, current: jnp.ndarray) -> jnp.ndarray:
  """(target, current, |target - current|) on channels, scaled to [-1, 1].

  Args:
    target, current: [B, H, W, C] float32 in [0, 1].

  Returns:
    [B, H, W, 3C] float32 in [-1, 1].
  """
  diff = jnp.abs(target - current)
  return jnp.concatenate([target, current, diff], axis=-1) * 2.0 - 1.0


class ViTEncoder(nnx.Module):
  """Patchify, embed, add positions, run transformer blocks.

  Maps [B, H, W, C_in] float32 to image tokens [B, (H/p)(W/p), D].
  """

  def __init__(
    self,
    image_shape: tuple[int, int, int],
    patch: int,
    width: int,
    depth: int,
    heads: int,
    mlp_ratio: int = 4,
    *,
    dtype=jnp.float32,
    param_dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    height, width_px, channels = image_shape
    if height % patch or width_px % patch:
      raise ValueError(
        f"patch {patch} does not divide the image {height}x{width_px}"
      )
    self.patch = patch
    self.dtype = dtype
    num_patches = (height // patch) * (width_px // patch)
    self.embed = nnx.Conv(
      channels,
      width,
      (patch, patch),
      strides=(patch, patch),
      padding="VALID",
      dtype=dtype,
      param_dtype=param_dtype,
      rngs=rngs,
    )
    self.pos = learned_positions(rngs, num_patches, width, param_dtype)
    self.blocks = block_stack(
      depth,
      width,
      heads,
      mlp_ratio,
      dtype=dtype,
      param_dtype=param_dtype,
      rngs=rngs,
    )
    self.norm = nnx.LayerNorm(
      width, dtype=dtype, param_dtype=param_dtype, rngs=rngs
    )

  def __call__(self, images: jnp.ndarray) -> jnp.ndarray:
    x = self.embed(images.astype(self.dtype))  # [B, H/p, W/p, D]
    x = x.reshape(x.shape[0], -1, x.shape[-1]) + self.pos[...].astype(
      self.dtype
    )
    for block in self.blocks:
      x = block(x)
    return self.norm(x)  # [B, P, D]
