"""Edits of syntax trees: the forward noise and the reverse path.

An `Edit` replaces the node at a tree address by a new subtree of the same
symbol. Noise applies random small mutations; the reverse path is a short
sequence of small edits from any program to any other program of the same
language (docs/design.md, "Noise, paths and training examples").
"""

from __future__ import annotations

from typing import NamedTuple

from treediff_jax.dsl.grammar import Grammar
from treediff_jax.dsl.languages import SIGMA_SMALL
from treediff_jax.dsl.rng import as_host_rng
from treediff_jax.dsl.sampler import sample
from treediff_jax.dsl.tree import (
  Node,
  edit_sites,
  node_at,
  position_of,
  replace_at,
)


class Edit(NamedTuple):
  """Replace the node at `address` by `replacement` (same symbol)."""

  address: tuple[int, ...]
  replacement: Node

  def apply(self, grammar: Grammar, root: Node) -> Node:
    """The tree after the edit."""
    return replace_at(grammar, root, self.address, self.replacement)

  def position(self, grammar: Grammar, root: Node) -> int:
    """Token index of the replaced node in `root` (before the edit)."""
    return position_of(grammar, root, self.address)

  def describe(self, grammar: Grammar, root: Node) -> str:
    """One line: where in `root` the edit starts, what it replaces, by what."""
    old = grammar.to_text(node_at(root, self.address))
    new = grammar.to_text(self.replacement)
    return f"at token {self.position(grammar, root)}: {old}  ->  {new}"


def apply_edits(grammar: Grammar, root: Node, edits) -> Node:
  """Applies `edits` in order."""
  for e in edits:
    root = e.apply(grammar, root)
  return root


# -- noise -------------------------------------------------------------------


def random_mutation(
  grammar: Grammar,
  root: Node,
  rng,
  max_selected: int = SIGMA_SMALL,
  max_replacement: int = SIGMA_SMALL,
  max_attempts: int = 100,
) -> Edit | None:
  """One small random mutation of `root`.

  Picks a primitive count uniformly among the counts of editable nodes with at
  most `max_selected` primitives, then such a node of that count uniformly,
  and replaces it by a freshly sampled subtree of its symbol with at most
  `max_replacement` primitives that differs from it.

  Returns:
    The edit, or None if no node can be mutated.
  """
  rng = as_host_rng(rng)
  by_count: dict[int, list] = {}
  for site in edit_sites(grammar, root):
    if site.node.size <= max_selected:
      by_count.setdefault(site.node.size, []).append(site)
  counts = sorted(by_count)
  while counts:
    ci = rng.below(len(counts))
    sites = by_count[counts[ci]]
    site = sites.pop(rng.below(len(sites)))
    if not sites:
      counts.pop(ci)
    sym = grammar.prod_lhs[site.node.prod]
    if grammar.min_cost[sym] > max_replacement:
      continue
    for _ in range(max_attempts):
      new = sample(grammar, sym, 0, max_replacement, rng)
      if new != site.node:
        return Edit(site.address, new)
  return None


def noise(
  grammar: Grammar, root: Node, steps: int, rng
) -> tuple[Node, list[Edit]]:
  """Applies `steps` random mutations.

  Returns:
    The noised tree and the mutations applied, in order.
  """
  rng = as_host_rng(rng)
  edits = []
  for _ in range(steps):
    e = random_mutation(grammar, root, rng)
    if e is None:
      break
    edits.append(e)
    root = e.apply(grammar, root)
  return root, edits


# -- reverse path --------------------------------------------------------------


def first_differences(
  a: Node, b: Node, address: tuple[int, ...] = ()
) -> list[tuple]:
  """Topmost nodes where `a` and `b` use different productions.

  Returns:
    (address, node of a, node of b) for each, in token order.
  """
  out = []
  stack = [(a, b, address)]
  while stack:
    x, y, addr = stack.pop()
    if x is y:
      continue
    if x.prod != y.prod:
      out.append((addr, x, y))
      continue
    for i in range(len(x.kids) - 1, -1, -1):
      stack.append((x.kids[i], y.kids[i], addr + (i,)))
  return out


def small_approximation(
  grammar: Grammar, target: Node, budget: int, rng
) -> Node:
  """A subtree of `target`'s symbol with at most `budget` primitives.

  Returns `target` itself when it fits. Otherwise it keeps `target`'s
  production and fills the child slots within the budget: children that fit
  are copied exactly (so all zero-primitive parts, such as numbers, match the
  target), the others are approximated recursively, and where even the
  production does not fit a random cheapest subtree is sampled. A symbol whose
  cheapest subtree exceeds `budget` gets that cheapest size.
  """
  if target.size <= budget:
    return target
  sym = grammar.prod_lhs[target.prod]
  slots = grammar.prod_slots[target.prod]
  min_cost = grammar.min_cost
  base = grammar.prod_prim[target.prod] + sum(min_cost[s] for s in slots)
  if base > budget:
    cost = min_cost[sym]
    return sample(grammar, sym, cost, cost, rng)
  extra = budget - base
  kids = list(target.kids)
  order = list(range(len(kids)))
  rng.shuffle(order)
  for i in order:
    k = kids[i]
    cost = min_cost[slots[i]]
    kids[i] = small_approximation(grammar, k, cost + extra, rng)
    extra -= kids[i].size - cost
  return grammar.node(target.prod, kids)


def reverse_path(
  grammar: Grammar,
  source: Node,
  target: Node,
  rng,
  small: int = SIGMA_SMALL,
  max_rounds: int | None = None,
) -> list[Edit] | None:
  """A sequence of small edits that turns `source` into `target`.

  Each round finds the topmost nodes where the trees differ. Where the target
  node has at most `small` primitives it is copied in one edit; otherwise the
  source node is replaced by a small approximation of the target node (its
  production, its small parts) and later rounds refine it. Within a round the
  edits are applied largest first (tokens removed plus inserted), ties in
  random order.

  Returns:
    The edits (each to be applied to the result of the previous ones; every
    replacement has at most `small` primitives, or its symbol's minimum), or
    None if the trees still differ after `max_rounds` rounds (by default
    enough for any pair of trees of these languages).
  """
  rng = as_host_rng(rng)
  if max_rounds is None:
    # Every round fixes the top production of each differing node, so the
    # tree's depth (under its token count) bounds the rounds needed.
    max_rounds = max(50, target.ntok + 1)
  current = source
  path: list[Edit] = []
  for _ in range(max_rounds):
    diffs = first_differences(current, target)
    if not diffs:
      return path
    rng.shuffle(diffs)
    edits = []
    for addr, x, y in diffs:
      new = (
        y if y.size <= small else small_approximation(grammar, y, small, rng)
      )
      edits.append((x.ntok + new.ntok, Edit(addr, new)))
    edits.sort(key=lambda t: -t[0])  # stable: ties keep the shuffled order
    for _, e in edits:
      path.append(e)
      current = e.apply(grammar, current)
  return path if not first_differences(current, target) else None


def invert_last_mutation(before: Node, mutation: Edit) -> Edit:
  """The edit that undoes `mutation`, which was applied to `before`."""
  return Edit(mutation.address, node_at(before, mutation.address))
