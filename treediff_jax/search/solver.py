"""`make_solver`: the jitted solver of a registered method
(`search.registry`), ready to call on images; the helpers it shares with
the launch commands (random starts, target checks, autoregressive starts).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from treediff_jax import render as render_lib
from treediff_jax.dsl.languages import get_language
from treediff_jax.dsl.sampler import sample
from treediff_jax.dsl.tokenizer import Tokenizer
from treediff_jax.render import goal as goal_lib
from treediff_jax.search import propose as proposers
from treediff_jax.search import ranking as ranking_lib
from treediff_jax.search import registry
from treediff_jax.search.beam import (
  SearchConfig,
  SearchResult,
  earlier_duplicate,
  nodes_until_first,
  search,
)
from treediff_jax.search.token_edits import hash_tokens


def random_starts(lang: str, n: int, rng, max_primitives: int = 1):
  """[n, max_program_len] int32 token rows of random small programs.

  Args:
    lang: language name.
    n: number of programs.
    rng: numpy Generator or seed.
    max_primitives: primitives per program, 1..max_primitives.
  """
  language = get_language(lang)
  tok = Tokenizer(language)
  rng = np.random.default_rng(rng)
  return np.stack(
    [
      tok.pad_program(
        tok.encode(sample(language.grammar, "s", 1, max_primitives, rng))
      )
      for _ in range(n)
    ]
  ).astype(np.int32)


def check_targets(lang: str, targets) -> np.ndarray:
  """Checks target images: [B, H, W, C] float in [0, 1] of the canvas shape.

  Raises:
    ValueError: naming the expected and the given shape, or values outside
      [0, 1].
  """
  shape = get_language(lang).canvas_shape
  t = np.asarray(targets)
  if t.ndim != 4 or t.shape[1:] != shape:
    raise ValueError(
      f"{lang} targets must have shape [B, {shape[0]}, {shape[1]}, "
      f"{shape[2]}], got {list(t.shape)}"
    )
  if t.size and not 0.0 <= float(t.min()) <= float(t.max()) <= 1.0:
    raise ValueError("targets must lie in [0, 1] (divide uint8 by 255)")
  return t.astype(np.float32)


def autoregressive_starts(
  lang: str,
  model,
  n: int,
  beam: int,
  targets: jnp.ndarray,
  starts: jnp.ndarray,
  key: jnp.ndarray,
  temperature: float = 1.0,
) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Start programs from the autoregressive baseline (pure; runs in jit).

  Samples n whole programs per target from `model` (trained with label_mode
  "whole_program"), renders them, and keeps the best `beam` by graded goal
  value, filling up with the given `starts` (random programs) where fewer
  samples are valid.

  Args:
    lang: language name (static).
    model: the autoregressive PolicyModel.
    n: samples per target (static).
    beam: start programs kept per target (static).
    targets: [B, H, W, C] float32.
    starts: [B, S, L] int32 fallback starts.
    key: PRNG key.
    temperature: sampling temperature.

  Returns:
    starts [B, min(beam, S + n), L] int32 (repeated samples kept once)
    and nodes [B] int32: the valid samples rendered (up to and including
    the first that meets the goal), plus the fallback starts kept when no
    sample met it (the search renders those).
  """
  b, s_, big_l = starts.shape
  propose = proposers.whole_program_proposer(lang, model, n, temperature)
  p = propose(
    key,
    targets,
    jnp.zeros((b, 1, big_l), jnp.int32),
    None,
    jnp.ones((b, 1), bool),
  )
  images = render_lib.render(lang, p.tokens.reshape(b * n, big_l))
  images = images.reshape((b, n) + images.shape[1:])
  g = goal_lib.goal_value(lang, images, targets[:, None])  # [B, n]
  hit = p.ok & (g > goal_lib.goal_threshold(lang))
  solved = jnp.any(hit, 1)
  used = nodes_until_first(p.ok, hit)
  drawn = jnp.any(starts != 0, axis=2)
  # Distinct valid samples by goal value, then the fallbacks, then nothing.
  cand = jnp.concatenate([p.tokens, starts], axis=1)
  ok = jnp.concatenate([p.ok, drawn], axis=1)
  ok = ok & ~earlier_duplicate(hash_tokens(cand), ok)
  score = jnp.concatenate([g, jnp.full((b, s_), -1e30, g.dtype)], axis=1)
  top, idx = jax.lax.top_k(jnp.where(ok, score, -jnp.inf), min(beam, s_ + n))
  kept = jnp.take_along_axis(cand, idx[:, :, None], axis=1)
  kept = jnp.where(jnp.isfinite(top)[:, :, None], kept, 0)
  # Fallback starts the search renders count too, unless a sample solved.
  fallbacks = jnp.sum(jnp.isfinite(top) & (idx >= n), axis=1)
  return kept, used + jnp.where(solved, 0, fallbacks).astype(jnp.int32)


