"""TinySVG and Rainbow rendering from token arrays, on the device.

Layout follows the reference (iceberg-dsl on skia): a node's bounds live in
its own frame, a leaf's are (0, 0, w, h); `Arrange h` moves its right child
so that the child's middle-left meets the left child's middle-right, plus
the gap in pixels (`v`: top-middle to bottom-middle); the bounds are the
union. `Move` draws its child shifted but keeps the child's bounds. The
whole drawing's bounds are centred on the canvas. Leaves paint in token
order (fill, then stroke) over a white background.

Nodes are found by their keyword tokens; token order is pre-order, so
children come after their parent. Bounds are computed over the node slots
from last to first, absolute offsets from first to last.

Pixel rules of skia: rectangles are not antialiased and cover the pixels
[round(l), round(r)) with halves rounded up; a rectangle's stroke of width
sw > 0 is its rectangle grown by sw/2 minus the one shrunk by sw/2, and of
width 0 a one-pixel hairline on the border of [floor(l), floor(r)] x
[floor(t), floor(b)]. Ellipses are antialiased: coverage from a signed
distance, strokes as a band of width sw (a hairline as width 1).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from treediff_jax.dsl.languages import COLORS, get_language
from treediff_jax.render import sdf
from treediff_jax.render import tokens as tk


def _rgb(hexa: str) -> tuple[float, float, float]:
  return tuple(int(hexa[i : i + 2], 16) / 255 for i in (1, 3, 5))


RGB = {name: _rgb(hexa) for name, hexa in COLORS.items()}


@dataclasses.dataclass(frozen=True)
class _Spec:
  lang: str
  rect_kw: str
  ellipse_kw: str
  unit: float  # pixels per size number
  fixed_size: float | None  # Rainbow: every shape is this many pixels
  fixed_gap: float | None  # Rainbow: Arrange gap in pixels
  # Most nodes a program of L tokens can hold is (L + node_slack) //
  # node_tokens. TinySVG: leaves take 13 tokens, Move adds 11, Arrange 9 plus
  # a second child, so n nodes take at least 11n + 2 tokens. Rainbow: leaves
  # take 5, Arrange 7 plus a second leaf, so n nodes take at least 6n - 1.
  node_tokens: int
  node_slack: int
  window: int  # side of the square every leaf paints within, in pixels
  # Rainbow's shapes keep iceberg's default 1-pixel (undrawn) border in their
  # layout bounds: a leaf lays out as (-0.5, -0.5, w + 0.5, h + 0.5).
  bounds_pad: float


SPECS = {
  # A TinySVG leaf spans at most 54 px plus a 2.25 px stroke and 1 px of
  # antialiasing on each side; its window starts 3 px before the leaf.
  "tinysvg": _Spec(
    "tinysvg", "Rectangle", "Ellipse", 6.0, None, None, 11, -2, 64, 0.0
  ),
  "rainbow": _Spec("rainbow", "Box", "Ball", 1.0, 10.0, 1.0, 6, 1, 16, 0.5),
}


def max_nodes(lang: str, length: int) -> int:
  """Node slots needed for any program of `length` tokens."""
  spec = SPECS[lang]
  return max(1, (length + spec.node_slack) // spec.node_tokens)


@functools.lru_cache(maxsize=None)
def _tables(lang: str):
  language = get_language(lang)
  ids = {t: tk.token_id(language, t) for t in language.grammar.terminals}
  digits = {str(i): float(i) for i in range(10)}
  value = tk.lookup_table(
    language, {k: v for k, v in digits.items() if k in ids}
  )
  rgb = np.stack(
    [
      tk.lookup_table(language, {c: v[i] for c, v in RGB.items() if c in ids})
      for i in range(3)
    ],
    axis=-1,
  )  # [vocab, 3]
  paints = tk.lookup_table(language, {c: 1.0 for c in RGB if c in ids})
  return ids, value, rgb, paints, language.canvas_shape


def _round_half_up(v):
  return jnp.floor(v + 0.5)


def node_layout(tokens: jnp.ndarray, lang: str, num_nodes: int):
  """Absolute rectangles and paints of the leaves, read off the tokens.

  Args:
    tokens: [B, L] int32 program tokens.
    lang: "tinysvg" or "rainbow".
    num_nodes: N node slots (static).

  Returns:
    dict of [B, N] arrays: left, top, right, bottom (pixels, canvas frame),
    leaf, ellipse (bool), fill_rgb and stroke_rgb ([B, N, 3]), fill_on,
    stroke_on (bool), stroke_width (pixels).
  """
  spec = SPECS[lang]
  ids, value_t, rgb_t, paint_t, (height, width, _) = _tables(lang)
  value_t, rgb_t, paint_t = map(jnp.asarray, (value_t, rgb_t, paint_t))
  batch, length = tokens.shape
  n = num_nodes

  is_rect = tokens == ids[spec.rect_kw]
  is_ell = tokens == ids[spec.ellipse_kw]
  is_arr = tokens == ids["Arrange"]
  is_move = (
    (tokens == ids["Move"]) if "Move" in ids else jnp.zeros_like(is_rect)
  )
  kw, present = tk.nth_positions(is_rect | is_ell | is_arr | is_move, n)
  g = functools.partial(tk.gather, tokens)
  leaf = present & (tk.gather(is_rect, kw) | tk.gather(is_ell, kw))
  ellipse = present & tk.gather(is_ell, kw)
  arrange = present & tk.gather(is_arr, kw)
  move = present & tk.gather(is_move, kw)

  # Structure: start '(' of each node, its matching ')', its parent slot.
  start = kw - 1
  depth = tk.open_depth(tokens, ids["("], ids[")"])
  idx = jnp.arange(length, dtype=jnp.int32)
  start_depth = tk.gather(depth, start)  # [B, N]
  closes = (
    (tokens == ids[")"])[:, None, :]
    & (depth[:, None, :] == start_depth[..., None] + 1)
    & (idx[None, None, :] > start[..., None])
  )
  end = jnp.min(jnp.where(closes, idx, length - 1), axis=-1)  # [B, N]
  parent_open = tk.enclosing_open(tokens, depth, start, ids["("])
  has_parent = present & (start_depth > 0)
  slot_ids = jnp.arange(n, dtype=jnp.int32)
  same = (start[:, None, :] == parent_open[..., None]) & present[:, None, :]
  parent = jnp.where(has_parent, jnp.argmax(same, axis=-1), -1)  # [B, N]
  # Second child of an Arrange: the later slot with it as parent.
  is_child = (parent[:, None, :] == slot_ids[None, :, None]) & (
    slot_ids[None, None, :] > slot_ids[None, :, None] + 1
  )
  second = jnp.argmax(is_child, axis=-1)  # [B, N]
  first = jnp.minimum(slot_ids + 1, n - 1)[None, :].repeat(batch, 0)

  # Arguments.
  val = lambda pos: value_t[g(pos)]
  if spec.fixed_size is None:
    w, h = val(kw + 2) * spec.unit, val(kw + 4) * spec.unit
    fill_tok, stroke_tok = g(kw + 6), g(kw + 8)
    stroke_width = val(kw + 10) / 2.0
    gap = val(end - 1)
    mx = jnp.where(g(end - 3) == ids["true"], -1.0, 1.0) * val(end - 7)
    my = jnp.where(g(end - 1) == ids["true"], -1.0, 1.0) * val(end - 5)
    mx, my = mx * spec.unit, my * spec.unit
    stroke_on = leaf & (paint_t[stroke_tok] > 0)
  else:
    w = h = jnp.full((batch, n), spec.fixed_size, jnp.float32)
    fill_tok = stroke_tok = g(kw + 2)
    stroke_width = jnp.zeros((batch, n), jnp.float32)
    gap = jnp.full((batch, n), spec.fixed_gap, jnp.float32)
    mx = my = jnp.zeros((batch, n), jnp.float32)
    stroke_on = jnp.zeros((batch, n), bool)
  horizontal = g(kw + 2) == ids["h"]

  # Bounds in each node's own frame, children before parents.
  zeros = jnp.zeros((batch, n), jnp.float32)
  pad = spec.bounds_pad
  bl, bt, br, bb = zeros - pad, zeros - pad, w + pad, h + pad
  dx2, dy2 = zeros, zeros  # offset of an Arrange's second child
  take = lambda a, i: jnp.take_along_axis(a, i[:, None], axis=1)[:, 0]
  col = lambda a, s: jax.lax.dynamic_index_in_dim(a, s, 1, keepdims=False)
  put = lambda a, s, v: jax.lax.dynamic_update_index_in_dim(a, v, s, 1)

  def bounds_step(i, carry):
    bl, bt, br, bb, dx2, dy2 = carry
    s = n - 1 - i
    c1, c2 = col(first, s), col(second, s)
    l1, t1, r1, b1 = take(bl, c1), take(bt, c1), take(br, c1), take(bb, c1)
    l2, t2, r2, b2 = take(bl, c2), take(bt, c2), take(br, c2), take(bb, c2)
    hz, gp = col(horizontal, s), col(gap, s)
    dx = jnp.where(hz, r1 - l2 + gp, (l1 + r1) / 2 - (l2 + r2) / 2)
    dy = jnp.where(hz, (t1 + b1) / 2 - (t2 + b2) / 2, b1 - t2 + gp)
    is_a, is_m = col(arrange, s), col(move, s)
    ws, hs = col(w, s), col(h, s)
    nl = jnp.where(is_a, jnp.minimum(l1, l2 + dx), jnp.where(is_m, l1, -pad))
    nt = jnp.where(is_a, jnp.minimum(t1, t2 + dy), jnp.where(is_m, t1, -pad))
    nr = jnp.where(
      is_a, jnp.maximum(r1, r2 + dx), jnp.where(is_m, r1, ws + pad)
    )
    nb = jnp.where(
      is_a, jnp.maximum(b1, b2 + dy), jnp.where(is_m, b1, hs + pad)
    )
    return (
      put(bl, s, nl),
      put(bt, s, nt),
      put(br, s, nr),
      put(bb, s, nb),
      put(dx2, s, dx),
      put(dy2, s, dy),
    )

  bl, bt, br, bb, dx2, dy2 = jax.lax.fori_loop(
    0, n, bounds_step, (bl, bt, br, bb, dx2, dy2)
  )

  # Absolute offsets, parents before children; the root is centred.
  ox = zeros.at[:, 0].set(width / 2 - (bl[:, 0] + br[:, 0]) / 2)
  oy = zeros.at[:, 0].set(height / 2 - (bt[:, 0] + bb[:, 0]) / 2)

  def offset_step(s, carry):
    ox, oy = carry
    p = jnp.maximum(col(parent, s), 0)
    p_move = take(move, p)
    is_second = take(second, p) == s
    rx = jnp.where(p_move, take(mx, p), jnp.where(is_second, take(dx2, p), 0.0))
    ry = jnp.where(p_move, take(my, p), jnp.where(is_second, take(dy2, p), 0.0))
    return put(ox, s, take(ox, p) + rx), put(oy, s, take(oy, p) + ry)

  ox, oy = jax.lax.fori_loop(1, n, offset_step, (ox, oy))

  return dict(
    left=ox,
    top=oy,
    right=ox + w,
    bottom=oy + h,
    leaf=leaf,
    ellipse=ellipse,
    fill_rgb=rgb_t[fill_tok],
    stroke_rgb=rgb_t[stroke_tok],
    fill_on=leaf & (paint_t[fill_tok] > 0),
    stroke_on=stroke_on,
    stroke_width=stroke_width,
  )


def _rect_mask(px, py, x0, y0, x1, y1):
  """Non-antialiased rectangle: pixels [round(x0), round(x1)) x rows alike."""
  return (
    (px >= _round_half_up(x0))
    & (px < _round_half_up(x1))
    & (py >= _round_half_up(y0))
    & (py < _round_half_up(y1))
  )


def _rect_stroke(px, py, x0, y0, x1, y1, sw):
  """Non-antialiased stroke of a rectangle (hairline when sw == 0)."""
  half = sw / 2
  band = _rect_mask(
    px, py, x0 - half, y0 - half, x1 + half, y1 + half
  ) & ~_rect_mask(px, py, x0 + half, y0 + half, x1 - half, y1 - half)
  fl, ft, fr, fb = jnp.floor(x0), jnp.floor(y0), jnp.floor(x1), jnp.floor(y1)
  in_box = (px >= fl) & (px <= fr) & (py >= ft) & (py <= fb)
  hair = in_box & ((px == fl) | (px == fr) | (py == ft) | (py == fb))
  return jnp.where(sw > 0, band, hair)


def _ellipse_distance(x, y, cx, cy, rx, ry, iterations: int = 3):
  """Signed distance to an axis-aligned ellipse, and the share of its unit
  normal on the dominant axis (for hairlines).

  The closest point on the ellipse is found by a few iterations of a
  trig-free fixed-point method (each step moves the guess along the local
  circle of curvature), accurate to a small fraction of a pixel even for
  thin, eccentric ellipses. A zero radius makes the ellipse a segment.

  Returns:
    distance: [..., H, W] float32 pixels, negative inside.
    share: [..., H, W] in [1/sqrt(2), 1], max(|n_x|, |n_y|) of the normal.
  """
  ux, uy = x - cx, y - cy
  ax, ay = jnp.abs(ux), jnp.abs(uy)
  a, b = jnp.maximum(rx, 1e-3), jnp.maximum(ry, 1e-3)
  tx = ty = jnp.full(
    jnp.broadcast_shapes(ax.shape, a.shape), 0.70710678, jnp.float32
  )
  c2 = a * a - b * b
  for _ in range(iterations):
    ex, ey = c2 * tx**3 / a, -c2 * ty**3 / b  # centre of curvature
    rxv, ryv = a * tx - ex, b * ty - ey
    qx, qy = ax - ex, ay - ey
    r = jnp.sqrt(rxv * rxv + ryv * ryv)
    q = jnp.maximum(jnp.sqrt(qx * qx + qy * qy), 1e-6)
    tx = jnp.clip((qx * r / q + ex) / a, 0.0, 1.0)
    ty = jnp.clip((qy * r / q + ey) / b, 0.0, 1.0)
    norm = jnp.maximum(jnp.sqrt(tx * tx + ty * ty), 1e-6)
    tx, ty = tx / norm, ty / norm
  px_, py_ = a * tx, b * ty  # closest point (first quadrant)
  dist = jnp.sqrt(jnp.square(ax - px_) + jnp.square(ay - py_))
  inside = jnp.square(ax / a) + jnp.square(ay / b) < 1.0
  d_ellipse = jnp.where(inside, -dist, dist)
  gx, gy = tx / a, ty / b  # normal direction at the closest point
  share_ellipse = jnp.maximum(gx, gy) / jnp.maximum(
    jnp.sqrt(gx * gx + gy * gy), 1e-6
  )
  degenerate = jnp.minimum(rx, ry) < 1e-3
  d_segment = sdf.rounded_box(x, y, cx, cy, rx, ry, 1.0, 0.0, 0.0)
  distance = jnp.where(degenerate, d_segment, d_ellipse)
  share = jnp.where(degenerate, 1.0, jnp.maximum(share_ellipse, 0.7071))
  return distance, share


def _overlap(p, lo, hi):
  """Length of [p, p + 1] inside [lo, hi] (a 1-D box filter)."""
  return jnp.clip(jnp.minimum(p + 1.0, hi) - jnp.maximum(p, lo), 0.0, 1.0)


def _hairline_alpha(stroke_width):
  """skia draws strokes at most 1 px wide as hairlines of alpha = width
  (a width of 0 counts as 1)."""
  return jnp.where(stroke_width > 0, jnp.minimum(stroke_width, 1.0), 1.0)


def _ellipse_stroke(d, share, stroke_width):
  """Antialiased stroke coverage of a (non-flat) ellipse outline.

  Hairlines fall off linearly over one pixel along the axis the outline is
  closest to perpendicular to; wider strokes cover the band |d| <= sw/2,
  box filtered over the pixel.
  """
  half = stroke_width / 2
  band = jnp.clip(
    jnp.minimum(d + 0.5, half) - jnp.maximum(d - 0.5, -half), 0.0, 1.0
  )
  hair = _hairline_alpha(stroke_width) * jnp.clip(
    1.0 - jnp.abs(d) / share, 0.0, 1.0
  )
  return jnp.where(stroke_width > 1, band, hair)


def _flat_ellipse_stroke(px, py, x0, y0, x1, y1, stroke_width):
  """Stroke of an ellipse of zero width or height: a segment with butt ends.

  Wider than a pixel it is the box-filtered rectangle of the segment grown by
  sw/2 across it; a hairline runs there and back, so it is drawn twice.
  """
  vertical = (x1 - x0) < (y1 - y0)
  c_across = jnp.where(vertical, (x0 + x1) / 2, (y0 + y1) / 2)
  lo_along, hi_along = jnp.where(vertical, y0, x0), jnp.where(vertical, y1, x1)
  p_across, p_along = jnp.where(vertical, px, py), jnp.where(vertical, py, px)
  along = _overlap(p_along, lo_along, hi_along)
  half = stroke_width / 2
  wide = _overlap(p_across, c_across - half, c_across + half)
  tent = jnp.clip(1.0 - jnp.abs(p_across + 0.5 - c_across), 0.0, 1.0)
  once = _hairline_alpha(stroke_width) * tent
  hair = 1.0 - jnp.square(1.0 - once)
  return along * jnp.where(stroke_width > 1, wide, hair)


def max_leaves(lang: str, length: int) -> int:
  """Leaf slots needed for any program of `length` tokens.

  TinySVG: k Arranges and k + 1 leaves take at least 22k + 13 tokens;
  Rainbow: at least 12k + 5.
  """
  per, base = (22, 13) if lang == "tinysvg" else (12, 5)
  return max(1, (length - base) // per + 1)


def _paint_leaf(window, px, py, q):
  """Paints one leaf (fill, then stroke) into an image window.

  Args:
    window: [S, S, 3] float32 pixels of the image.
    px: [1, S] and py: [S, 1] float32 canvas indices of the window's pixels.
    q: the leaf's layout entries (scalars; rgb [3]).

  Returns:
    The painted window, [S, S, 3].
  """
  x, y = px + 0.5, py + 0.5
  x0, y0, x1, y1 = q["left"], q["top"], q["right"], q["bottom"]
  sw = q["stroke_width"]
  fill_ok = (x1 > x0) & (y1 > y0)
  nonempty = (x1 > x0) | (y1 > y0)  # a zero-size ellipse draws nothing

  def ellipse(_):
    d, share = _ellipse_distance(
      x, y, (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    )
    fill = sdf.coverage(d) * fill_ok
    stroke = jnp.where(
      fill_ok,
      _ellipse_stroke(d, share, sw),
      _flat_ellipse_stroke(px, py, x0, y0, x1, y1, sw) * nonempty,
    )
    return fill, stroke

  def rect(_):
    fill = _rect_mask(px, py, x0, y0, x1, y1).astype(jnp.float32)
    stroke = _rect_stroke(px, py, x0, y0, x1, y1, sw).astype(jnp.float32)
    return fill, stroke

  fill, stroke = jax.lax.cond(q["ellipse"], ellipse, rect, None)
  for cov, on, rgb in (
    (fill, q["fill_on"], q["fill_rgb"]),
    (stroke, q["stroke_on"], q["stroke_rgb"]),
  ):
    alpha = (cov * on)[..., None]  # [S, S, 1]
    window = window * (1 - alpha) + alpha * rgb
  return window


def render(
  tokens: jnp.ndarray,
  lang: str,
  num_nodes: int | None = None,
  per_example: bool | None = None,
) -> jnp.ndarray:
  """Renders TinySVG or Rainbow token arrays.

  Each leaf paints only a square window around its box (every leaf fits
  one), in painter's order, so the cost follows the leaves, not the canvas.

  Args:
    tokens: [B, L] int32 program token ids padded with <PAD>; lengths may
      mix. Arrays that are not programs render to some finite image.
    lang: "tinysvg" or "rainbow" (static).
    num_nodes: node slots (static); defaults to the most L tokens can hold.
    per_example: paint one example at a time (static; fastest on CPU) or the
      whole batch at once (fastest on accelerators); None picks by backend.
      Both give the same images.

  Returns:
    [B, H, W, 3] float32 RGB in [0, 1] on a white background.
  """
  length = tokens.shape[-1]
  if num_nodes is None:
    num_nodes = max_nodes(lang, length)
  lay = node_layout(tokens, lang, num_nodes)
  height, width, _ = _tables(lang)[4]
  size = SPECS[lang].window
  num_leaves = min(max_leaves(lang, length), num_nodes)
  leaf_slot, leaf_on = tk.nth_positions(lay["leaf"], num_leaves)  # [B, M]

  def pick(v):  # [B, N, ...] -> [M, B, ...] leaf entries, leaf-major
    idx = leaf_slot.reshape(leaf_slot.shape + (1,) * (v.ndim - 2))
    return jnp.moveaxis(jnp.take_along_axis(v, idx, axis=1), 1, 0)

  leaves = {k: pick(v) for k, v in lay.items()}
  leaves["fill_on"] = leaves["fill_on"] & leaf_on.T
  leaves["stroke_on"] = leaves["stroke_on"] & leaf_on.T
  ramp = jnp.arange(size, dtype=jnp.int32)

  def paint_one(image, q, b=None):
    """Paints leaf q into image [H, W, 3], or into example b of [B, H, W, 3]."""
    ox = jnp.clip(jnp.floor(q["left"]).astype(jnp.int32) - 3, 0, width - size)
    oy = jnp.clip(jnp.floor(q["top"]).astype(jnp.int32) - 3, 0, height - size)
    start, shape = (oy, ox, 0), (size, size, 3)
    if b is not None:
      start, shape = (b,) + start, (1,) + shape
    window = jax.lax.dynamic_slice(image, start, shape)
    px = (ox + ramp).astype(jnp.float32)[None, :]
    py = (oy + ramp).astype(jnp.float32)[:, None]
    window = _paint_leaf(window.reshape(size, size, 3), px, py, q)
    return jax.lax.dynamic_update_slice(image, window.reshape(shape), start)

  if per_example is None:
    per_example = jax.default_backend() == "cpu"
  if per_example:
    # One example at a time, every window written in place into the batch's
    # images: on a CPU a batched update inside the leaf loop copies every
    # image at every leaf, and images built one by one are copied once more
    # into the batch.
    def one_example(b, image):
      def step(image, q):  # skips empty leaf slots
        on = q["fill_on"] | q["stroke_on"]
        paint = functools.partial(paint_one, b=b)
        return jax.lax.cond(on, paint, lambda im, _: im, image, q), None

      q = {
        k: jax.lax.dynamic_index_in_dim(v, b, 1, False)
        for k, v in leaves.items()
      }
      return jax.lax.scan(step, image, q)[0]

    image = jnp.ones((tokens.shape[0], height, width, 3), jnp.float32)
    return jax.lax.fori_loop(0, tokens.shape[0], one_example, image)

  # On accelerators batched scatters are cheap and a per-example loop is not.
  def step(image, q):
    return jax.vmap(paint_one)(image, q), None

  image = jnp.ones((tokens.shape[0], height, width, 3), jnp.float32)
  return jax.lax.scan(step, image, leaves)[0]


render_jit = jax.jit(render, static_argnums=(1, 2, 3))
