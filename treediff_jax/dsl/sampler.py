"""Constrained random sampling of programs with an exact primitive count.

`sample(grammar, symbol, min_primitives, max_primitives, rng)` draws N
uniformly from the feasible part of [min_primitives, max_primitives], then
grows a derivation from `symbol`: it repeatedly expands a uniformly chosen
open nonterminal, choosing among the productions that raise the reachable
minimum towards N without passing it while below N, and among the cheapest
productions once N is reached. The result has exactly N primitives.
"""

from __future__ import annotations

import functools

from treediff_jax.dsl.grammar import Grammar
from treediff_jax.dsl.rng import as_host_rng
from treediff_jax.dsl.tree import Node

_MAX_RETRIES = 100


@functools.lru_cache(maxsize=None)
def _tables(grammar: Grammar):
  """Per symbol: productions by cost increase over the symbol's minimum."""
  cheapest, growing = [], []
  for s, prods in enumerate(grammar.prods_of):
    base = grammar.min_cost[s]
    incs = [(grammar.prod_min_cost[p] - base, p) for p in prods]
    cheapest.append(tuple(p for inc, p in incs if inc == 0))
    growing.append(tuple((inc, p) for inc, p in incs if inc > 0))
  return cheapest, growing


def sample(
  grammar: Grammar,
  symbol: int | str,
  min_primitives: int,
  max_primitives: int,
  rng,
) -> Node:
  """Samples a subtree of `symbol` with an exact, random primitive count.

  Args:
    grammar: the grammar.
    symbol: nonterminal id or name to derive.
    min_primitives: lower end of the primitive count, inclusive; raised to
      the least the symbol can derive.
    max_primitives: upper end of the primitive count, inclusive; lowered to
      the most the symbol can derive.
    rng: numpy Generator, HostRng or int seed.

  Returns:
    A tree with N primitives, N uniform in the feasible range.

  Raises:
    ValueError: the range contains no count the symbol can derive.
  """
  rng = as_host_rng(rng)
  if isinstance(symbol, str):
    symbol = grammar.symbol_id[symbol]
  lo = max(min_primitives, grammar.min_cost[symbol])
  hi = min(max_primitives, grammar.max_cost[symbol])
  if lo > hi:
    raise ValueError(
      f"{grammar.name}: {grammar.symbols[symbol]!r} derives "
      f"{grammar.min_cost[symbol]}..{grammar.max_cost[symbol]} primitives, "
      f"asked for {min_primitives}..{max_primitives}"
    )
  n = rng.integers(lo, hi)
  for _ in range(_MAX_RETRIES):
    tree = _grow(grammar, symbol, n, rng)
    if tree.size == n:
      return tree
  raise ValueError(
    f"{grammar.name}: could not derive exactly {n} primitives "
    f"from {grammar.symbols[symbol]!r}"
  )


def _grow(grammar: Grammar, symbol: int, n: int, rng) -> Node:
  cheapest, growing = _tables(grammar)
  min_cost = grammar.min_cost
  prod_slots = grammar.prod_slots
  prod_min_cost = grammar.prod_min_cost
  # An open or expanded node is a list [symbol, production, child lists].
  root = [symbol, -1, None]
  queue = [root]
  potential = min_cost[symbol]  # primitives the partial tree must end with
  while queue:
    i = rng.below(len(queue))
    item = queue[i]
    queue[i] = queue[-1]
    queue.pop()
    s = item[0]
    need = n - potential
    prod = -1
    if need > 0 and growing[s]:
      options = [p for inc, p in growing[s] if inc <= need]
      if options:
        prod = (
          options[rng.below(len(options))] if len(options) > 1 else options[0]
        )
    if prod < 0:
      options = cheapest[s]
      prod = (
        options[rng.below(len(options))] if len(options) > 1 else options[0]
      )
    potential += prod_min_cost[prod] - min_cost[s]
    kids = [[c, -1, None] for c in prod_slots[prod]]
    item[1] = prod
    item[2] = kids
    queue.extend(kids)
  return _freeze(grammar, root)


def _freeze(grammar: Grammar, item) -> Node:
  return grammar.node(item[1], [_freeze(grammar, k) for k in item[2]])
