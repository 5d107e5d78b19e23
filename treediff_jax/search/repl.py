"""REPL Flow on the device (CSG2D): programs grown one primitive at a time.

A REPL program is the left-nested fold of the primitives placed so far,
`(op_j ... (op_2 P_1 P_2) ... P_j)`, which renders as the first j steps of
the in-order fold (`treediff_jax.dsl.csg2d`). A step, decoded by a policy
trained with label_mode "repl", is `<SOS> <POS 0> op primitive <EOS>`:
`append_step` turns it into `(op program primitive)` on token arrays, and
`repl_proposer` samples k steps for every beam entry under the grammar mask
(op "+" on the empty canvas; the primitive a circle or a quad). An entry
holding `max_primitives` primitives starts over from the empty canvas, so a
search keeps drawing fresh programs until its node budget is spent.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from treediff_jax.dsl.languages import get_language
from treediff_jax.dsl.tokenizer import NUM_SPECIAL, PAD, Tokenizer
from treediff_jax.search import propose as proposers


def _token_id(lang: str, text: str) -> int:
  return get_language(lang).grammar.terminal_id[text] + NUM_SPECIAL


def append_step(
  lang: str,
  program: jnp.ndarray,
  length: jnp.ndarray,
  op: jnp.ndarray,
  primitive: jnp.ndarray,
  primitive_len: jnp.ndarray,
) -> tuple[jnp.ndarray, jnp.ndarray]:
  """`(op program primitive)` per row; the primitive alone where the program
  is empty.

  Args:
    lang: language name (static; CSG2D).
    program: [R, L] int32 programs then <PAD>.
    length: [R] int32 program lengths.
    op: [R] int32 operator token ids ("+" or "-").
    primitive: [R, M] int32 primitive tokens (then anything).
    primitive_len: [R] int32 tokens of the primitive.

  Returns:
    [R, L] int32 new programs (then <PAD>) and fits [R] bool: the result has
    at most L tokens.
  """
  big_l = program.shape[1]
  m = primitive.shape[1]
  i = jnp.arange(big_l)[None, :]
  n, pm = length[:, None], primitive_len[:, None]
  empty = n == 0
  # Layout: "(" op " " program " " primitive ")".
  head = 3 * (~empty)
  prog = jnp.take_along_axis(program, jnp.clip(i - 3, 0, big_l - 1), axis=1)
  start = jnp.where(empty, 0, n + 4)
  prim = jnp.take_along_axis(primitive, jnp.clip(i - start, 0, m - 1), axis=1)
  space, close = _token_id(lang, " "), _token_id(lang, ")")
  out = jnp.select(
    [
      ~empty & (i == 0),
      ~empty & (i == 1),
      ~empty & (i == 2),
      (i >= head) & (i < head + n),
      ~empty & (i == n + 3),
      (i >= start) & (i < start + pm),
      ~empty & (i == start + pm),
    ],
    [_token_id(lang, "("), op[:, None], space, prog, space, prim, close],
    PAD,
  )
  new_len = jnp.where(empty, pm, n + pm + 5)[:, 0]
  return out.astype(jnp.int32), new_len <= big_l


def primitive_count(lang: str, programs: jnp.ndarray) -> jnp.ndarray:
  """Circles and quads in each program: [...] int32 from [..., L] int32."""
  heads = jnp.asarray([_token_id(lang, "Circle"), _token_id(lang, "Quad")])
  return jnp.sum(programs[..., None] == heads, axis=(-2, -1)).astype(jnp.int32)


def repl_proposer(
  lang: str,
  model,
  k: int,
  temperature: float = 1.0,
  max_primitives: int = 8,
  bucket: int = 32,
) -> proposers.Proposer:
  """Samples k REPL steps per beam entry from `model` (a PolicyModel trained
  with label_mode "repl"); see the module docstring. Same interface as the
  proposers of `treediff_jax.search.propose`; entries with
  `max_primitives` primitives restart from the empty canvas (their
  candidates are flagged `restart`). A policy trained without the current
  image blanks it itself (its model config)."""
  language = get_language(lang)
  name = language.name
  if name != "csg2d":
    raise ValueError(f"REPL Flow is defined for csg2d, not {name}")
  tok = Tokenizer(language)
  g = language.grammar
  plus, minus = _token_id(name, "+"), _token_id(name, "-")
  max_prim = g.max_tokens(g.start, 1)

  def propose(key, targets, beam, images, live):
    b, w, big_l = beam.shape
    flat = beam.reshape(b * w, big_l)
    full = primitive_count(name, flat) >= max_primitives
    flat = jnp.where(full[:, None], PAD, flat)
    current = jnp.where(full.reshape(b, w, 1, 1, 1), 0.0, images)
    length = jnp.sum(flat != PAD, axis=1).astype(jnp.int32)
    programs = jnp.repeat(flat, k, axis=0)
    lengths = jnp.repeat(length, k)
    r = programs.shape[0]
    op_mask = jnp.zeros((r, tok.vocab_size), bool).at[:, plus].set(True)
    op_mask = op_mask.at[:, minus].set(lengths > 0)

    def sample(key, scorer):
      carry, _ = scorer.start(r)  # the <POS> slot: always <POS 0>
      pos0 = jnp.full(r, tok.pos_offset, jnp.int32)
      logits, carry = scorer.next(carry, pos0, 1)
      key, sub = jax.random.split(key)
      op, op_logp, _ = proposers.categorical(sub, logits, op_mask, temperature)
      prim, m, ok, logp = proposers.sample_derivation(
        name,
        key,
        scorer,
        carry,
        op,
        2,
        jnp.full(r, g.start, jnp.int32),
        jnp.ones(r, bool),
        temperature,
        max_prim,
        banned={1: (plus, minus)},  # "(" then no operator: no binop
      )
      out, fits = append_step(name, programs, lengths, op, prim, m)
      ok = ok & fits
      return proposers.Proposals(
        out, ok, jnp.where(ok, op_logp + logp, 0.0), jnp.repeat(full, k)
      )

    return proposers.sample_from_policy(
      model,
      key,
      targets,
      current,
      flat,
      jnp.max(length),
      live,
      k,
      language.max_edit_len,
      bucket,
      sample,
    )

  return propose
