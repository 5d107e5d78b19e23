"""The languages: CSG2D, TinySVG and Rainbow (docs/design.md, "Languages").

Each `Language` carries its grammar, its primitives, its canvas shape and its
name, plus the token budget used to pad programs. The grammars accept exactly
the program text of the published reference implementation; tabs and
newlines are ignored there as here.
"""

from __future__ import annotations

import dataclasses
import functools

from treediff_jax.dsl.grammar import Grammar, ProgramTooLongError
from treediff_jax.dsl.tree import Node

SIGMA_SMALL = 2  # primitives in a small node or replacement (docs/design.md)
# A render counts as empty when this share of its pixels agree (docs/design.md:
# training targets that render almost one colour are redrawn).
EMPTY_FRACTION = 0.99

_HEX = " | ".join(f'"{c}"' for c in "0123456789ABCDEF")
_ANGLES = " | ".join(f'"{c}"' for c in "GHIJKLMN")
_DIGITS = " | ".join(f'"{c}"' for c in "0123456789")
# TinySVG and Rainbow colours (docs/design.md); TinySVG adds "none",
# which paints nothing.
COLORS = {
  "red": "#FF0000",
  "green": "#00FF00",
  "blue": "#0000FF",
  "yellow": "#FFFF00",
  "purple": "#800080",
  "orange": "#FFA500",
  "black": "#000000",
  "white": "#FFFFFF",
}
_COLORS8 = " | ".join(f'"{c}"' for c in COLORS)

CSG2D_SPEC = rf"""
s: binop | circle | quad
binop: "(" op " " s " " s ")"
op: "+" | "-"
circle: "(" "Circle" " " num " " num " " num ")"
quad: "(" "Quad" " " num " " num " " num " " num " " angle ")"
num: {_HEX}
angle: {_ANGLES}
%ignore /[\t\n\f\r]+/
"""

TINYSVG_SPEC = rf"""
s: arrange | rect | ellipse | move
dir: "v" | "h"
color: {_COLORS8} | "none"
num: {_DIGITS}
bool: "true" | "false"
rect: "(" "Rectangle" " " num " " num " " color " " color " " num ")"
ellipse: "(" "Ellipse" " " num " " num " " color " " color " " num ")"
arrange: "(" "Arrange" " " dir " " s " " s " " num ")"
move: "(" "Move" " " s " " num " " num " " bool " " bool ")"
%ignore /[\t\n\f\r]+/
"""

RAINBOW_SPEC = rf"""
s: arrange | box | ball
dir: "v" | "h"
color: {_COLORS8}
box: "(" "Box" " " color ")"
ball: "(" "Ball" " " color ")"
arrange: "(" "Arrange" " " dir " " s " " s ")"
%ignore /[\t\n\f\r]+/
"""


@dataclasses.dataclass(frozen=True)
class Language:
  """A program language and what the rest of the code needs to know of it.

  Attributes:
    name: short name (`csg2d`, `tinysvg`, `rainbow`).
    grammar: the compiled grammar.
    canvas_shape: rendered image shape (H, W, C).
    max_program_len: programs longer than this many tokens are not used for
      training; token arrays of programs are padded to it.
    patch: the models' image patch size (8 x 8 = 64 image tokens for every
      language).
  """

  name: str
  grammar: Grammar
  canvas_shape: tuple[int, int, int]
  max_program_len: int
  patch: int

  @functools.cached_property
  def max_edit_len(self) -> int:
    """Most tokens of an edit, `<SOS> <POS p> replacement <EOS>`: the longest
    replacement of an editable symbol with at most SIGMA_SMALL primitives."""
    g = self.grammar
    editable = [s for s in range(len(g.symbols)) if g.editable[s]]
    return 3 + max(g.max_tokens(s, SIGMA_SMALL) for s in editable)

  @property
  def seq_len(self) -> int:
    """Length of a padded edit sequence (program then edit), a multiple of 8."""
    return -(-(self.max_program_len + self.max_edit_len) // 8) * 8

  def parse_bounded(self, text: str) -> Node:
    """Parses program text of at most `max_program_len` tokens.

    Text whose length alone shows it is over the budget is refused before
    it is parsed (each of `(`, `)` and a space is one token, and no token
    is longer than the longest terminal), so a huge text costs no parse.

    Raises:
      ProgramTooLongError: over the budget (the message names it).
      ProgramSyntaxError: not a program.
    """
    budget = self.max_program_len
    if isinstance(text, str):
      ignored = sum(text.count(c) for c in "\t\n\f\r")
      longest = max(len(t) for t in self.grammar.terminals)
      at_least = max(
        sum(text.count(c) for c in "() "),
        -(-(len(text) - ignored) // longest),
      )
      if at_least > budget:
        raise ProgramTooLongError(
          self.name,
          f"program of at least {at_least} tokens ({len(text)} characters) "
          f"is over the language's budget of {budget} tokens",
        )
    tree = self.grammar.parse(text)
    if tree.ntok > budget:
      raise ProgramTooLongError(
        self.name,
        f"program of {tree.ntok} tokens is over the language's budget of "
        f"{budget} tokens",
      )
    return tree

  @property
  def primitives(self) -> tuple[str, ...]:
    g = self.grammar
    return tuple(s for s, p in zip(g.symbols, g.is_primitive) if p)


# Program token budgets come from measured lengths of training examples (2..8
# primitive targets, 1..5 noise steps, rho = 0.2; 20,000 examples, see
# BENCHMARKS.md and `python -m benchmarks.data_gen --lengths`): the 99.9th
# percentile of current programs (159, 179, 113 tokens) rounded up to a
# multiple of 16. Longer examples are redrawn by the example generator.
_SPECS = {
  "csg2d": dict(
    spec=CSG2D_SPEC,
    primitives=("circle", "quad"),
    canvas_shape=(128, 128, 1),
    max_program_len=160,
    patch=16,
  ),
  "tinysvg": dict(
    spec=TINYSVG_SPEC,
    primitives=("rect", "ellipse", "move"),
    canvas_shape=(224, 224, 3),
    max_program_len=192,
    patch=28,
  ),
  "rainbow": dict(
    spec=RAINBOW_SPEC,
    primitives=("box", "ball"),
    canvas_shape=(64, 64, 3),
    max_program_len=128,
    patch=8,
  ),
}

# Names the reference implementation used.
ALIASES = {"csg2da": "csg2d"}

NAMES = tuple(_SPECS)


def get_language(name: str) -> Language:
  """The language called `name` (or one of its aliases).

  Raises:
    ValueError: no such language.
  """
  key = ALIASES.get(name, name)
  if key not in _SPECS:
    raise ValueError(
      f"unknown language {name!r}; choose one of {', '.join(NAMES)}"
    )
  return _build(key)


@functools.lru_cache(maxsize=None)
def _build(key: str) -> Language:
  s = _SPECS[key]
  grammar = Grammar(key, s["spec"], "s", s["primitives"])
  return Language(
    key, grammar, s["canvas_shape"], s["max_program_len"], s["patch"]
  )
