"""Search speed: nodes expanded per second, jitted beam search against a
plain Python-loop beam search over the same model and renderer.

  python -m benchmarks.search --lang=csg2d --model=small [--targets=8]

Both searches use the policy and value models of size --model at random
initial weights (as the reference's figures were taken), beam 64, k 3, on
sampled targets that random weights do not solve, starting from a full beam
of random programs, so every step expands a full frontier. The jitted
search runs --steps steps on --targets targets at once; the Python loop
decodes each edit token by token (a full decoder pass per token, the host
grammar mask from lark's interactive parser), applies it to the host tree
and renders and scores each node on its own, for --python_nodes nodes.
Compile time is excluded (one untimed call first).
"""

import time

import numpy as np
from absl import app, flags

from benchmarks import common
from treediff_jax.dsl.languages import NAMES

_LANG = flags.DEFINE_enum("lang", "csg2d", NAMES, "Language.")
_MODEL = flags.DEFINE_enum("model", "small", ["tiny", "small", "base"], "")
_TARGETS = flags.DEFINE_integer("targets", 8, "Targets searched together.")
_BEAM = flags.DEFINE_integer("beam", 64, "Beam size.")
_K = flags.DEFINE_integer("k", 3, "Edits per beam entry.")
_STEPS = flags.DEFINE_integer("steps", 3, "Steps of the jitted search.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed jitted runs (median).")
_PY_NODES = flags.DEFINE_integer("python_nodes", 60, "Python-loop nodes.")
_ONE_CORE = flags.DEFINE_bool("one_core", False, "Pin to one core.")


def python_loop_search(lang, policy, value, target, start, beam, k, nodes, rng):
  """Beam search in plain Python, one node at a time; returns nodes made.

  target [H, W, C] float32; start: a tree.
  """
  import jax
  import jax.numpy as jnp
  import lark

  from treediff_jax import render
  from treediff_jax.dsl.grammar import ProgramSyntaxError
  from treediff_jax.dsl.languages import get_language
  from treediff_jax.dsl.tokenizer import EOS, NUM_SPECIAL, SOS, Tokenizer
  from treediff_jax.dsl.tree import edit_sites

  language = get_language(lang)
  g, tok = language.grammar, Tokenizer(language)
  names = {t: n for n, t in g._term_name_to_id.items()}
  encode = jax.jit(policy.encode)
  decoder = jax.jit(policy.decoder)
  score = jax.jit(value)
  draw = render.renderer(lang)
  tgt = jnp.asarray(target[None])

  def image(tree):
    return draw(jnp.asarray(tok.pad_program(tok.encode(tree))[None]))

  def sample_edit(tree, memory):
    prog = list(tok.encode(tree))
    seq = np.zeros((1, language.seq_len), np.int32)
    seq[0, : len(prog)] = prog
    seq[0, len(prog)] = SOS
    n = len(prog) + 1
    logits = np.asarray(decoder(jnp.asarray(seq), memory))[0, n - 1]
    sites = {tok.pos_offset + s.position: s for s in edit_sites(g, tree)}
    ids = np.array(sorted(sites))
    p = np.exp(logits[ids] - logits[ids].max())
    pos = int(rng.choice(ids, p=p / p.sum()))
    seq[0, n] = pos
    n += 1
    site = sites[pos]
    ip = g._lark.parse_interactive("", start=g.symbols[g.symbol_of(site.node)])
    repl = []
    while n < language.seq_len and len(repl) <= language.max_edit_len - 3:
      logits = np.asarray(decoder(jnp.asarray(seq), memory))[0, n - 1]
      ok = [
        EOS if a == "$END" else g._term_name_to_id[a] + NUM_SPECIAL
        for a in ip.accepts()
      ]
      ids = np.array(sorted(ok))
      p = np.exp(logits[ids] - logits[ids].max())
      t = int(rng.choice(ids, p=p / p.sum()))
      seq[0, n] = t
      n += 1
      if t == EOS:
        break
      repl.append(t)
      ip.feed_token(lark.Token(names[t - NUM_SPECIAL], g.terminals[t - 3]))
    try:
      return tok.apply_edit(prog, site.position, repl)
    except (ProgramSyntaxError, ValueError):
      return None

  frontier = [(start, image(start))]
  seen = {g.to_text(start)}
  made = 0
  while made < nodes:
    children = []
    for tree, img in frontier:
      memory = encode(tgt, img)
      for _ in range(k):
        new = sample_edit(tree, memory)
        if new is None or g.to_text(new) in seen:
          continue
        seen.add(g.to_text(new))
        im = image(new)
        v = float(score(tgt, im)[0])
        children.append((v, tree, new, im))
        made += 1
        if made >= nodes:
          break
      if made >= nodes:
        break
    children.sort(key=lambda c: c[0])
    frontier = [(c[2], c[3]) for c in children[:beam]] or frontier
  return made


