"""Transformer decoder over program + edit tokens, attending to the image,
with cached decoding of edits (see `kv_cache`): `prefill` then
`decode_step` give the logits of the full forward pass (tested)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from treediff_jax.models import kv_cache
from treediff_jax.models import spatial as spatial_lib
from treediff_jax.models.config import ModelConfig
from treediff_jax.models.kv_cache import EditCache, PrefixCache
from treediff_jax.models.layers import block_stack, learned_positions

# The tokenizer's <PAD> id (treediff_jax.dsl.tokenizer.PAD; tested equal):
# padding columns are masked out of self-attention.
PAD = 0


class TreeDecoder(nnx.Module):
  """Causal decoder: tokens [B, S] int32 + image tokens [B, P, D] ->
  next-token logits [B, S, V] float32 (position i predicts token i + 1).

  Cached decoding: `prefill` caches R programs, `empty_edit_cache` makes
  room for k edits of each, `decode_step` feeds their tokens one slot at a
  time. Programs of different lengths decode together: the edit token at
  edit slot j of a program of n tokens sits at sequence position n + j.
  """

  def __init__(
    self,
    vocab_size: int,
    max_len: int,
    width: int,
    depth: int,
    heads: int,
    mlp_ratio: int = 4,
    *,
    anchors: tuple = (),
    digit0: int = 0,
    unit_px: int = 0,
    patch: int = 1,
    grid: tuple[int, int] = (1, 1),
    boxes: bool = False,
    dtype=jnp.float32,
    param_dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    self.dtype = dtype
    self.embed = nnx.Embed(
      vocab_size, width, dtype=dtype, param_dtype=param_dtype, rngs=rngs
    )
    self.pos = learned_positions(rngs, max_len, width, param_dtype)
    self.blocks = block_stack(
      depth,
      width,
      heads,
      mlp_ratio,
      cross=True,
      dtype=dtype,
      param_dtype=param_dtype,
      rngs=rngs,
    )
    self.norm = nnx.LayerNorm(
      width, dtype=dtype, param_dtype=param_dtype, rngs=rngs
    )
    # Spatial models: each program token adds the image token under its
    # primitive, normalised and projected by a zero-initialised map (so a
    # model initialised from a non-spatial one starts as that model).
    self.anchors = None
    if anchors:
      self.anchors = (tuple(anchors), digit0, unit_px, patch, tuple(grid))
      self.spatial_norm = nnx.LayerNorm(
        width, dtype=dtype, param_dtype=param_dtype, rngs=rngs
      )
      self.spatial_proj = nnx.Linear(
        width,
        width,
        kernel_init=nnx.initializers.zeros_init(),
        dtype=dtype,
        param_dtype=param_dtype,
        rngs=rngs,
      )
    # Box-feature models also add fixed image statistics of each program
    # token's primitive box (memory is then an ImageTokens), through a
    # zero-initialised map.
    self.boxes = bool(boxes)
    if self.boxes:
      if not anchors:
        raise ValueError("box features need the model's anchors")
      self.box_proj = nnx.Linear(
        spatial_lib.NUM_BOX_FEATURES,
        width,
        kernel_init=nnx.initializers.zeros_init(),
        dtype=dtype,
        param_dtype=param_dtype,
        rngs=rngs,
      )
    # Logits in float32 whatever the compute dtype.
    self.head = nnx.Linear(
      width, vocab_size, dtype=jnp.float32, param_dtype=param_dtype, rngs=rngs
    )

  @classmethod
  def from_config(cls, config: ModelConfig, *, rngs: nnx.Rngs) -> TreeDecoder:
    """The decoder of `config` (float32 parameters)."""
    return cls(
      config.vocab_size,
      config.max_len,
      config.width,
      config.decoder_depth,
      config.heads,
      config.mlp_ratio,
      anchors=config.anchors,
      digit0=config.digit0,
      unit_px=config.unit_px,
      patch=config.patch,
      grid=(
        config.canvas_shape[0] // config.patch,
        config.canvas_shape[1] // config.patch,
      ),
      boxes=config.box_features,
      dtype=config.compute_dtype,
      param_dtype=jnp.float32,
      rngs=rngs,
    )

  def __call__(self, tokens: jnp.ndarray, memory) -> jnp.ndarray:
    """tokens [B, S] int32 (then <PAD>), memory [B, P, D] image tokens (an
    ImageTokens for box-feature models) -> logits [B, S, V] float32."""
    x, _ = self._forward(tokens, memory)
    return self._logits(x)

  def _forward(self, tokens, memory):
    """All blocks over tokens [B, S]: (x [B, S, D], per block (key, value
    [B, S, H, Dh], cross_key, cross_value [B, P, H, Dh]))."""
    seq = tokens.shape[1]
    cells = None
    if isinstance(memory, spatial_lib.ImageTokens):
      memory, cells = memory
    if self.boxes and cells is None:
      raise ValueError("a box-feature decoder needs ImageTokens as memory")
    x = self.embed(tokens) + self.pos[...][:, :seq].astype(self.dtype)
    if self.anchors is not None:
      located = spatial_lib.locate(tokens, *self.anchors[:2])
      x = x + self._spatial(located, memory)
      if self.boxes:
        feats = spatial_lib.box_features(located, cells)
        x = x + self.box_proj(feats.astype(self.dtype))
    mask = nnx.combine_masks(
      nnx.make_causal_mask(tokens),
      nnx.make_attention_mask(tokens != PAD, tokens != PAD),
    )
    kvs = []
    for block in self.blocks:
      x, kv = block.forward(x, mask=mask, memory=memory)
      kvs.append(kv)
    return x, kvs

  def _spatial(self, located, memory):
    """[B, S, D]: the projected image token under each program token's
    primitive (zeros for other tokens); located from `spatial.locate`."""
    index, valid = spatial_lib.anchor_patches(located, *self.anchors[2:])
    seen = jnp.take_along_axis(memory, index[..., None], axis=1)
    seen = self.spatial_proj(self.spatial_norm(seen))
    return jnp.where(valid[..., None], seen, 0).astype(self.dtype)

  def _logits(self, x):
    """x [..., D] -> logits [..., V], in float32 whatever the compute
    dtype."""
    return self.head(self.norm(x).astype(jnp.float32))

  def prefill(self, tokens: jnp.ndarray, memory) -> PrefixCache:
    """Runs the decoder over programs and caches their keys and values.

    Args:
      tokens: [R, Lp] int32 program tokens then <PAD> (all Lp columns are
        run; callers cut the columns to the longest program).
      memory: [R, P, D] image tokens from the encoder (an ImageTokens for
        box-feature models).

    Returns:
      The prefix cache of the R programs.
    """
    _, kvs = self._forward(tokens, memory)
    k, v, ck, cv = zip(*kvs)
    return PrefixCache(
      tuple(kv_cache.keys_last(a) for a in k),
      tuple(kv_cache.heads_first(a) for a in v),
      tuple(kv_cache.keys_last(a) for a in ck),
      tuple(kv_cache.heads_first(a) for a in cv),
      jnp.sum(tokens != PAD, axis=1).astype(jnp.int32),
    )

  @staticmethod
  def empty_edit_cache(prefix: PrefixCache, k: int, slots: int) -> EditCache:
    """Zeros for `slots` edit tokens of k edits per program of `prefix`."""
    return kv_cache.empty_edit_cache(prefix, k, slots)

  def decode_step(
    self,
    cache: PrefixCache,
    edit_cache: EditCache,
    token: jnp.ndarray,
    slot,
  ) -> tuple[jnp.ndarray, EditCache]:
    """Feeds edit token `slot` (the same slot for every row).

    Args:
      cache: from `prefill` on R programs.
      edit_cache: the edit cache of k edits per program.
      token: [R * k] int32 the token at edit slot `slot`; row r * k + i is
        edit i of program r.
      slot: [] int32 (or a Python int).

    Returns:
      logits [R * k, V] float32 for the next token, and the edit cache
      with the token's keys and values written at `slot`.
    """
    r = cache.length.shape[0]
    e = edit_cache.key[0].shape[3]
    position = jnp.repeat(cache.length, token.shape[0] // r) + slot
    pos = self.pos[...][0, position].astype(self.dtype)
    x = (self.embed(token) + pos)[:, None]  # [R * k, 1, D]
    lp = cache.key[0].shape[3]
    prefix_ok = jnp.arange(lp)[None, :] < cache.length[:, None]
    edit_ok = jnp.arange(e) <= slot
    keys, values = [], []
    for i, block in enumerate(self.blocks):
      q, k, v = block.self_qkv(x)  # [R * k, 1, H, Dh]
      kc = jax.lax.dynamic_update_slice_in_dim(
        edit_cache.key[i], kv_cache.group(k, r), slot, axis=3
      )
      vc = jax.lax.dynamic_update_slice_in_dim(
        edit_cache.value[i], kv_cache.group(v, r), slot, axis=3
      )
      keys.append(kc)
      values.append(vc)
      y = kv_cache.grouped_attention(
        kv_cache.group(q, r)[:, :, :, 0],
        cache.key[i],
        cache.value[i],
        prefix_ok,
        kc,
        vc,
        edit_ok,
      )  # [R, H, k, Dh]
      x = block.add_self(x, kv_cache.ungroup(y))
      y = kv_cache.cross_attention(
        kv_cache.group(block.cross_query(x), r)[:, :, :, 0],
        cache.cross_key[i],
        cache.cross_value[i],
      )
      x = block.add_cross(x, kv_cache.ungroup(y))
      x = block.add_mlp(x)
    logits = self._logits(x)[:, 0]
    return logits, EditCache(tuple(keys), tuple(values))
