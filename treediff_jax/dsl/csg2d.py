"""CSG2D program structure on the host: the in-order primitive sequence.

The reference renders a CSG2D program by flattening it into its in-order
sequence P1 op1 P2 op2 P3 ... and folding left to right; `inorder` gives that
sequence with numeric arguments, for host-side consumers (the reference
renderer, the coarse emptiness check).
"""

from __future__ import annotations

import functools
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


# -- REPL steps ----------------------------------------------------------------
#
# REPL Flow builds a program one primitive at a time: step i appends
# primitive P_i with its operator, and the program so far is the left-nested
# fold `(op_j ... (op_2 P_1 P_2) ... P_j)`, which renders exactly as the
# first j steps of the in-order fold. The first step's operator is "+"
# (union with the empty canvas).


class Step(NamedTuple):
  """One REPL step: `op` ("+" or "-") and `primitive`, a start-symbol node
  deriving one circle or quad."""

  op: str
  primitive: Node


def repl_steps(grammar, program: Node) -> list[Step]:
  """The REPL steps of a CSG2D tree: its in-order primitives with their
  operators (the first one "+")."""
  out: list[Step] = []
  ops = ["+"]

  def walk(x: Node):
    if grammar.symbols[grammar.symbol_of(x.kids[0])] == "binop":
      op, left, right = x.kids[0].kids
      walk(left)
      ops.append(grammar.to_text(op))
      return walk(right)
    out.append(Step(ops[-1], x))

  walk(program)
  return out


@functools.lru_cache(maxsize=None)
def _binop_parts(grammar):
  """(production of s -> binop, production of binop, op nodes by text)."""
  s = grammar.parse("(+ (Circle 1 1 1) (Circle 1 1 1))")
  ops = {o: grammar.parse(o, "op") for o in "+-"}
  return s.prod, s.kids[0].prod, ops


def append_step(grammar, program: Node | None, step: Step) -> Node:
  """`program` with `step` appended: `(op program primitive)`, or the
  primitive alone when `program` is None (the empty canvas).

  Raises:
    ValueError: the step's node is not one primitive or its op is unknown.
  """
  if step.primitive.size != 1 or (
    grammar.symbols[grammar.symbol_of(step.primitive.kids[0])] == "binop"
  ):
    raise ValueError("a REPL step places exactly one circle or quad")
  if step.op not in "+-" or len(step.op) != 1:
    raise ValueError(f"REPL step operator must be + or -, got {step.op!r}")
  if program is None:
    return step.primitive
  s_prod, binop_prod, ops = _binop_parts(grammar)
  binop = grammar.node(binop_prod, (ops[step.op], program, step.primitive))
  return grammar.node(s_prod, (binop,))


def build_program(grammar, steps) -> Node | None:
  """The left-nested program of `steps` (None for no steps)."""
  program = None
  for step in steps:
    program = append_step(grammar, program, step)
  return program