def main(argv):
  del argv
  if _ONE_CORE.value:
    common.pin_to_one_core()
  import jax
  from flax import nnx

  from treediff_jax import render
  from treediff_jax.dsl.languages import get_language
  from treediff_jax.dsl.tokenizer import Tokenizer
  from treediff_jax.model_configs import for_language
  from treediff_jax.models import PolicyModel, ValueModel
  from treediff_jax.search.beam import SearchConfig
  from treediff_jax.search.solver import make_solver, random_starts

  lang = _LANG.value
  policy = PolicyModel(for_language(lang, _MODEL.value), rngs=nnx.Rngs(0))
  value = ValueModel(for_language(lang, _MODEL.value), rngs=nnx.Rngs(1))
  b = _TARGETS.value
  targets = np.asarray(render.renderer(lang)(random_starts(lang, b, 100, 8)))
  # A full beam of start programs, so every step expands beam * k nodes.
  starts = random_starts(lang, b * _BEAM.value, 200, 3).reshape(
    b, _BEAM.value, -1
  )
  config = SearchConfig(
    beam=_BEAM.value,
    k=_K.value,
    max_steps=_STEPS.value,
    max_nodes=10**9,
    rank="value",
  )
  solve = make_solver(lang, config, "tree_diffusion", policy, value)
  jax.block_until_ready(solve(targets, starts, jax.random.key(0)))
  rates, nodes, solved = [], 0, 0
  for r in range(_REPEATS.value):
    t = time.perf_counter()
    res = solve(targets, starts, jax.random.key(r + 1))
    jax.block_until_ready(res)
    dt = time.perf_counter() - t
    nodes = int(np.sum(res.nodes))
    solved = int(np.sum(res.solved))
    rates.append(nodes / dt)
  jit_rate = float(np.median(rates))
  print(
    f"jitted: {nodes} nodes per run ({b} targets, {_STEPS.value} steps, "
    f"{solved} solved), runs {[round(x) for x in rates]} nodes/s"
  )

  tok = Tokenizer(get_language(lang))
  start_tree = tok.decode(starts[0, 0])
  rng = np.random.default_rng(0)
  python_loop_search(
    lang, policy, value, targets[0], start_tree, _BEAM.value, _K.value, 3, rng
  )  # compile
  t = time.perf_counter()
  made = python_loop_search(
    lang,
    policy,
    value,
    targets[0],
    start_tree,
    _BEAM.value,
    _K.value,
    _PY_NODES.value,
    rng,
  )
  py_rate = made / (time.perf_counter() - t)
  print(
    f"python loop: {made} nodes, {py_rate:.2f} nodes/s "
    f"({1 / py_rate:.3f} s/node)"
  )
  common.print_result(
    dict(
      lang=lang,
      model=_MODEL.value,
      backend=jax.default_backend(),
      beam=_BEAM.value,
      k=_K.value,
      targets=b,
      jit_nodes_per_s=round(jit_rate, 1),
      python_loop_nodes_per_s=round(py_rate, 2),
      ratio_vs_python_loop=round(jit_rate / py_rate, 1),
      ratio_vs_reference_0145_s_per_node=round(jit_rate * 0.145, 1),
    )
  )


if __name__ == "__main__":
  app.run(main)