def make_solver(
  lang: str,
  config: SearchConfig,
  method: str | registry.Method = "tree_diffusion",
  policy=None,
  value=None,
  mesh=None,
  max_primitives: int = 8,
  start_policy=None,
  start_samples: int = 64,
):
  """Builds the solver of a registered method.

  Args:
    lang: language name.
    config: search settings; must fit the method (`registry.Method.check`).
    method: a registered method's name (`registry.names()`) or entry.
    policy, value: PolicyModel / ValueModel, as the method needs.
    mesh: optional 1-axis ("data",) mesh to shard targets over.
    max_primitives: repl_flow programs start over at this many primitives.
    start_policy: optional autoregressive PolicyModel (methods with
      `ar_starts`): the search starts from the best of `start_samples`
      whole programs it samples per target (`autoregressive_starts`), every
      valid sample counted as a node; the given or random starts only fill
      up.

  Returns:
    solve(targets [B, H, W, C] float32, starts=None, key=0) ->
    SearchResult; the search inside is jitted once per shape (B must
    divide over the mesh).

  Raises:
    ValueError: an unknown method, or settings or models that do not fit
      it.
  """
  name = get_language(lang).name
  max_len = get_language(lang).max_program_len
  spec = registry.get(method) if isinstance(method, str) else method
  if max_primitives < 1:
    raise ValueError("max_primitives must be at least 1")
  uses_value = ranking_lib.get(config.rank).uses_value
  spec.check(
    name, config, registry.Models(policy, value if uses_value else None)
  )
  if start_policy is not None:
    if not spec.ar_starts:
      allowed = [n for n in registry.names() if registry.get(n).ar_starts]
      raise ValueError(
        f"autoregressive starts are for {', '.join(allowed)}, not {spec.name}"
      )
    if start_samples < 1:
      raise ValueError("start_samples must be at least 1")
  # Only the models this search uses enter the jitted function.
  used = {
    "policy": policy if spec.label_mode is not None else None,
    "value": value if uses_value else None,
    "start": start_policy,
  }
  used = {k: m for k, m in used.items() if m is not None}
  graphs = {k: nnx.split(m)[0] for k, m in used.items()}
  weights = {k: nnx.split(m)[1] for k, m in used.items()}

  def solve(weights, targets, starts, key):
    models = {k: nnx.merge(graphs[k], w) for k, w in weights.items()}
    propose = spec.make_proposer(
      registry.ProposerArgs(
        name,
        config,
        registry.Models(models.get("policy"), models.get("value")),
        max_primitives,
      )
    )
    value_fn = models["value"].score if "value" in models else None
    spent = None
    if "start" in models:
      key, sub = jax.random.split(key)
      starts, spent = autoregressive_starts(
        name,
        models["start"],
        start_samples,
        config.beam,
        targets,
        starts if starts.ndim == 3 else starts[:, None],
        sub,
        config.temperature,
      )
    return search(name, config, propose, value_fn, targets, starts, key, spent)

  if mesh is None:
    jitted = jax.jit(solve)
  else:
    rep, shard = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    jitted = jax.jit(
      solve,
      in_shardings=(rep, shard, shard, rep),
      out_shardings=SearchResult(*([shard] * 5)),
    )
  # Methods that build programs from nothing start from the empty canvas.
  empty_starts = spec.label_mode in ("whole_program", "repl")

  def call(targets, starts=None, key=0) -> SearchResult:
    """targets [B, H, W, C] float in [0, 1]; starts [B, L] or [B, S, L]
    int32 (default: one random one-primitive program per target, drawn
    from the seed when `key` is an int; the empty canvas for methods that
    build programs from nothing); key: PRNG key or int seed."""
    targets = check_targets(name, targets)
    if empty_starts and starts is None:
      # A placeholder: programs are sampled from the empty canvas.
      starts = np.zeros((len(targets), 1, max_len), np.int32)
    if isinstance(key, int):
      if starts is None:
        starts = random_starts(name, len(targets), key)
      key = jax.random.key(key)
    elif starts is None:
      raise ValueError("pass starts, or an int seed as key to draw them")
    starts = np.asarray(starts, np.int32)
    if (
      starts.ndim not in (2, 3)
      or len(starts) != len(targets)
      or starts.shape[-1] != max_len
    ):
      raise ValueError(
        f"starts must be [B, L] or [B, S, L] with B = {len(targets)} "
        f"targets and L = {max_len}, got {list(starts.shape)}"
      )
    return jitted(weights, targets, starts, key)

  return call
