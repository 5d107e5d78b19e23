"""Reference renderers on skia-python and iceberg-dsl (test oracles).

These reproduce the rendering conventions of the published reference
implementation (docs/design.md) with the same libraries: skia-python
87.5 path operations for CSG2D and iceberg-dsl 0.1.2 for TinySVG and Rainbow.
They run on the host, one program at a time, and serve as ground truth for
the JAX renderer's tests and as the baseline of its benchmark. Install them
with the `test` extra; importing this module without them raises ImportError
naming the missing package.
"""

from __future__ import annotations

import math

import numpy as np

from treediff_jax.dsl import csg2d
from treediff_jax.dsl.languages import COLORS, get_language
from treediff_jax.dsl.tree import Node

try:
  import skia
except ImportError as e:  # pragma: no cover
  raise ImportError(
    "treediff_jax.render.reference needs skia-python==87.5 "
    "(pip install -e '.[test]')"
  ) from e


def _children_text(grammar, node: Node) -> list[str]:
  return [grammar.to_text(k) for k in node.kids]


# -- CSG2D ---------------------------------------------------------------------


def _csg2d_path(prim) -> "skia.Path":
  path = skia.Path()
  if prim.kind == "circle":
    r, x, y = prim.args
    path.addCircle(2 * x, 2 * y, 2 * r)
    return path
  x, y, w, h, deg = prim.args
  x, y, w, h = 2 * x, 2 * y, 2 * w, 2 * h
  a = math.radians(deg)
  c, s = math.cos(a), math.sin(a)
  corners = ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2))
  for i, (dx, dy) in enumerate(corners):
    px, py = x + dx * c - dy * s, y + dx * s + dy * c
    if i == 0:
      path.moveTo(px, py)
    else:
      path.lineTo(px, py)
  path.close()
  return path


def render_csg2d(program: Node | str) -> np.ndarray:
  """The reference render of a CSG2D program: [128, 128, 1] float32 in [0, 1].

  The in-order sequence P1 op1 P2 op2 ... is folded left to right with skia
  path operations, then filled antialiased on a 32-unit canvas scaled by 4.
  """
  g = get_language("csg2d").grammar
  node = g.parse(program) if isinstance(program, str) else program
  builder = skia.OpBuilder()
  for prim in csg2d.inorder(g, node):
    op = skia.kDifference_PathOp if prim.op == "-" else skia.kUnion_PathOp
    builder.add(_csg2d_path(prim), op)
  path = builder.resolve()
  surface = skia.Surface(128, 128)
  with surface as canvas:
    canvas.scale(4, 4)
    canvas.drawPath(path, skia.Paint(AntiAlias=True))
  rgba = surface.makeImageSnapshot().toarray(
    colorType=skia.ColorType.kRGBA_8888_ColorType
  )
  return (rgba[:, :, 3:] / 255.0).astype(np.float32)


# -- TinySVG and Rainbow (iceberg) ---------------------------------------------


def _iceberg():
  try:
    import iceberg as ice
  except ImportError as e:  # pragma: no cover
    raise ImportError(
      "reference TinySVG/Rainbow rendering needs "
      "iceberg-dsl==0.1.2 (pip install -e '.[test]')"
    ) from e
  return ice


_MOVE_CLASS = None


def _move_class(ice):
  """A drawable that draws its child moved but keeps the child's bounds."""
  global _MOVE_CLASS
  if _MOVE_CLASS is None:

    class _Move(ice.Drawable):
      child: ice.Drawable
      x: float
      y: float

      def setup(self):
        self._child_bounds = self.child.bounds
        self._moved = self.child.move(self.x, self.y)

      @property
      def bounds(self):
        return self._child_bounds

      def draw(self, canvas):
        self._moved.draw(canvas)

      @property
      def children(self):
        return [self._moved]

    _MOVE_CLASS = _Move
  return _MOVE_CLASS


def _color(ice, name: str):
  return None if name == "none" else ice.Color.from_hex(COLORS[name])


def _tinysvg_drawable(ice, grammar, node: Node, rainbow: bool):
  name = grammar.symbols[grammar.symbol_of(node)]
  if name == "s":
    return _tinysvg_drawable(ice, grammar, node.kids[0], rainbow)
  args = _children_text(grammar, node)
  if name in ("box", "ball"):
    bounds = ice.Bounds(size=(10, 10))
    cls = ice.Rectangle if name == "box" else ice.Ellipse
    return cls(
      rectangle=bounds,
      fill_color=_color(ice, args[0]),
      anti_alias=name == "ball",
    )
  if name in ("rect", "ellipse"):
    w, h, fill, stroke, sw = args
    cls = ice.Rectangle if name == "rect" else ice.Ellipse
    return cls(
      rectangle=ice.Bounds(size=(int(w) * 6.0, int(h) * 6.0)),
      fill_color=_color(ice, fill),
      border_color=_color(ice, stroke),
      border_thickness=int(sw) / 2.0,
      anti_alias=name == "ellipse",
      dont_modify_bounds=True,
    )
  if name == "arrange":
    direction = (
      ice.Arrange.Direction.HORIZONTAL
      if args[0] == "h"
      else ice.Arrange.Direction.VERTICAL
    )
    left = _tinysvg_drawable(ice, grammar, node.kids[1], rainbow)
    right = _tinysvg_drawable(ice, grammar, node.kids[2], rainbow)
    if rainbow:
      return ice.Arrange([left, right], arrange_direction=direction)
    return ice.Arrange(
      [left, right], arrange_direction=direction, gap=int(args[3])
    )
  if name == "move":
    child = _tinysvg_drawable(ice, grammar, node.kids[0], rainbow)
    x, y = int(args[1]) * 6.0, int(args[2]) * 6.0
    x = -x if args[3] == "true" else x
    y = -y if args[4] == "true" else y
    return _move_class(ice)(child=child, x=x, y=y)
  raise ValueError(f"unexpected node {name!r}")


_RENDERERS = {}


def _render_iceberg(lang: str, program: Node | str) -> np.ndarray:
  ice = _iceberg()
  language = get_language(lang)
  g = language.grammar
  node = g.parse(program) if isinstance(program, str) else program
  size = language.canvas_shape[0]
  if lang not in _RENDERERS:
    _RENDERERS[lang] = (
      ice.Renderer(gpu=False),
      ice.Blank(ice.Bounds(size=(size, size)), ice.Colors.WHITE),
    )
  renderer, canvas = _RENDERERS[lang]
  drawable = _tinysvg_drawable(ice, g, node, rainbow=lang == "rainbow")
  renderer.render(ice.Anchor((canvas, canvas.add_centered(drawable))))
  return (renderer.get_rendered_image()[:, :, :3] / 255.0).astype(np.float32)


def render_tinysvg(program: Node | str) -> np.ndarray:
  """The reference render of a TinySVG program: [224, 224, 3] float32."""
  return _render_iceberg("tinysvg", program)


def render_rainbow(program: Node | str) -> np.ndarray:
  """The reference render of a Rainbow program: [64, 64, 3] float32."""
  return _render_iceberg("rainbow", program)


RENDER = {
  "csg2d": render_csg2d,
  "tinysvg": render_tinysvg,
  "rainbow": render_rainbow,
}


def render(lang: str, program: Node | str) -> np.ndarray:
  """The reference render of `program` in language `lang`: [H, W, C]."""
  return RENDER[get_language(lang).name](program)
