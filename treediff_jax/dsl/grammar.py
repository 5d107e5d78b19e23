"""A context-free grammar on lark, compiled into tables for fast tree work.

A `Grammar` is built from a lark spec and the set of primitive rule names. It
holds every nonterminal (symbol) with its productions, every terminal string,
and the minimum number of primitives each symbol and production can derive.
Programs are represented as `Node` trees (see `tree.py`); `parse` turns text
into a tree, `to_text` turns it back.

Restrictions, checked at construction so that edit positions stay
well defined: no empty productions, no lark tree shaping (`?rule`, `_rule`),
only literal-string terminals, and no two editable symbols (symbols with more
than one production) that can start at the same token.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import lark
from lark import exceptions as lark_exceptions

from treediff_jax.dsl.tree import Node

UNBOUNDED = 1 << 30  # max_cost of a symbol that derives any number


class GrammarError(ValueError):
  """The grammar spec cannot be used (see the module docstring)."""


class ProgramSyntaxError(ValueError):
  """Program text that is not a program of the language.

  Attributes:
    language: name of the language.
    position: character offset of the error in the program text (for token
      ids, in the text the ids spell; for an id that is not a terminal, its
      index).
    expected: sorted terminal strings that would have been accepted there.
  """

  def __init__(
    self,
    language: str,
    position: int,
    expected: Sequence[str],
    detail: str,
    text: str | None = None,
  ):
    self.language = language
    self.position = position
    self.expected = tuple(expected)
    self.detail = detail
    self.text = text
    exp = ", ".join(repr(e) for e in self.expected) or "the end of the program"
    msg = f"{language}: {detail} at position {position}; expected one of {exp}"
    if text is not None:
      shown = text if len(text) <= 120 else text[:117] + "..."
      msg += f"\n  {shown}"
      if position <= 120:
        msg += "\n  " + " " * position + "^"
    super().__init__(msg)


class ProgramTooLongError(ProgramSyntaxError):
  """Program text over a language's token budget (refused before it is
  parsed where its length alone shows it)."""

  def __init__(self, language: str, detail: str):
    self.language = language
    self.position = 0
    self.expected = ()
    self.detail = detail
    self.text = None
    ValueError.__init__(self, f"{language}: {detail}")


@dataclasses.dataclass(frozen=True)
class Production:
  """One alternative of a nonterminal.

  Attributes:
    index: global production id.
    lhs: symbol id of the nonterminal it expands.
    items: its right-hand side, each ("t", terminal id) or ("n", symbol id).
  """

  index: int
  lhs: int
  items: tuple[tuple[str, int], ...]


class Grammar:
  """Tables for a lark grammar; see the module docstring."""

  def __init__(
    self, name: str, spec: str, start: str, primitives: Sequence[str]
  ):
    self.name = name
    self.spec = spec
    try:
      probe = lark.Lark(spec, parser="lalr", start=start)
    except lark_exceptions.LarkError as e:
      raise GrammarError(f"{name}: lark rejects the grammar: {e}") from e
    rule_names = sorted({str(r.origin.name) for r in probe.rules})
    self._lark = lark.Lark(
      spec,
      start=rule_names,
      parser="lalr",
      lexer="contextual",
      keep_all_tokens=True,
      maybe_placeholders=False,
    )

    # Symbols (nonterminals), in order of first definition.
    self.symbols: list[str] = []
    for r in self._lark.rules:
      if str(r.origin.name) not in self.symbols:
        self.symbols.append(str(r.origin.name))
      if r.origin.name.startswith("_") or r.options.expand1:
        raise GrammarError(
          f"{name}: rule {str(r.origin.name)!r} uses lark tree shaping "
          "('_' or '?' prefix), which changes node structure"
        )
    self.symbol_id = {s: i for i, s in enumerate(self.symbols)}
    if start not in self.symbol_id:
      raise GrammarError(f"{name}: start symbol {start!r} is not a rule")
    self.start = self.symbol_id[start]
    unknown = set(primitives) - set(self.symbols)
    if unknown:
      raise GrammarError(f"{name}: primitives {sorted(unknown)} are not rules")
    self.is_primitive = [s in set(primitives) for s in self.symbols]

    # Terminals: the literal strings, in order of first use in a production.
    term_pattern = {}
    for t in self._lark.terminals:
      if t.name in self._lark.ignore_tokens:
        continue
      if not isinstance(t.pattern, lark.lexer.PatternStr):
        raise GrammarError(
          f"{name}: terminal {t.name} is a regular expression; only "
          "literal strings can be tokens"
        )
      term_pattern[t.name] = t.pattern.value
    self.terminals: list[str] = []
    self._term_name_to_id: dict[str, int] = {}
    for r in self._lark.rules:
      for x in r.expansion:
        if x.is_term and x.name not in self._term_name_to_id:
          self._term_name_to_id[x.name] = len(self.terminals)
          self.terminals.append(term_pattern[x.name])
    self.terminal_id = {s: i for i, s in enumerate(self.terminals)}

    # Productions and the tables the hot paths read.
    self.productions: list[Production] = []
    self.prods_of: list[list[int]] = [[] for _ in self.symbols]
    self._signature_to_prod: dict[tuple, int] = {}
    for r in self._lark.rules:
      if not r.expansion:
        raise GrammarError(
          f"{name}: rule {str(r.origin.name)!r} has an empty "
          "production; every node must span a token"
        )
      items = tuple(
        ("t", self._term_name_to_id[x.name])
        if x.is_term
        else ("n", self.symbol_id[x.name])
        for x in r.expansion
      )
      p = Production(
        len(self.productions), self.symbol_id[r.origin.name], items
      )
      self.productions.append(p)
      self.prods_of[p.lhs].append(p.index)
      sig = (r.alias or r.origin.name, tuple(x.name for x in r.expansion))
      if sig in self._signature_to_prod:
        raise GrammarError(
          f"{name}: two productions share alias and right-hand side {sig}"
        )
      self._signature_to_prod[sig] = p.index

    self.prod_lhs = [p.lhs for p in self.productions]
    # Per production: primitive count of its own symbol, number of terminal
    # tokens, the symbols of its child slots, and a token template where a
    # terminal is its id (>= 0) and child slot k is -(k + 1).
    self.prod_prim = [int(self.is_primitive[p.lhs]) for p in self.productions]
    self.prod_nterm = [
      sum(k == "t" for k, _ in p.items) for p in self.productions
    ]
    self.prod_slots = [
      tuple(v for k, v in p.items if k == "n") for p in self.productions
    ]
    self.prod_template = []
    self.prod_slot_offsets = []  # terminals before each child slot
    for p in self.productions:
      tmpl, offs, nt, slot = [], [], 0, 0
      for k, v in p.items:
        if k == "t":
          tmpl.append(v)
          nt += 1
        else:
          tmpl.append(-(slot + 1))
          offs.append(nt)
          slot += 1
      self.prod_template.append(tuple(tmpl))
      self.prod_slot_offsets.append(tuple(offs))
    self.editable = [len(ps) > 1 for ps in self.prods_of]
    self._compute_min_costs()
    self._check_edit_positions()

  # -- construction helpers ------------------------------------------------

  def _compute_min_costs(self):
    """Fixpoint of min_cost[s] = prim(s) + min_p sum(min_cost[children])."""
    inf = float("inf")
    cost = [inf] * len(self.symbols)
    changed = True
    while changed:
      changed = False
      for p in self.productions:
        c = self.prod_prim[p.index] + sum(
          cost[s] for s in self.prod_slots[p.index]
        )
        if c < cost[p.lhs]:
          cost[p.lhs] = c
          changed = True
    for s, c in enumerate(cost):
      if c == inf:
        raise GrammarError(
          f"{self.name}: rule {self.symbols[s]!r} derives no finite program"
        )
    self.min_cost: list[int] = [int(c) for c in cost]
    self.prod_min_cost: list[int] = [
      self.prod_prim[p.index] + sum(cost[s] for s in self.prod_slots[p.index])
      for p in self.productions
    ]
    # The most primitives a symbol can derive. Any finite maximum is reached
    # within N rounds of the fixpoint (N symbols); a value that still grows
    # after that grows forever, so it is UNBOUNDED.
    n = len(self.symbols)

    def rounds(values, count):
      for _ in range(count):
        new = [0] * n
        for p in self.productions:
          c = self.prod_prim[p.index] + sum(
            values[s] for s in self.prod_slots[p.index]
          )
          new[p.lhs] = max(new[p.lhs], min(c, UNBOUNDED))
        values = new
      return values

    settled = rounds([0] * n, n + 1)
    later = rounds(settled, n + 1)
    self.max_cost: list[int] = [
      UNBOUNDED if b > a else a for a, b in zip(settled, later)
    ]

  def max_tokens(self, symbol: int, max_primitives: int) -> int:
    """Most tokens of a subtree of `symbol` with at most `max_primitives`.

    Raises:
      ValueError: unbounded (a cycle of rules that adds no primitive) or no
        such subtree.
    """
    memo: dict[tuple[int, int], int] = {}
    active: set[tuple[int, int]] = set()
    neg = -(1 << 30)

    def best(sym: int, budget: int) -> int:
      key = (sym, budget)
      if key in memo:
        return memo[key]
      if key in active:
        raise ValueError(
          f"{self.name}: {self.symbols[sym]!r} has no token "
          "bound (a rule cycle adds no primitive)"
        )
      active.add(key)
      out = neg
      for p in self.prods_of[sym]:
        if self.prod_min_cost[p] > budget:
          continue
        # Split what is left over the slots, best total by DP.
        left = budget - self.prod_prim[p]
        row = {left: self.prod_nterm[p]}
        slots = self.prod_slots[p]
        for i, c in enumerate(slots):
          # Leave enough for the slots after this one.
          reserve = sum(self.min_cost[d] for d in slots[i + 1 :])
          new = {}
          for rem, tok in row.items():
            for use in range(self.min_cost[c], rem - reserve + 1):
              t = best(c, use)
              if t > neg and tok + t > new.get(rem - use, neg):
                new[rem - use] = tok + t
          row = new
        if row:
          out = max(out, max(row.values()))
      active.discard(key)
      memo[key] = out
      return out

    result = best(symbol, max_primitives)
    if result <= neg:
      raise ValueError(
        f"{self.name}: {self.symbols[symbol]!r} has no "
        f"subtree with at most {max_primitives} primitives"
      )
    return result

  def _check_edit_positions(self):
    """Editable nodes must start at distinct tokens (one <POS p>, one node)."""
    first_child: dict[int, set[int]] = {
      s: set() for s in range(len(self.symbols))
    }
    for p in self.productions:
      kind, v = p.items[0]
      if kind == "n":
        first_child[p.lhs].add(v)
    for s in range(len(self.symbols)):
      if not self.editable[s]:
        continue
      seen, stack = set(), list(first_child[s])
      while stack:
        c = stack.pop()
        if c in seen:
          continue
        seen.add(c)
        if self.editable[c]:
          raise GrammarError(
            f"{self.name}: editable rules {self.symbols[s]!r} and "
            f"{self.symbols[c]!r} can start at the same token, so an edit "
            "position would not name one node"
          )
        stack.extend(first_child[c])

  # -- nodes ---------------------------------------------------------------

  def node(self, prod: int, kids: Sequence[Node] = ()) -> Node:
    """Builds a node for production `prod` over child nodes `kids`."""
    kids = tuple(kids)
    size = self.prod_prim[prod]
    ntok = self.prod_nterm[prod]
    for k in kids:
      size += k.size
      ntok += k.ntok
    return Node(prod, kids, size, ntok)

  def symbol_of(self, node: Node) -> int:
    """Symbol id (nonterminal) that `node` derives."""
    return self.prod_lhs[node.prod]

  # -- text ----------------------------------------------------------------

  def parse(self, text: str, symbol: str | int | None = None) -> Node:
    """Parses program text into a tree.

    Args:
      text: the program, in the language's concrete syntax.
      symbol: nonterminal to parse as (name or id); the start symbol if None.

    Returns:
      The tree.

    Raises:
      ProgramSyntaxError: the text is not a derivation of `symbol`.
    """
    if symbol is None:
      symbol = self.start
    sym_name = self.symbols[symbol] if isinstance(symbol, int) else symbol
    if sym_name not in self.symbol_id:
      raise ValueError(f"{self.name}: unknown symbol {sym_name!r}")
    if not isinstance(text, str):
      raise ProgramSyntaxError(
        self.name, 0, (), f"program is {type(text).__name__}, not text"
      )
    try:
      tree = self._lark.parse(text, start=sym_name)
      return self._from_lark(tree)
    except lark_exceptions.UnexpectedInput as e:
      raise self._syntax_error(e, text) from None
    except lark_exceptions.LarkError as e:
      raise ProgramSyntaxError(self.name, 0, (), str(e), text) from None
    except RecursionError:
      raise ProgramSyntaxError(
        self.name, 0, (), "program nests too deeply to parse", text
      ) from None

  def _syntax_error(self, e, text: str) -> ProgramSyntaxError:
    pos = getattr(e, "pos_in_stream", None)
    if pos is None:
      pos = len(text)
    names = set(getattr(e, "expected", None) or ())
    names |= set(getattr(e, "allowed", None) or ())
    expected = sorted(
      self.terminals[self._term_name_to_id[n]]
      for n in names
      if n in self._term_name_to_id
    )
    if isinstance(e, lark_exceptions.UnexpectedEOF):
      detail = "program ends early"
      pos = len(text)
    elif isinstance(e, lark_exceptions.UnexpectedCharacters):
      detail = f"unexpected character {text[pos : pos + 1]!r}"
    else:
      tok = getattr(e, "token", None)
      if tok is not None and getattr(tok, "type", None) == "$END":
        detail = "program ends early"
        pos = len(text)
      else:
        detail = f"unexpected token {str(tok)!r}"
    return ProgramSyntaxError(self.name, int(pos), expected, detail, text)

  def _from_lark(self, tree) -> Node:
    kids, names = [], []
    for c in tree.children:
      if isinstance(c, lark.Token):
        names.append(c.type)
      else:
        k = self._from_lark(c)
        kids.append(k)
        names.append(self.symbols[self.prod_lhs[k.prod]])
    prod = self._signature_to_prod[(str(tree.data), tuple(names))]
    return self.node(prod, kids)

  def tokens(self, node: Node) -> list[int]:
    """Terminal ids of `node` in order (ids index `self.terminals`)."""
    out: list[int] = []
    stack = [node]
    templates = self.prod_template
    while stack:
      x = stack.pop()
      if isinstance(x, int):
        out.append(x)
        continue
      tmpl = templates[x.prod]
      kids = x.kids
      for t in reversed(tmpl):
        stack.append(t if t >= 0 else kids[-t - 1])
    return out

  def to_text(self, node: Node) -> str:
    """Concrete syntax of `node`."""
    terms = self.terminals
    return "".join(terms[t] for t in self.tokens(node))

  def from_tokens(
    self, token_ids: Sequence[int], symbol: str | int | None = None
  ) -> Node:
    """Parses terminal ids (as from `tokens`) into a tree.

    Raises:
      ProgramSyntaxError: an id is out of range or the ids are not a program;
        `position` is then a character offset into the joined text.
    """
    n = len(self.terminals)
    for i, t in enumerate(token_ids):
      if not 0 <= int(t) < n:
        raise ProgramSyntaxError(
          self.name, i, (), f"token id {int(t)} at index {i} is not a terminal"
        )
    return self.parse(
      "".join(self.terminals[int(t)] for t in token_ids), symbol
    )

  def __repr__(self):
    return (
      f"Grammar({self.name!r}, {len(self.symbols)} symbols, "
      f"{len(self.productions)} productions, "
      f"{len(self.terminals)} terminals)"
    )
