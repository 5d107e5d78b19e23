"""Immutable syntax-tree nodes and the tree operations edits need.

A `Node` is one production applied to child nodes (one per nonterminal on the
production's right-hand side; terminals are implied by the production). Nodes
are never mutated after construction, so edits copy only the path from the
root to the edited node and share everything else.

An *address* is the tuple of child indices from the root to a node. A
*position* is the index of the node's first token in the program's token
sequence; an edit names its node by position (`<POS p>`).
"""

from __future__ import annotations

from typing import NamedTuple


class Node:
  """One production applied to child nodes; build with `Grammar.node`.

  Attributes:
    prod: global production id.
    kids: child nodes, one per nonterminal slot of the production.
    size: number of primitives in the subtree.
    ntok: number of tokens in the subtree.
  """

  __slots__ = ("prod", "kids", "size", "ntok", "_hash")

  def __init__(self, prod: int, kids: tuple, size: int, ntok: int):
    self.prod = prod
    self.kids = kids
    self.size = size
    self.ntok = ntok
    self._hash = None

  def __eq__(self, other):
    if self is other:
      return True
    if not isinstance(other, Node):
      return NotImplemented
    return (
      self.prod == other.prod
      and self.ntok == other.ntok
      and self.kids == other.kids
    )

  def __hash__(self):
    if self._hash is None:
      self._hash = hash((self.prod, self.kids))
    return self._hash

  def __repr__(self):
    return f"Node(prod={self.prod}, size={self.size}, ntok={self.ntok})"


class Site(NamedTuple):
  """An editable node: where it starts, how to reach it, and the node."""

  position: int
  address: tuple[int, ...]
  node: Node


def node_at(root: Node, address: tuple[int, ...]) -> Node:
  """The node at `address` below `root`."""
  x = root
  for i in address:
    x = x.kids[i]
  return x


def position_of(grammar, root: Node, address: tuple[int, ...]) -> int:
  """Token index at which the node at `address` starts."""
  pos, x = 0, root
  offsets = grammar.prod_slot_offsets
  for i in address:
    pos += offsets[x.prod][i]
    for k in x.kids[:i]:
      pos += k.ntok
    x = x.kids[i]
  return pos


def replace_at(
  grammar, root: Node, address: tuple[int, ...], new: Node
) -> Node:
  """Returns `root` with the node at `address` replaced by `new`.

  Raises:
    ValueError: `new` derives a different symbol than the node it replaces.
  """
  old = node_at(root, address)
  if grammar.prod_lhs[old.prod] != grammar.prod_lhs[new.prod]:
    raise ValueError(
      f"replacement derives {grammar.symbols[grammar.prod_lhs[new.prod]]!r}"
      f" but the node derives {grammar.symbols[grammar.prod_lhs[old.prod]]!r}"
    )
  return _replace(grammar, root, address, 0, new)


def _replace(grammar, x: Node, address, depth: int, new: Node) -> Node:
  if depth == len(address):
    return new
  i = address[depth]
  kids = list(x.kids)
  kids[i] = _replace(grammar, kids[i], address, depth + 1, new)
  return grammar.node(x.prod, kids)


def edit_sites(grammar, root: Node) -> list[Site]:
  """All editable nodes of the tree, in token order.

  A node is editable when its symbol has more than one production. The
  grammar guarantees that no two editable nodes start at the same token.
  """
  out: list[Site] = []
  editable = grammar.editable
  lhs = grammar.prod_lhs
  offsets = grammar.prod_slot_offsets
  stack = [(root, (), 0)]
  while stack:
    x, addr, pos = stack.pop()
    if editable[lhs[x.prod]]:
      out.append(Site(pos, addr, x))
    kids = x.kids
    if kids:
      offs = offsets[x.prod]
      child_pos = []
      run = pos
      for i, k in enumerate(kids):
        child_pos.append(run + offs[i])
        run += k.ntok
      for i in range(len(kids) - 1, -1, -1):
        stack.append((kids[i], addr + (i,), child_pos[i]))
  return out


def site_at_position(grammar, root: Node, position: int) -> Site:
  """The editable node that starts at token `position`.

  Raises:
    ValueError: no editable node starts there.
  """
  for s in edit_sites(grammar, root):
    if s.position == position:
      return s
  raise ValueError(f"no editable node starts at token {position}")
