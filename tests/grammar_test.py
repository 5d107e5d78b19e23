"""Tests of the grammar core and the three languages' concrete syntax."""

import pathlib

import pytest

from treediff_jax.dsl.grammar import Grammar, GrammarError, ProgramSyntaxError
from treediff_jax.dsl.languages import NAMES, get_language

GOLDEN = pathlib.Path(__file__).resolve().parents[2] / "shared" / "golden"


def _golden_programs(name):
  path = GOLDEN / f"{name}.txt"
  if not path.exists():
    pytest.skip(f"golden programs not found at {path}")
  return path.read_text().splitlines()


@pytest.mark.parametrize("name", NAMES)
def test_reference_programs_parse_and_print_back(name):
  g = get_language(name).grammar
  programs = _golden_programs(name)
  assert len(programs) >= 32
  for text in programs:
    tree = g.parse(text)
    assert g.to_text(tree) == text
    assert tree.ntok == len(g.tokens(tree))


def test_csg2d_tables():
  g = get_language("csg2d").grammar
  s, binop, circle = (g.symbol_id[n] for n in ("s", "binop", "circle"))
  assert g.min_cost[s] == 1 and g.min_cost[binop] == 2
  assert g.min_cost[circle] == 1 and g.min_cost[g.symbol_id["num"]] == 0
  assert [g.symbols[i] for i, e in enumerate(g.editable) if e] == [
    "s",
    "op",
    "num",
    "angle",
  ]
  assert len(g.prods_of[g.symbol_id["num"]]) == 16
  assert len(g.prods_of[g.symbol_id["angle"]]) == 8
  for t in ["(", ")", " ", "+", "-", "Circle", "Quad", "0", "F", "G", "N"]:
    assert t in g.terminal_id


def test_tinysvg_move_counts_itself_and_its_child():
  g = get_language("tinysvg").grammar
  t = g.parse("(Move (Rectangle 4 2 red none 0) 1 2 true false)")
  assert t.size == 2
  assert g.min_cost[g.symbol_id["move"]] == 2
  t = g.parse(
    "(Arrange h (Ellipse 1 1 none black 3) (Rectangle 1 1 red none 0) 0)"
  )
  assert t.size == 2


def test_node_symbols_and_positions():
  g = get_language("csg2d").grammar
  t = g.parse("(+ (Circle 1 2 3) (Quad 1 2 3 4 G))")
  assert g.symbols[g.symbol_of(t)] == "s"
  assert g.symbols[g.symbol_of(t.kids[0])] == "binop"


def test_tabs_and_newlines_are_ignored_like_the_reference():
  g = get_language("csg2d").grammar
  assert g.to_text(g.parse("(+ (Circle 1 2 3)\n (Circle 4 5 6))")) == (
    "(+ (Circle 1 2 3) (Circle 4 5 6))"
  )


@pytest.mark.parametrize(
  "text,position,expected",
  [
    ("(Circle 1 2)", 11, " "),
    ("(Circle 1 2 3", 13, ")"),
    ("(Circle 1 2 G)", 12, "F"),
    ("(* (Circle 1 2 3) (Circle 1 2 3))", 1, "Circle"),
    ("", 0, "("),
    ("(Circle 1 2 3))", 14, None),
  ],
)
def test_syntax_errors_name_language_position_and_expected(
  text, position, expected
):
  g = get_language("csg2d").grammar
  with pytest.raises(ProgramSyntaxError) as info:
    g.parse(text)
  err = info.value
  assert err.language == "csg2d"
  assert err.position == position
  if expected is not None:
    assert expected in err.expected
  assert "csg2d" in str(err) and str(position) in str(err)


def test_parse_as_a_nonterminal():
  g = get_language("tinysvg").grammar
  t = g.parse("purple", "color")
  assert g.symbols[g.symbol_of(t)] == "color"
  with pytest.raises(ProgramSyntaxError):
    g.parse("purple", "num")


