"""Cheap host-side checks that a target program draws something visible.

Training targets whose render is almost one colour (over 99% of pixels the
same) are redrawn (docs/design.md). Workers never import jax, so these
checks estimate the drawn area from the tree with NumPy: CSG2D evaluates its
left fold on a coarse grid; TinySVG and Rainbow add up the areas of visible
(non-white) paint. The exact check runs on the device on the rendered batch
(`treediff_jax.render.batch.nonempty`).
"""

from __future__ import annotations

import math

import numpy as np

from treediff_jax.dsl import csg2d
from treediff_jax.dsl.languages import EMPTY_FRACTION, get_language
from treediff_jax.dsl.tree import Node

_GRID = 32  # coarse CSG2D grid, cells of 4 x 4 pixels


def _csg2d_mask(g, node: Node) -> np.ndarray:
  """Coarse [32, 32] bool inside-mask of a CSG2D program (cell centres)."""
  c = (np.arange(_GRID) + 0.5) * (128 / _GRID)
  x, y = c[None, :], c[:, None]

  def inside(prim):
    if prim.kind == "circle":
      r, cx, cy = (8 * a for a in prim.args)
      return (x - cx) ** 2 + (y - cy) ** 2 < r * r
    cx, cy, w, h = (8 * a for a in prim.args[:4])
    a = math.radians(prim.args[4])
    ux, uy = x - cx, y - cy
    qx = ux * math.cos(a) + uy * math.sin(a)
    qy = uy * math.cos(a) - ux * math.sin(a)
    return (np.abs(qx) < w / 2) & (np.abs(qy) < h / 2)

  prims = csg2d.inorder(g, node)
  mask = inside(prims[0])
  for prim in prims[1:]:
    m = inside(prim)
    mask = (mask | m) if prim.op == "+" else (mask & ~m)
  return mask


def _visible_area_svg(g, node: Node, lang: str) -> float:
  """Upper estimate of the pixels a TinySVG/Rainbow program paints."""
  name = g.symbols[g.symbol_of(node)]
  if name in ("s", "move"):
    return _visible_area_svg(g, node.kids[0], lang)
  if name == "arrange":
    return sum(
      _visible_area_svg(g, k, lang)
      for k in node.kids
      if g.symbols[g.symbol_of(k)] == "s"
    )
  args = [g.to_text(k) for k in node.kids]
  if lang == "rainbow":
    return 100.0 if args[0] != "white" else 0.0
  w, h, fill, stroke, sw = int(args[0]) * 6, int(args[1]) * 6, *args[2:]
  area = float(w * h) if fill not in ("none", "white") else 0.0
  if stroke not in ("none", "white"):
    area += 2 * (w + h) * max(int(sw) / 2, 1.0)
  return area


def looks_nonempty(lang: str, node: Node) -> bool:
  """Whether the program plausibly draws more than 1% of the canvas and
  leaves more than 1% of it empty (a coarse, host-side estimate)."""
  language = get_language(lang)
  g = language.grammar
  if language.name == "csg2d":
    share = _csg2d_mask(g, node).mean()
  else:
    height, width, _ = language.canvas_shape
    share = min(
      1.0, _visible_area_svg(g, node, language.name) / (height * width)
    )
  return 1 - EMPTY_FRACTION < share < EMPTY_FRACTION
