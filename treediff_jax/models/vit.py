"""Vision transformer encoder over stacked (target, current, |diff|) images."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from treediff_jax.models.config import ModelConfig
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


class ConvStem(nnx.Module):
  """log2(p) stride-2 3 x 3 convolutions, GELU between them: [B, H, W,
  C_in] -> [B, H/p, W/p, D]. Channels double from D / 2^(n-1) up to D
  (at least 16)."""

  def __init__(self, channels, patch, width, *, dtype, param_dtype, rngs):
    n = patch.bit_length() - 1
    outs = [max(16, width >> (n - 1 - i)) for i in range(n)]
    ins = [channels] + outs[:-1]
    self.convs = nnx.List(
      [
        nnx.Conv(
          a,
          b,
          (3, 3),
          strides=(2, 2),
          padding="SAME",
          dtype=dtype,
          param_dtype=param_dtype,
          rngs=rngs,
        )
        for a, b in zip(ins, outs)
      ]
    )

  def __call__(self, x):
    for i, conv in enumerate(self.convs):
      x = conv(x)
      if i + 1 < len(self.convs):
        x = nnx.gelu(x)
    return x


class ViTEncoder(nnx.Module):
  """Patchify (or the conv stem), embed, add positions, run transformer
  blocks.

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
    stem: str = "patch",
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
    self.stem = stem
    num_patches = (height // patch) * (width_px // patch)
    if stem == "conv":
      self.convs = ConvStem(
        channels,
        patch,
        width,
        dtype=dtype,
        param_dtype=param_dtype,
        rngs=rngs,
      )
    else:
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

  @classmethod
  def from_config(cls, config: ModelConfig, *, rngs: nnx.Rngs) -> ViTEncoder:
    """The encoder of `config` over stacked (target, current, |diff|)
    images [B, H, W, 3C] (float32 parameters)."""
    h, w, c = config.canvas_shape
    return cls(
      (h, w, 3 * c),
      config.patch,
      config.width,
      config.encoder_depth,
      config.heads,
      config.mlp_ratio,
      stem=config.stem,
      dtype=config.compute_dtype,
      param_dtype=jnp.float32,
      rngs=rngs,
    )

  def _blocks(self, x: jnp.ndarray) -> jnp.ndarray:
    x = x + self.pos[...].astype(self.dtype)
    for block in self.blocks:
      x = block(x)
    return self.norm(x)

  def __call__(self, images: jnp.ndarray) -> jnp.ndarray:
    """Stacked images [B, H, W, C_in] -> image tokens [B, P, D], with the
    patch embedding as the convolution it is stored as (the models encode
    through `encode_pair`, which equals this on `stack_images`)."""
    if self.stem == "conv":
      x = self.convs(images.astype(self.dtype))
    else:
      x = self.embed(images.astype(self.dtype))  # [B, H/p, W/p, D]
    return self._blocks(x.reshape(x.shape[0], -1, x.shape[-1]))

  def encode_pair(self, target: jnp.ndarray, current: jnp.ndarray):
    """Encodes N current images against each target, equal to `__call__` on
    `stack_images(target, current)` row by row.

    The patch embedding is linear, so it is split over the stacked parts
    (the conv stem is not: it runs on each stacked pair):
    the target's part is computed once per target and the stacked array is
    never built (the search scores many candidates per target).

    Args:
      target: [B, H, W, C] float32 in [0, 1].
      current: [B, N, H, W, C] float32 in [0, 1].

    Returns:
      [B, N, P, D] image tokens.
    """
    b, n = current.shape[:2]
    if self.stem == "conv":  # not linear: stack every pair
      t = jnp.broadcast_to(target[:, None], current.shape)
      x = stack_images(
        t.reshape((b * n,) + t.shape[2:]),
        current.reshape((b * n,) + current.shape[2:]),
      )
      x = self(x)
      return x.reshape((b, n) + x.shape[1:])
    c = target.shape[-1]
    k = self.embed.kernel[...].astype(self.dtype)  # [p, p, 3C, D]
    kt, kc, kd = (
      k[:, :, i * c : (i + 1) * c].reshape(-1, k.shape[-1]) for i in range(3)
    )
    pt = patchify(target.astype(jnp.float32), self.patch)  # [B, P, p*p*C]
    pc = patchify(current.astype(jnp.float32), self.patch)  # [B, N, P, ...]
    pd = jnp.abs(pt[:, None] - pc)

    def dot(x, k):  # low-precision inputs, float32 sums
      return jnp.matmul(
        x.astype(self.dtype), k, preferred_element_type=jnp.float32
      )

    # Each stacked part x enters as 2x - 1.
    bias = self.embed.bias[...].astype(jnp.float32) - sum(
      m.astype(jnp.float32).sum(0) for m in (kt, kc, kd)
    )
    x = 2.0 * (dot(pt, kt)[:, None] + dot(pc, kc) + dot(pd, kd)) + bias
    x = x.astype(self.dtype)
    x = self._blocks(x.reshape((b * n,) + x.shape[2:]))
    return x.reshape((b, n) + x.shape[1:])


def patchify(images: jnp.ndarray, patch: int) -> jnp.ndarray:
  """[..., H, W, C] -> [..., (H/p)(W/p), p * p * C], patches in row-major
  order, each flattened as (row, column, channel): the layout of a
  [p, p, C, D] convolution kernel reshaped to [p * p * C, D]."""
  *lead, h, w, c = images.shape
  x = images.reshape(*lead, h // patch, patch, w // patch, patch, c)
  n = len(lead)
  x = jnp.moveaxis(x, n + 2, n + 1)  # [..., h/p, w/p, p, p, C]
  return x.reshape(*lead, (h // patch) * (w // patch), patch * patch * c)