def test_non_text_program_is_a_syntax_error():
  with pytest.raises(ProgramSyntaxError):
    get_language("rainbow").grammar.parse(b"(Box red)")


def test_unknown_language_is_named():
  with pytest.raises(ValueError, match="unknown language 'csg3d'"):
    get_language("csg3d")
  assert get_language("csg2da") is get_language("csg2d")


@pytest.mark.parametrize(
  "spec,match",
  [
    ('s: a | b\na: x\nx: "1" | "2"\nb: "3"\n', "same token"),
    ('s: "(" t ")" | "x"\n?t: s | "y"\n', "tree shaping"),
    ('s: "a" | /[0-9]+/\n', "regular expression"),
    ('s: "(" s ")"\n', "no finite program"),
  ],
)
def test_unusable_grammars_are_rejected(spec, match):
  with pytest.raises(GrammarError, match=match):
    Grammar("bad", spec, "s", [])


def test_generic_grammar_with_aliases():
  spec = (
    's: pair | leaf\npair: "[" s "," s "]"\nleaf: "<" val ">"\n'
    'val: "a" -> first | "b"\n'
  )
  g = Grammar("toy", spec, "s", ["leaf"])
  t = g.parse("[<a>,[<b>,<a>]]")
  assert t.size == 3
  assert g.to_text(t) == "[<a>,[<b>,<a>]]"


def test_max_tokens_and_edit_budgets():
  g = get_language("csg2d").grammar
  s = g.symbol_id["s"]
  assert g.max_tokens(s, 1) == 13  # one quad
  assert g.max_tokens(s, 2) == 31  # (op quad quad)
  assert get_language("csg2d").max_edit_len == 34
  t = get_language("tinysvg").grammar
  # (Move (Rectangle ...) ...) is 12 + 13 tokens; (Arrange d rect rect n)
  # is 9 + 2 * 13.
  assert t.max_tokens(t.symbol_id["s"], 2) == 35
  for name in NAMES:
    lang = get_language(name)
    assert lang.seq_len % 8 == 0
    assert lang.seq_len >= lang.max_program_len + lang.max_edit_len


def test_csg2d_inorder_sequence():
  from treediff_jax.dsl import csg2d

  g = get_language("csg2d").grammar
  t = g.parse("(- (Circle 4 8 8) (+ (Quad 1 2 3 4 H) (Circle 1 2 2)))")
  seq = csg2d.inorder(g, t)
  assert [(p.op, p.kind) for p in seq] == [
    (None, "circle"),
    ("-", "quad"),
    ("+", "circle"),
  ]
  assert seq[0].args == (4, 8, 8)
  assert seq[1].args == (1, 2, 3, 4, 45)


def test_max_cost_of_generic_grammars():
  from treediff_jax.dsl.grammar import UNBOUNDED
  from treediff_jax.dsl.sampler import sample

  g = Grammar(
    "t",
    'top: "[" s "]"\ns: pair | leaf\npair: "(" s "," s ")"\nleaf: "x"\n',
    "top",
    ["leaf"],
  )
  assert g.max_cost[g.symbol_id["top"]] == UNBOUNDED
  assert sample(g, "top", 10, 10, 0).size == 10
  # A cycle that adds no primitive does not make the count unbounded.
  w = Grammar(
    "w", 'w: wrap | leaf2\nwrap: "<" w ">"\nleaf2: "y"\n', "w", ["leaf2"]
  )
  assert w.max_cost[w.symbol_id["w"]] == 1


def test_deeply_nested_program_is_a_syntax_error_not_a_crash():
  g = get_language("tinysvg").grammar
  text = "(Rectangle 1 1 red none 0)"
  for _ in range(3000):
    text = f"(Move {text} 0 0 false false)"
  with pytest.raises(ProgramSyntaxError, match="nests too deeply"):
    g.parse(text)
