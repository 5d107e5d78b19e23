"""The device LALR tables agree with lark and with the host tree code."""

import functools

import jax
import jax.numpy as jnp
import lark
import numpy as np
import pytest

from treediff_jax.dsl.languages import NAMES, get_language
from treediff_jax.dsl.sampler import sample
from treediff_jax.dsl.tokenizer import EOS, NUM_SPECIAL, PAD, Tokenizer
from treediff_jax.dsl.tree import edit_sites
from treediff_jax.search import grammar_tables as gt


@functools.lru_cache(maxsize=None)
def _prefix_masks(lang: str):
  """Jitted: prefixes [N, M] int32, lengths [N], symbols [N] -> [N, V]."""
  tables = gt.device_tables(lang)

  def one(prefix, n, symbol):
    state = gt.start_state(tables, symbol, prefix.shape[0] + 2)

    def body(i, s):
      fed = gt.feed(tables, s, prefix[i], symbol)
      return jax.tree.map(lambda a, b: jnp.where(i < n, a, b), fed, s)

    state = jax.lax.fori_loop(0, prefix.shape[0], body, state)
    return gt.allowed(tables, state, symbol)

  return jax.jit(jax.vmap(one))


def _lark_accepts(lang: str, term_ids, symbol_name: str) -> set[int]:
  """Token ids lark's interactive parser accepts after `term_ids`."""
  g = get_language(lang).grammar
  names = {t: n for n, t in g._term_name_to_id.items()}
  ip = g._lark.parse_interactive("", start=symbol_name)
  for t in term_ids:
    ip.feed_token(lark.Token(names[t], g.terminals[t]))
  out = set()
  for name in ip.accepts():
    out.add(EOS if name == "$END" else g._term_name_to_id[name] + NUM_SPECIAL)
  return out


def _random_prefixes(lang: str, rng, count: int):
  """(term ids prefix, symbol id) pairs from edit sites of sampled programs."""
  g = get_language(lang).grammar
  out = []
  while len(out) < count:
    tree = sample(g, "s", 1, 6, rng)
    sites = edit_sites(g, tree)
    site = sites[rng.integers(len(sites))]
    toks = g.tokens(site.node)
    j = int(rng.integers(len(toks) + 1))
    out.append((toks[:j], g.symbol_of(site.node)))
  return out


@pytest.mark.parametrize("lang", NAMES)
def test_device_mask_equals_lark_accepts(lang):
  g = get_language(lang).grammar
  rng = np.random.default_rng(0)
  pairs = _random_prefixes(lang, rng, 300)
  width = max(len(p) for p, _ in pairs) + 1
  prefixes = np.zeros((len(pairs), width), np.int32)
  for i, (p, _) in enumerate(pairs):
    prefixes[i, : len(p)] = np.asarray(p, np.int32) + NUM_SPECIAL
  lengths = np.array([len(p) for p, _ in pairs], np.int32)
  symbols = np.array([s for _, s in pairs], np.int32)
  masks = np.asarray(_prefix_masks(lang)(prefixes, lengths, symbols))
  for i, (p, s) in enumerate(pairs):
    want = _lark_accepts(lang, p, g.symbols[s])
    got = set(np.flatnonzero(masks[i]).tolist())
    assert got == want, (lang, g.to_text, p, g.symbols[s])


@pytest.mark.parametrize("lang", NAMES)
def test_parse_programs_finds_the_host_edit_sites(lang):
  language = get_language(lang)
  g, tok = language.grammar, Tokenizer(language)
  rng = np.random.default_rng(1)
  trees = [sample(g, "s", 1, 8, rng) for _ in range(40)]
  trees = [t for t in trees if t.ntok <= language.max_program_len]
  rows = np.stack([tok.pad_program(tok.encode(t)) for t in trees])
  spans = jax.jit(gt.parse_programs, static_argnums=2)(
    gt.device_tables(lang), rows, g.start
  )
  for i, t in enumerate(trees):
    assert bool(spans.valid[i])
    assert int(spans.length[i]) == t.ntok
    sites = edit_sites(g, t)
    assert np.flatnonzero(spans.site[i]).tolist() == [s.position for s in sites]
    for s in sites:
      assert int(spans.symbol[i, s.position]) == g.symbol_of(s.node)
      assert int(spans.end[i, s.position]) == s.position + s.node.ntok


@pytest.mark.parametrize("lang", NAMES)
def test_parse_programs_rejects_non_programs(lang):
  language = get_language(lang)
  g, tok = language.grammar, Tokenizer(language)
  rng = np.random.default_rng(2)
  good = tok.encode(sample(g, "s", 2, 4, rng))
  rows = np.zeros((4, language.max_program_len), np.int32)
  rows[0, : len(good) - 1] = good[:-1]  # truncated
  rows[1, : len(good)] = good
  rows[1, len(good) + 1] = good[0]  # token after padding
  rows[2, : len(good)] = good[::-1]  # garbage order
  # row 3: empty
  spans = gt.parse_programs(gt.device_tables(lang), jnp.asarray(rows), g.start)
  assert not np.asarray(spans.valid).any()
  assert not np.asarray(spans.site).any()


def test_eos_allowed_only_when_complete():
  lang = "csg2d"
  g = get_language(lang).grammar
  tok = Tokenizer(get_language(lang))
  ids = tok.encode_text("(+ (Circle 1 2 3) (Circle 4 5 6))")
  n = len(ids)
  prefixes = np.tile(np.pad(ids, (0, 1)), (n + 1, 1)).astype(np.int32)
  masks = np.asarray(
    _prefix_masks(lang)(
      prefixes, np.arange(n + 1, dtype=np.int32), np.full(n + 1, g.start)
    )
  )
  assert masks[:, EOS].tolist() == [False] * n + [True]
  assert not masks[:, PAD].any()
