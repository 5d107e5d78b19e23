"""A language's LALR(1) parser as fixed arrays, run on the device.

The host compiles lark's LALR tables once per language into integer arrays
indexed by token id (`GrammarTables`). Device code then

* parses whole program token arrays (`parse_program`), yielding for every
  token position whether an editable node starts there, the node's symbol
  and where it ends: what choosing `<POS p>` and applying an edit need;
* decodes replacements token by token (`start_state`, `feed`, `allowed`):
  after any valid prefix of a derivation of a symbol, `allowed` is the set of
  tokens that keep it one (`<EOS>` when the prefix is already complete).

An action entry is 0 for an error, `s + 1` to shift to state `s`, and
`-(r + 1)` to reduce by rule `r`; `<EOS>` (and `<PAD>` in a program) plays
lark's end-of-input token `$END`.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from lark.parsers.lalr_analysis import Shift

from treediff_jax.dsl.languages import get_language
from treediff_jax.dsl.tokenizer import EOS, NUM_SPECIAL, PAD, Tokenizer


class GrammarTables(NamedTuple):
  """LALR tables of one language as arrays (NumPy on the host; the same
  fields as jax arrays inside device code).

  action: [S, V] int32 over token ids (see the module docstring).
  goto: [S, N] int32 state after reducing to symbol n (-1 where none).
  rule_len: [R] int32 right-hand side length of each rule.
  rule_lhs: [R] int32 symbol id each rule reduces to.
  start: [N] int32 start state of each symbol's parser.
  end: [N] int32 accepting state of each symbol's parser.
  editable: [N] bool symbols with more than one production.
  candidates: [T + 1] int32 the token ids a replacement can hold (the
    terminals) and <EOS>.
  """

  action: np.ndarray
  goto: np.ndarray
  rule_len: np.ndarray
  rule_lhs: np.ndarray
  start: np.ndarray
  end: np.ndarray
  editable: np.ndarray
  candidates: np.ndarray


@functools.lru_cache(maxsize=None)
def grammar_tables(lang: str) -> GrammarTables:
  """Compiles the LALR tables of `lang` (cached)."""
  language = get_language(lang)
  g = language.grammar
  vocab = Tokenizer(language).vocab_size
  table = g._lark.parser.parser._parse_table
  num_states = len(table.states)
  column = {name: t + NUM_SPECIAL for name, t in g._term_name_to_id.items()}
  column["$END"] = EOS
  rules, rule_index = [], {}
  action = np.zeros((num_states, vocab), np.int32)
  goto = np.full((num_states, len(g.symbols)), -1, np.int32)
  for state, acts in table.states.items():
    for name, (kind, arg) in acts.items():
      if name in g.symbol_id:
        goto[state, g.symbol_id[name]] = arg
      elif kind is Shift:
        action[state, column[name]] = arg + 1
      else:
        if arg not in rule_index:
          rule_index[arg] = len(rules)
          rules.append(arg)
        action[state, column[name]] = -(rule_index[arg] + 1)
  n = len(g.symbols)
  start = np.array([table.start_states[s] for s in g.symbols], np.int32)
  end = np.array([table.end_states[s] for s in g.symbols], np.int32)
  assert start.shape == end.shape == (n,)
  return GrammarTables(
    action=action,
    goto=goto,
    rule_len=np.array([len(r.expansion) for r in rules], np.int32),
    rule_lhs=np.array([g.symbol_id[r.origin.name] for r in rules], np.int32),
    start=start,
    end=end,
    editable=np.array(g.editable, bool),
    candidates=np.array(
      [EOS] + [NUM_SPECIAL + t for t in range(len(g.terminals))], np.int32
    ),
  )


def device_tables(lang: str) -> GrammarTables:
  """`grammar_tables(lang)` as jax arrays."""
  return GrammarTables(*(jnp.asarray(x) for x in grammar_tables(lang)))


# -- whole programs ----------------------------------------------------------


class ProgramSpans(NamedTuple):
  """What a parse of a program row tells about its nodes.

  valid: [] bool, the row is a program, then only padding.
  length: [] int32 program tokens before the padding.
  site: [L] bool, an editable node starts at this token.
  symbol: [L] int32 symbol of that node (-1 elsewhere).
  end: [L] int32 index one past that node's last token (0 elsewhere).
  """

  valid: jnp.ndarray
  length: jnp.ndarray
  site: jnp.ndarray
  symbol: jnp.ndarray
  end: jnp.ndarray


def parse_program(
  tables: GrammarTables, tokens: jnp.ndarray, symbol: int
) -> ProgramSpans:
  """Parses one token row as a derivation of `symbol` (static).

  Args:
    tables: device tables of the language.
    tokens: [L] int32, the program then <PAD>.
    symbol: symbol id of the grammar (the start symbol for programs).

  Returns:
    ProgramSpans of the row; `site` is all False where `valid` is False.
  """
  length = tokens.shape[0]
  depth = length + 2
  stack = jnp.zeros(depth, jnp.int32).at[0].set(tables.start[symbol])
  starts = jnp.zeros(depth, jnp.int32)
  site = jnp.zeros(length, bool)
  sym = jnp.full(length, -1, jnp.int32)
  end = jnp.zeros(length, jnp.int32)
  accept_state = tables.end[symbol]

  def cond(c):
    return ~c[0]

  def body(c):
    done, ok, i, sp, stack, starts, site, sym, end, steps = c
    t = jnp.where(i < length, tokens[jnp.minimum(i, length - 1)], PAD)
    t = jnp.where(t == PAD, EOS, t)
    a = tables.action[stack[sp - 1], t]
    # Shift.
    shift = a > 0
    # Reduce.
    r = jnp.maximum(-a - 1, 0)
    n = tables.rule_len[r]
    lhs = tables.rule_lhs[r]
    begin = starts[jnp.maximum(sp - n, 0)]
    below = stack[jnp.maximum(sp - n - 1, 0)]
    nxt = tables.goto[below, lhs]
    reduce_ = a < 0
    new_sp = jnp.where(shift, sp + 1, jnp.where(reduce_, sp - n + 1, sp))
    put = jnp.minimum(new_sp - 1, depth - 1)
    stack = jnp.where(
      shift | reduce_, stack.at[put].set(jnp.where(shift, a - 1, nxt)), stack
    )
    starts = jnp.where(
      shift | reduce_, starts.at[put].set(jnp.where(shift, i, begin)), starts
    )
    record = reduce_ & tables.editable[lhs]
    at = jnp.minimum(begin, length - 1)
    site = jnp.where(record, site.at[at].set(True), site)
    sym = jnp.where(record, sym.at[at].set(lhs), sym)
    end = jnp.where(record, end.at[at].set(i), end)
    accepted = reduce_ & (t == EOS) & (nxt == accept_state)
    error = (a == 0) | (new_sp >= depth) | (steps > 4 * length + 8)
    i = jnp.where(shift, i + 1, i)
    return (
      accepted | error,
      accepted,
      i,
      new_sp,
      stack,
      starts,
      site,
      sym,
      end,
      steps + 1,
    )

  init = (
    jnp.array(False),
    jnp.array(False),
    jnp.array(0, jnp.int32),
    jnp.array(1, jnp.int32),
    stack,
    starts,
    site,
    sym,
    end,
    jnp.array(0, jnp.int32),
  )
  _, ok, i, _, _, _, site, sym, end, _ = jax.lax.while_loop(cond, body, init)
  ok = ok & jnp.all((jnp.arange(length) < i) | (tokens == PAD))
  return ProgramSpans(ok, i, site & ok, jnp.where(ok, sym, -1), end)


def parse_programs(
  tables: GrammarTables, tokens: jnp.ndarray, symbol: int
) -> ProgramSpans:
  """`parse_program` over a batch: tokens [B, L] -> fields with a leading B."""
  return jax.vmap(lambda t: parse_program(tables, t, symbol))(tokens)


# -- decoding a replacement, token by token ----------------------------------


class DecodeState(NamedTuple):
  """Parser state of a replacement being decoded (one row).

  stack: [D] int32 LR states; sp: [] int32 stack size; ok: [] bool, no
  error so far; accepted: [] bool, <EOS> was fed and accepted.
  """

  stack: jnp.ndarray
  sp: jnp.ndarray
  ok: jnp.ndarray
  accepted: jnp.ndarray


def start_state(tables: GrammarTables, symbol, depth: int) -> DecodeState:
  """The empty prefix of a derivation of `symbol` ([] int32, traced ok)."""
  stack = jnp.zeros(depth, jnp.int32).at[0].set(tables.start[symbol])
  return DecodeState(
    stack, jnp.array(1, jnp.int32), jnp.array(True), jnp.array(False)
  )


def allowed(tables: GrammarTables, state: DecodeState, symbol) -> jnp.ndarray:
  """[V] bool: tokens that keep the prefix a valid derivation of `symbol`
  (<EOS>: the prefix is complete). All False after an error; after <EOS>
  was accepted only <EOS> stays True.

  Exact: each candidate token is fed to a copy of the parser, as lark's
  interactive parser does (an LALR table alone can hold reduce actions that
  end in an error).
  """
  fed = jax.vmap(lambda t: feed(tables, state, t, symbol))(tables.candidates)
  ok = jnp.where(tables.candidates == EOS, fed.accepted, fed.ok)
  vocab = tables.action.shape[1]
  return jnp.zeros(vocab, bool).at[tables.candidates].set(ok)


def feed(
  tables: GrammarTables, state: DecodeState, token, symbol
) -> DecodeState:
  """Feeds one token id ([] int32; <EOS> ends the derivation of `symbol`)."""
  depth = state.stack.shape[0]
  accept_state = tables.end[symbol]
  is_end = token == EOS

  def cond(c):
    return ~c[0]

  def body(c):
    _, stack, sp, ok, accepted = c
    a = tables.action[stack[sp - 1], token]
    shift = a > 0
    r = jnp.maximum(-a - 1, 0)
    n = tables.rule_len[r]
    below = stack[jnp.maximum(sp - n - 1, 0)]
    nxt = tables.goto[below, tables.rule_lhs[r]]
    reduce_ = a < 0
    new_sp = jnp.where(shift, sp + 1, jnp.where(reduce_, sp - n + 1, sp))
    put = jnp.clip(new_sp - 1, 0, depth - 1)
    stack = jnp.where(
      shift | reduce_, stack.at[put].set(jnp.where(shift, a - 1, nxt)), stack
    )
    acc = reduce_ & is_end & (nxt == accept_state)
    err = (a == 0) | (new_sp >= depth)
    return shift | acc | err, stack, new_sp, ok & ~err, accepted | acc

  live = state.ok & ~state.accepted
  init = (~live, state.stack, state.sp, state.ok, state.accepted)
  _, stack, sp, ok, accepted = jax.lax.while_loop(cond, body, init)
  return DecodeState(stack, sp, ok & live, accepted)
