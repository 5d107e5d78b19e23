"""CSG2D program structure on the host: the in-order primitive sequence.

The reference renders a CSG2D program by flattening it into its in-order
sequence P1 op1 P2 op2 P3 ... and folding left to right; `inorder` gives that
sequence with numeric arguments, for host-side consumers (the reference
renderer, the coarse emptiness check).
"""

from __future__ import annotations

from typing import NamedTuple

from treediff_jax.dsl.tree import Node

HEX = "0123456789ABCDEF"
ANGLES = "GHIJKLMN"  # 0, 45, ..., 315 degrees


class Primitive(NamedTuple):
  """One primitive of the in-order sequence.

  Attributes:
    op: "+" or "-" joining it to the fold of the ones before; None first.
    kind: "circle" (args r, x, y) or "quad" (args x, y, w, h, degrees).
    args: numeric arguments in number units (degrees for the angle).
  """

  op: str | None
  kind: str
  args: tuple[int, ...]


def inorder(grammar, node: Node) -> list[Primitive]:
  """The in-order primitive sequence of a CSG2D tree."""
  out: list[Primitive] = []
  ops: list[str | None] = [None]

  def walk(x: Node):
    name = grammar.symbols[grammar.symbol_of(x)]
    if name == "s":
      return walk(x.kids[0])
    if name == "binop":
      op, left, right = x.kids
      walk(left)
      ops.append(grammar.to_text(op))
      return walk(right)
    texts = [grammar.to_text(k) for k in x.kids]
    args = tuple(
      HEX.index(t) if t in HEX else 45 * ANGLES.index(t) for t in texts
    )
    out.append(Primitive(ops[-1], name, args))

  walk(node)
  return out
