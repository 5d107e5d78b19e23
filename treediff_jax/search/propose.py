"""Edit proposers: sample k grammar-valid edits for every beam entry.

A proposer is a pure function

  propose(key, targets [B, H, W, C] float32, beam [B, W, L] int32,
          images [B, W, H, W, C] float32, live [B, W] bool)
    -> Proposals with a leading [B, W * k]

that the search calls once per step. Candidate `w * k + j` is the j-th
edit of beam entry w. `policy_proposer` samples edits from a trained policy
(cached decoding, grammar-constrained); `uniform_proposer` samples
positions and replacement tokens uniformly among the grammar's allowed
choices (the random-mutation baseline); `oracle_proposer` proposes known
edits (tests).
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from treediff_jax.dsl.languages import get_language
from treediff_jax.dsl.tokenizer import EOS, SOS, Tokenizer
from treediff_jax.search import grammar_tables as gt
from treediff_jax.search.token_edits import apply_edit

NEG = -1e30


class Proposals(NamedTuple):
  """Edited programs. tokens [..., L] int32; ok [...] bool: a complete,
  grammar-valid edit that fits L tokens; log_prob [...] float32 of the edit
  under the proposer (0 where not ok); restart: optional [...] bool, the
  candidate starts a new program instead of extending its parent (its
  log-probability is not added to the parent's)."""

  tokens: jnp.ndarray
  ok: jnp.ndarray
  log_prob: jnp.ndarray
  restart: jnp.ndarray | None = None


class Proposer(Protocol):
  """What the search calls once per step (pure; traced inside jit).

  Args:
    key: PRNG key.
    targets: [B, H, W, C] float32 target images.
    beam: [B, W, L] int32 programs on the beam.
    images: [B, W, H, W, C] float32 their renders.
    live: [B, W] bool entries to expand.

  Returns:
    Proposals with a leading [B, W * k]; candidate w * k + j is the j-th
    edit of entry w (not ok where the entry is not live).
  """

  def __call__(
    self,
    key: jnp.ndarray,
    targets: jnp.ndarray,
    beam: jnp.ndarray,
    images: jnp.ndarray,
    live: jnp.ndarray,
  ) -> Proposals: ...


class _Scorer(NamedTuple):
  """Where next-token logits come from while sampling edits.

  start(rows) -> carry after the program and <SOS> are fed, and the logits
  of the position token; next(carry, token [R], slot []) -> (logits
  [R, V], carry), where edit slot 0 holds <SOS> and slot 1 <POS p>.
  """

  start: Callable
  next: Callable


def categorical(key, logits, mask, temperature):
  """Samples one token per row among `mask`; returns (token, log prob,
  any allowed)."""
  z = jnp.where(mask, logits / temperature, NEG)
  logp = jax.nn.log_softmax(z, axis=-1)
  tok = jax.random.categorical(key, z, axis=-1).astype(jnp.int32)
  lp = jnp.take_along_axis(logp, tok[:, None], axis=1)[:, 0]
  return tok, lp, mask.any(-1)


class Derivation(NamedTuple):
  """Sampled derivations, one per row: tokens [R, M] int32, length [R]
  int32, ok [R] bool (complete within M tokens), log_prob [R] float32 of
  its tokens and <EOS>."""

  tokens: jnp.ndarray
  length: jnp.ndarray
  ok: jnp.ndarray
  log_prob: jnp.ndarray


class _DerivationLoop(NamedTuple):
  """The token loop's state in `sample_derivation` (R rows, M tokens)."""

  j: jnp.ndarray  # [] int32 derivation tokens sampled so far
  key: jnp.ndarray  # PRNG key
  carry: object  # the scorer's state
  done: jnp.ndarray  # [R] bool <EOS> sampled or nothing allowed
  ok: jnp.ndarray  # [R] bool no dead end so far
  prev: jnp.ndarray  # [R] int32 last token fed
  parse: gt.DecodeState  # [R] parser states
  tokens: jnp.ndarray  # [R, M] int32 tokens so far
  length: jnp.ndarray  # [R] int32 tokens written
  log_prob: jnp.ndarray  # [R] float32


def sample_derivation(
  lang: str,
  key: jnp.ndarray,
  scorer: _Scorer,
  carry,
  prev: jnp.ndarray,
  first_slot: int,
  symbol: jnp.ndarray,
  ok: jnp.ndarray,
  temperature: float,
  max_len: int,
  banned: dict | None = None,
) -> Derivation:
  """Samples, token by token, one derivation of `symbol` per row.

  Args:
    lang: language name (static).
    key: PRNG key.
    scorer: logits source; `carry` its state.
    prev: [R] int32 the token in edit slot `first_slot` (already sampled;
      fed to the scorer first).
    first_slot: edit slot of `prev` (static).
    symbol: [R] int32 nonterminal each row derives.
    ok: [R] bool rows to decode (others are done from the start).
    temperature: softmax temperature (> 0).
    max_len: most tokens in a derivation (static).
    banned: optional {index: token ids} tokens not allowed at that index of
      the derivation (static), on top of the grammar mask.

  Returns:
    Derivation with tokens [R, max_len].
  """
  tables = gt.device_tables(lang)
  r = prev.shape[0]
  rows = jnp.arange(r)
  parse = jax.vmap(lambda s: gt.start_state(tables, s, max_len + 3))(symbol)
  bans = {
    i: jnp.zeros(tables.action.shape[1], bool).at[jnp.asarray(t)].set(True)
    for i, t in (banned or {}).items()
  }

  def cond(c: _DerivationLoop):
    return (c.j <= max_len) & ~jnp.all(c.done)

  def body(c: _DerivationLoop) -> _DerivationLoop:
    logits, carry = scorer.next(c.carry, c.prev, c.j + first_slot)
    mask = jax.vmap(lambda s, y: gt.allowed(tables, s, y))(c.parse, symbol)
    for i, ban in bans.items():
      mask = mask & ~(ban[None] & (c.j == i))
    key, sub = jax.random.split(c.key)
    t, lp, any_ok = categorical(sub, logits, mask, temperature)
    live = ~c.done
    parse = jax.tree.map(
      lambda a, b: jnp.where(live.reshape((-1,) + (1,) * (a.ndim - 1)), a, b),
      jax.vmap(lambda s, x, y: gt.feed(tables, s, x, y))(c.parse, t, symbol),
      c.parse,
    )
    is_eos = live & (t == EOS)
    write = live & ~is_eos & (c.j < max_len)
    col = jnp.minimum(c.j, max_len - 1)
    tokens = c.tokens.at[rows, col].set(
      jnp.where(write, t, c.tokens[rows, col])
    )
    return _DerivationLoop(
      j=c.j + 1,
      key=key,
      carry=carry,
      done=c.done | is_eos | ~any_ok,
      ok=c.ok & (any_ok | c.done),
      prev=t,
      parse=parse,
      tokens=tokens,
      length=c.length + write.astype(jnp.int32),
      log_prob=c.log_prob + jnp.where(live, lp, 0.0),
    )

  init = _DerivationLoop(
    j=jnp.array(0, jnp.int32),
    key=key,
    carry=carry,
    done=~ok,
    ok=ok,
    prev=prev,
    parse=parse,
    tokens=jnp.zeros((r, max(max_len, 1)), jnp.int32),
    length=jnp.zeros(r, jnp.int32),
    log_prob=jnp.zeros(r, jnp.float32),
  )
  out = jax.lax.while_loop(cond, body, init)
  return Derivation(
    out.tokens, out.length, out.ok & out.done & out.parse.accepted, out.log_prob
  )


def sample_edits(
  lang: str,
  key: jnp.ndarray,
  programs: jnp.ndarray,
  spans: gt.ProgramSpans,
  scorer: _Scorer,
  temperature: float,
  max_replacement: int = 0,
) -> Proposals:
  """Samples one edit per row and applies it.

  Args:
    lang: language name (static).
    key: PRNG key.
    programs: [R, L] int32 rows (already repeated k times by the caller).
    spans: parse of `programs`.
    scorer: logits source.
    temperature: softmax temperature (> 0).
    max_replacement: most replacement tokens (0: the language's edit
      budget, max_edit_len - 3).

  Returns:
    Proposals with leading [R].
  """
  language = get_language(lang)
  tok = Tokenizer(language)
  r, big_l = programs.shape
  max_repl = max_replacement or language.max_edit_len - 3
  rows = jnp.arange(r)
  carry, logits = scorer.start(r)
  # <POS p> for editable nodes only.
  vocab = logits.shape[-1]
  pos_ids = jnp.arange(vocab) - tok.pos_offset
  in_range = (pos_ids >= 0) & (pos_ids < big_l)
  site_mask = in_range[None] & jnp.take(
    spans.site, jnp.clip(pos_ids, 0, big_l - 1), axis=1
  )
  key, sub = jax.random.split(key)
  pos_tok, pos_logp, any_site = categorical(sub, logits, site_mask, temperature)
  position = jnp.clip(pos_tok - tok.pos_offset, 0, big_l - 1)
  symbol = jnp.maximum(spans.symbol[rows, position], 0)
  repl, m, ok, logp = sample_derivation(
    language.name,
    key,
    scorer,
    carry,
    pos_tok,
    1,
    symbol,
    spans.valid & any_site,
    temperature,
    max_repl,
  )
  edited, fits = apply_edit(
    programs, spans.length, position, spans.end[rows, position], repl, m
  )
  ok = ok & fits
  return Proposals(edited, ok, jnp.where(ok, pos_logp + logp, 0.0))


def cached_scorer(model, prefix, edits, rows: int) -> _Scorer:
  """Logits from the policy's decoder with a prefix cache of R programs and
  an edit cache of k edits each (`TreeDecoder.prefill`,
  `empty_edit_cache`); `rows` = R * k."""

  def start(_):
    sos = jnp.full(rows, SOS, jnp.int32)
    logits, c = model.decoder.decode_step(prefix, edits, sos, 0)
    return c, logits

  def nxt(c, t, slot):
    return model.decoder.decode_step(prefix, c, t, slot)

  return _Scorer(start, nxt)


def _flatten(beam, live, k):
  """beam [B, W, L], live [B, W] -> each entry k times: [B * W * k, L],
  [B * W * k]."""
  b, w = beam.shape[:2]
  rows = jnp.repeat(beam.reshape(b * w, -1), k, axis=0)
  return rows, jnp.repeat(live.reshape(b * w), k)


def _unflatten(p: Proposals, b: int) -> Proposals:
  return jax.tree.map(lambda a: a.reshape((b, -1) + a.shape[1:]), p)


def uniform_proposer(lang: str, k: int) -> Callable:
  """Random mutations: positions and replacement tokens uniform among the
  grammar's allowed choices (temperature 1 over constant logits)."""
  name = get_language(lang).name
  tok = Tokenizer(get_language(lang))
  symbol = get_language(lang).grammar.start

  def propose(key, targets, beam, images, live):
    del targets, images
    b = beam.shape[0]
    programs, row_live = _flatten(beam, live, k)
    spans = gt.parse_programs(gt.device_tables(name), programs, symbol)
    zeros = jnp.zeros((programs.shape[0], tok.vocab_size), jnp.float32)
    scorer = _Scorer(
      start=lambda r: (None, zeros), next=lambda c, t, i: (zeros, c)
    )
    p = sample_edits(name, key, programs, spans, scorer, 1.0)
    return _unflatten(p._replace(ok=p.ok & row_live), b)

  return propose


def mixed_proposer(parts) -> Proposer:
  """Proposes, per beam entry, the k_i edits of every part in turn.

  Args:
    parts: a sequence of (proposer, k_i): each proposer makes k_i edits
      per entry.

  Returns:
    A Proposer with k = sum(k_i) edits per entry: candidate w * k + j is,
    for j < k_0, the j-th edit of the first part, and so on. Each part
    draws from its own key (split from the step's key). The restart flags
    of parts that have none are False.
  """
  parts = tuple(parts)

  def propose(key, targets, beam, images, live):
    b, w = beam.shape[:2]
    keys = jax.random.split(key, len(parts))
    outs = []
    for (proposer, k), sub in zip(parts, keys):
      out = proposer(sub, targets, beam, images, live)
      outs.append(
        jax.tree.map(lambda a, k=k: a.reshape((b, w, k) + a.shape[2:]), out)
      )
    if any(o.restart is not None for o in outs):
      outs = [
        o
        if o.restart is not None
        else o._replace(restart=jnp.zeros(o.ok.shape, bool))
        for o in outs
      ]

    def cat(*xs):
      x = jnp.concatenate(xs, axis=2)
      return x.reshape((b, -1) + x.shape[3:])

    return jax.tree.map(cat, *outs)

  return propose


def by_length(run: Callable, longest, big_l: int, bucket: int, *args):
  """Calls `run(size)(*args)` for the smallest multiple `size` of `bucket`
  (capped at big_l) that is at least `longest` ([] int32, traced): one
  compiled branch per multiple, chosen by `lax.switch`."""
  step_ = bucket if 0 < bucket < big_l else big_l
  sizes = sorted({min(big_l, s) for s in range(step_, big_l + step_, step_)})
  index = jnp.minimum(
    jnp.searchsorted(jnp.asarray(sizes), longest), len(sizes) - 1
  )
  return jax.lax.switch(index, [run(s) for s in sizes], *args)


def sample_from_policy(
  model,
  key: jnp.ndarray,
  targets: jnp.ndarray,
  current: jnp.ndarray,
  flat: jnp.ndarray,
  longest: jnp.ndarray,
  live: jnp.ndarray,
  k: int,
  slots: int,
  bucket: int,
  sample: Callable,
) -> Proposals:
  """What the policy proposers share: encode every beam entry against its
  target, prefill the decoder over the first `bucket`-multiple of program
  columns that holds `longest` tokens (one compiled branch per multiple,
  chosen by `lax.switch` each step, so short programs decode faster), and
  let `sample(key, scorer)` draw k proposals per entry from a cached
  scorer.

  Args:
    model: a PolicyModel.
    key: PRNG key.
    targets: [B, H, W, C] float32.
    current: [B, W, H, W, C] float32 images the policy sees for the beam.
    flat: [B * W, L] int32 programs the decoder reads.
    longest: [] int32 longest program in `flat`.
    live: [B, W] bool entries to expand.
    k: proposals per entry (static).
    slots: edit-cache slots (static).
    bucket: column granularity (static).
    sample: (key, scorer) -> Proposals with leading [B * W * k], row
      w * k + j the j-th proposal of entry w.

  Returns:
    Proposals with leading [B, W * k], not ok where the entry is not live.
  """
  b, w = current.shape[:2]
  memory = model.encode_many(targets, current)  # [B, W, P, D]
  memory = jax.tree.map(lambda m: m.reshape((b * w,) + m.shape[2:]), memory)

  def run(size):
    # Decodes with the program columns [0, size): every program fits.
    def fn(key, flat, memory):
      prefix = model.decoder.prefill(flat[:, :size], memory)
      edits = model.decoder.empty_edit_cache(prefix, k, slots)
      return sample(key, cached_scorer(model, prefix, edits, b * w * k))

    return fn

  p = by_length(run, longest, flat.shape[1], bucket, key, flat, memory)
  return _unflatten(p._replace(ok=p.ok & jnp.repeat(live.reshape(-1), k)), b)


def policy_proposer(
  lang: str,
  model,
  k: int,
  temperature: float = 1.0,
  bucket: int = 32,
) -> Proposer:
  """Samples k edits per beam entry from `model` (a PolicyModel), decoding
  with a key/value cache over the program columns in use
  (`sample_from_policy`)."""
  language = get_language(lang)
  name = language.name
  symbol = language.grammar.start

  def propose(key, targets, beam, images, live):
    b, w = beam.shape[:2]
    flat = beam.reshape(b * w, -1)
    spans = gt.parse_programs(gt.device_tables(name), flat, symbol)
    spans_k = jax.tree.map(lambda a: jnp.repeat(a, k, axis=0), spans)
    programs = jnp.repeat(flat, k, axis=0)
    return sample_from_policy(
      model,
      key,
      targets,
      images,
      flat,
      jnp.max(spans.length),
      live,
      k,
      language.max_edit_len,
      bucket,
      lambda key, scorer: sample_edits(
        name, key, programs, spans_k, scorer, temperature
      ),
    )

  return propose


def whole_program_proposer(
  lang: str, model, n: int, temperature: float = 1.0
) -> Callable:
  """The autoregressive baseline: samples n whole programs per target from
  `model` (a policy trained with label_mode "whole_program": `<SOS>
  <POS 0> program <EOS>` from the target and a blank current image),
  grammar-constrained. The beam is ignored except for which targets run."""
  language = get_language(lang)
  name = language.name
  big_l = language.max_program_len
  start_symbol = language.grammar.start

  def propose(key, targets, beam, images, live):
    del images
    b = beam.shape[0]
    memory = model.encode(targets, jnp.zeros_like(targets))
    empty = jnp.zeros((b, 1), jnp.int32)
    prefix = model.decoder.prefill(empty, memory)
    edits = model.decoder.empty_edit_cache(prefix, n, big_l + 2)
    r = b * n
    site = jnp.zeros((r, big_l), bool).at[:, 0].set(True)
    spans = gt.ProgramSpans(
      valid=jnp.ones(r, bool),
      length=jnp.zeros(r, jnp.int32),
      site=site,
      symbol=jnp.where(site, start_symbol, -1).astype(jnp.int32),
      end=jnp.zeros((r, big_l), jnp.int32),
    )

    programs = jnp.zeros((r, big_l), jnp.int32)
    scorer = cached_scorer(model, prefix, edits, r)
    p = sample_edits(name, key, programs, spans, scorer, temperature, big_l)
    row_live = jnp.repeat(jnp.any(live, axis=1), n)
    return _unflatten(p._replace(ok=p.ok & row_live), b)

  return propose


def oracle_proposer(lang: str, edits: dict) -> Callable:
  """Proposes fixed edits: `edits` maps 'position', 'end' ([B] int32),
  'replacement' ([B, M] int32) and 'replacement_len' ([B]) per target,
  applied to beam entry 0 of each target (one candidate per entry)."""
  del lang

  def propose(key, targets, beam, images, live):
    del key, targets, images
    b, w, big_l = beam.shape
    prog = beam[:, 0]
    length = jnp.sum(prog != 0, axis=1).astype(jnp.int32)
    out, fits = apply_edit(
      prog,
      length,
      edits["position"],
      edits["end"],
      edits["replacement"],
      edits["replacement_len"],
    )
    tokens = jnp.zeros((b, w, big_l), jnp.int32).at[:, 0].set(out)
    ok = jnp.zeros((b, w), bool).at[:, 0].set(fits & live[:, 0])
    return Proposals(tokens, ok, jnp.zeros((b, w), jnp.float32))

  return propose
