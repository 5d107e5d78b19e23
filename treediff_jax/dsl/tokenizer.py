"""Token ids for programs and the edit-sequence layout.

Vocabulary: `<PAD> <SOS> <EOS>`, then the grammar's terminals in grammar
order, then `<POS 0> .. <POS L-1>` with L the language's `max_program_len`.

An edit sequence is `program tokens, <SOS>, <POS p>, replacement tokens,
<EOS>`, padded with `<PAD>` to `seq_len`; the loss mask is 1 on the tokens
after `<SOS>` (the ones the policy predicts) and 0 elsewhere.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from treediff_jax.dsl import csg2d
from treediff_jax.dsl.grammar import ProgramSyntaxError
from treediff_jax.dsl.languages import Language
from treediff_jax.dsl.tree import Node, replace_at, site_at_position

PAD, SOS, EOS = 0, 1, 2
NUM_SPECIAL = 3


class EditTokens(NamedTuple):
  """A decoded edit sequence."""

  program: np.ndarray  # [n] int32 program token ids
  position: int  # token index of the edited node
  replacement: np.ndarray  # [m] int32 token ids of the new subtree


class Tokenizer:
  """Maps programs and edits of one language to int32 token ids."""

  def __init__(self, language: Language):
    self.language = language
    self.grammar = language.grammar
    self.num_terminals = len(self.grammar.terminals)
    self.pos_offset = NUM_SPECIAL + self.num_terminals
    self.max_program_len = language.max_program_len
    self.seq_len = language.seq_len
    self.vocab_size = self.pos_offset + self.max_program_len

  def token_strings(self) -> list[str]:
    """String of every token id, in id order."""
    return (
      ["<PAD>", "<SOS>", "<EOS>"]
      + list(self.grammar.terminals)
      + [f"<POS {i}>" for i in range(self.max_program_len)]
    )

  # -- programs ----------------------------------------------------------------

  def encode(self, node: Node) -> np.ndarray:
    """Token ids of a tree: [n] int32."""
    return np.asarray(self.grammar.tokens(node), np.int32) + NUM_SPECIAL

  def encode_text(self, text: str) -> np.ndarray:
    """Token ids of program text: [n] int32. Raises ProgramSyntaxError."""
    return self.encode(self.grammar.parse(text))

  def pad_program(self, ids: np.ndarray) -> np.ndarray:
    """[n] ids to [max_program_len] int32, padded with PAD.

    Raises:
      ValueError: the program is longer than `max_program_len`.
    """
    n = len(ids)
    if n > self.max_program_len:
      raise ValueError(
        f"{self.language.name}: program of {n} tokens exceeds "
        f"max_program_len={self.max_program_len}"
      )
    out = np.zeros(self.max_program_len, np.int32)
    out[:n] = ids
    return out

  def terminal_ids(self, ids) -> list[int]:
    """Program token ids (padding allowed at the end) to grammar terminal ids.

    Raises:
      ProgramSyntaxError: a non-terminal token inside the program.
    """
    ids = [int(i) for i in np.asarray(ids).reshape(-1)]
    while ids and ids[-1] == PAD:
      ids.pop()
    out = []
    for i, t in enumerate(ids):
      if not NUM_SPECIAL <= t < self.pos_offset:
        raise ProgramSyntaxError(
          self.language.name,
          i,
          (),
          f"token {self._name(t)} at index {i} is not part of a program",
        )
      out.append(t - NUM_SPECIAL)
    return out

  def decode(self, ids, symbol: str | int | None = None) -> Node:
    """Program token ids (trailing PAD allowed) to a tree.

    Args:
      ids: token ids.
      symbol: the nonterminal they derive; the start symbol if None.

    Raises:
      ProgramSyntaxError: the ids are not a derivation of `symbol`.
    """
    return self.grammar.from_tokens(self.terminal_ids(ids), symbol)

  def decode_text(self, ids) -> str:
    """Program token ids (trailing PAD allowed) to text, without parsing.

    Raises:
      ProgramSyntaxError: a special or <POS> token inside the program.
    """
    return "".join(self.grammar.terminals[t] for t in self.terminal_ids(ids))

  def _name(self, t: int) -> str:
    if 0 <= t < self.vocab_size:
      return repr(self.token_strings()[t])
    return str(t)

  # -- edits -------------------------------------------------------------------

  def position_token(self, position: int) -> int:
    if not 0 <= position < self.max_program_len:
      raise ValueError(
        f"position {position} outside [0, {self.max_program_len})"
      )
    return self.pos_offset + position

  def edit_sequence(
    self, program: Node, position: int, replacement: Node
  ) -> tuple[np.ndarray, np.ndarray]:
    """The padded edit sequence and its loss mask.

    Returns:
      tokens: [seq_len] int32.
      loss_mask: [seq_len] float32, 1 on the tokens after `<SOS>`.

    Raises:
      ValueError: the program or the edit does not fit the token budget.
    """
    prog, repl = self.encode(program), self.encode(replacement)
    n, m = len(prog), len(repl)
    if n > self.max_program_len:
      raise ValueError(
        f"{self.language.name}: program of {n} tokens exceeds "
        f"max_program_len={self.max_program_len}"
      )
    if m + 3 > self.language.max_edit_len:
      raise ValueError(
        f"{self.language.name}: replacement of {m} tokens "
        "exceeds max_edit_len="
        f"{self.language.max_edit_len} - 3"
      )
    return self._sequence(prog, position, repl)

  def _sequence(
    self, program: np.ndarray, position: int, action: np.ndarray
  ) -> tuple[np.ndarray, np.ndarray]:
    """`program, <SOS>, <POS position>, action, <EOS>` padded to seq_len,
    and its loss mask (1 after <SOS>); program and action are token ids
    that the caller checked fit."""
    n, m = len(program), len(action)
    tokens = np.zeros(self.seq_len, np.int32)
    tokens[:n] = program
    tokens[n] = SOS
    tokens[n + 1] = self.position_token(position)
    tokens[n + 2 : n + 2 + m] = action
    tokens[n + 2 + m] = EOS
    mask = np.zeros(self.seq_len, np.float32)
    mask[n + 1 : n + 3 + m] = 1.0
    return tokens, mask

  def program_sequence(self, program: Node) -> tuple[np.ndarray, np.ndarray]:
    """The whole program as an edit of the empty program at position 0:
    `<SOS> <POS 0> program <EOS>`, for the autoregressive baseline.

    Returns:
      tokens: [seq_len] int32; loss_mask: [seq_len] float32, 1 after <SOS>.

    Raises:
      ValueError: the program does not fit `max_program_len`.
    """
    prog = self.encode(program)
    n = len(prog)
    if n > self.max_program_len or n + 3 > self.seq_len:
      raise ValueError(
        f"{self.language.name}: program of {n} tokens exceeds "
        f"max_program_len={self.max_program_len}"
      )
    return self._sequence(np.zeros(0, np.int32), 0, prog)

  def repl_sequence(
    self, program: Node | None, op: str, primitive: Node
  ) -> tuple[np.ndarray, np.ndarray]:
    """A REPL Flow step as an edit sequence: `program, <SOS>, <POS 0>, op,
    primitive, <EOS>` (CSG2D; `program` None is the empty canvas, op "+").

    Returns:
      tokens: [seq_len] int32; loss_mask: [seq_len] float32, 1 after <SOS>.

    Raises:
      ValueError: the sequence does not fit `seq_len`.
    """
    prog = self.encode(program) if program is not None else []
    action = [self.grammar.terminal_id[op] + NUM_SPECIAL]
    action += list(self.encode(primitive))
    n, m = len(prog), len(action)
    if n > self.max_program_len or n + m + 3 > self.seq_len:
      raise ValueError(
        f"{self.language.name}: REPL step of {n} + {m} tokens does not fit "
        f"seq_len={self.seq_len}"
      )
    return self._sequence(np.asarray(prog, np.int32), 0, np.asarray(action))

  def apply_repl_action(self, program_ids, action_ids) -> Node:
    """Appends a decoded REPL action (`op` then one primitive, token ids) to
    a program (token ids; empty for the empty canvas).

    Raises:
      ProgramSyntaxError: the program or the primitive does not parse.
      ValueError: the action is not an operator and one primitive.
    """
    action = [int(t) for t in np.asarray(action_ids).reshape(-1)]
    ops = {self.grammar.terminal_id.get(o, -1) + NUM_SPECIAL: o for o in "+-"}
    if not action or action[0] not in ops:
      raise ValueError("a REPL action starts with the operator + or -")
    primitive = self.decode(action[1:])
    program = self.decode(program_ids) if np.any(program_ids) else None
    return csg2d.append_step(
      self.grammar, program, csg2d.Step(ops[action[0]], primitive)
    )

  def split_edit_sequence(self, tokens) -> EditTokens:
    """Splits an edit sequence into program, position and replacement.

    Raises:
      ValueError: the sequence does not have the edit layout.
    """
    t = np.asarray(tokens).reshape(-1)
    sos = np.flatnonzero(t == SOS)
    if len(sos) != 1:
      raise ValueError("edit sequence needs exactly one <SOS>")
    n = int(sos[0])
    if n + 1 >= len(t) or not self.pos_offset <= t[n + 1] < self.vocab_size:
      raise ValueError("<SOS> must be followed by a <POS p> token")
    eos = np.flatnonzero(t[n + 2 :] == EOS)
    if len(eos) == 0:
      raise ValueError("edit sequence has no <EOS>")
    m = int(eos[0])
    return EditTokens(
      t[:n].astype(np.int32),
      int(t[n + 1]) - self.pos_offset,
      t[n + 2 : n + 2 + m].astype(np.int32),
    )

  def apply_edit(self, program_ids, position: int, replacement_ids) -> Node:
    """Applies an edit given as token ids; returns the edited tree.

    Raises:
      ProgramSyntaxError: the program or the replacement does not parse (the
        replacement must derive the symbol of the node at `position`).
      ValueError: no editable node starts at `position`.
    """
    g = self.grammar
    program = self.decode(program_ids)
    site = site_at_position(g, program, position)
    sym = g.prod_lhs[site.node.prod]
    new = self.decode(replacement_ids, sym)
    return replace_at(g, program, site.address, new)
