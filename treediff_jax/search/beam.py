"""The batched beam search: one jitted function from target images to
programs.

Each step of a `lax.while_loop` asks the proposer for k edits of every beam
entry, drops candidates already seen (the beam, its history or an earlier
candidate of the same step, compared by token-array hashes), renders every
new candidate in one call of the rasteriser, goal-checks it, ranks it and
keeps the best `beam` as the next beam. A target stops as soon as one
candidate meets its goal or when its node budget is spent. No host round
trip happens inside the loop.

Nodes are counted as renderer calls: each distinct start program, then
every candidate that survives deduplication (every valid candidate when
`dedupe` is off), in proposal order, up to the budget. A step's candidates
are rendered together, but a solving step counts only the candidates up to
and including the first solving one, so the count at a solve equals what a
run with that node budget would have used. A target whose candidates are
all invalid or already seen keeps its beam and tries again at the next step
(using no nodes) until `max_steps`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from treediff_jax import render as render_lib
from treediff_jax.dsl.languages import get_language
from treediff_jax.render import goal
from treediff_jax.search.token_edits import hash_tokens

RANKINGS = ("value", "log_prob", "goal")
# Frontier rows rendered per pass of the fused renderer (see
# `render.render_in_chunks`).
RENDER_CHUNK = 512


@dataclasses.dataclass(frozen=True)
class SearchConfig:
  """Static settings of the search.

  beam: beam entries kept per target. k: edits proposed per entry.
  max_steps: search depth. max_nodes: node budget per target.
  rank: how candidates are ranked: `value` (value model, fewest edits
    left first), `log_prob` (summed edit log-probability along the path)
    or `goal` (graded goal value, for hill climbing).
  history: hashes of earlier nodes remembered per target (a ring buffer).
  dedupe: drop candidates seen before (on the beam, in the history or
    earlier in the same step). Without it every valid candidate is a node,
    as in plain rejection sampling.
  """

  beam: int = 64
  k: int = 3
  max_steps: int = 50
  max_nodes: int = 10_000
  rank: str = "value"
  history: int = 4096
  dedupe: bool = True

  def __post_init__(self):
    if self.rank not in RANKINGS:
      raise ValueError(
        f"unknown ranking {self.rank!r}; choose one of {', '.join(RANKINGS)}"
      )
    for f in ("beam", "k", "max_steps", "max_nodes", "history"):
      if getattr(self, f) < 1:
        raise ValueError(f"search setting {f} must be at least 1")


class SearchResult(NamedTuple):
  """What `solve` returns per target.

  programs: [B, L] int32 the solving program, else the closest found.
  solved: [B] bool. nodes: [B] int32 nodes expanded (renderer calls).
  steps: [B] int32 search steps taken. best_goal: [B] float32 graded goal
  value of `programs`.
  """

  programs: jnp.ndarray
  solved: jnp.ndarray
  nodes: jnp.ndarray
  steps: jnp.ndarray
  best_goal: jnp.ndarray


def _seen(hashes, table, valid):
  """hashes [B, C, 2] in table [B, T, 2] (entries where valid [B, T])."""
  eq = jnp.all(hashes[:, :, None, :] == table[:, None, :, :], axis=-1)
  return jnp.any(eq & valid[:, None, :], axis=-1)


def earlier_duplicate(hashes, ok):
  """[B, C] bool: an earlier ok candidate of the same row has this hash."""
  c = hashes.shape[1]
  eq = jnp.all(hashes[:, :, None, :] == hashes[:, None, :, :], axis=-1)
  earlier = jnp.tril(jnp.ones((c, c), bool), k=-1)[None]
  return jnp.any(eq & earlier & ok[:, None, :], axis=-1)


def nodes_until_first(new: jnp.ndarray, hit: jnp.ndarray) -> jnp.ndarray:
  """Nodes a row uses when its candidates are rendered one by one in order:
  the `new` ones up to and including the first `hit`, else all `new` ones.

  new, hit: [B, C] bool. Returns [B] int32.
  """
  made = jnp.cumsum(new, axis=1).astype(jnp.int32)
  first = jnp.take_along_axis(made, jnp.argmax(hit, axis=1)[:, None], 1)
  return jnp.where(jnp.any(hit, axis=1), first[:, 0], made[:, -1])


def search(
  lang: str,
  config: SearchConfig,
  propose: Callable,
  value_fn: Callable | None,
  targets: jnp.ndarray,
  starts: jnp.ndarray,
  key: jnp.ndarray,
  start_nodes: jnp.ndarray | None = None,
) -> SearchResult:
  """Beam search from `starts` towards `targets` (pure; jit it).

  Args:
    lang: language name (static).
    config: SearchConfig (static).
    propose: a proposer (see `treediff_jax.search.propose`).
    value_fn: (targets [B, H, W, C], images [B, C, H, W, C]) -> [B, C]
      float32 predicted edits left of C candidates per target; needed when
      config.rank == "value".
    targets: [B, H, W, C] float32 target images in [0, 1].
    starts: [B, L] or [B, S, L] int32 start programs (then <PAD>), at
      most `beam` per target; each distinct one counts as a node.
    key: PRNG key; step s uses fold_in(key, s).
    start_nodes: optional [B] int32 nodes spent making the starts (then
      the starts themselves are not counted again).

  Returns:
    SearchResult.
  """
  name = get_language(lang).name
  w, hist = config.beam, config.history
  draw = lambda t: render_lib.render_in_chunks(  # noqa: E731
    name, t, RENDER_CHUNK
  )
  if config.rank == "value" and value_fn is None:
    raise ValueError("rank='value' needs a value model")

  if starts.ndim == 2:
    starts = starts[:, None]
  b, n0, big_l = starts.shape
  if n0 > min(w, hist):
    raise ValueError(
      f"{n0} start programs per target exceed beam={w} or history={hist}"
    )
  flat0 = starts.reshape(b * n0, big_l)
  img0 = draw(flat0)
  threshold = goal.goal_threshold(name)
  img0 = img0.reshape((b, n0) + img0.shape[1:])
  g0 = goal.goal_value(name, img0, targets[:, None])  # [B, n0]
  hit0 = g0 > threshold
  h0 = hash_tokens(starts)  # [B, n0, 2]
  # Equal start programs count once.
  first = ~earlier_duplicate(h0, jnp.ones((b, n0), bool))
  # An empty start (all <PAD>) is a placeholder for proposers that ignore
  # the beam (the autoregressive baseline): live, but neither a node nor a
  # solution.
  drawn = jnp.any(starts != 0, axis=2)
  hit0 = hit0 & drawn
  g0 = jnp.where(drawn, g0, -jnp.inf)
  pick0 = jnp.where(jnp.any(hit0, 1), jnp.argmax(hit0, 1), jnp.argmax(g0, 1))
  beam = jnp.zeros((b, w, big_l), jnp.int32).at[:, :n0].set(starts)
  images = jnp.zeros((b, w) + img0.shape[2:], jnp.float32)
  images = images.at[:, :n0].set(img0)
  live = jnp.zeros((b, w), bool).at[:, :n0].set(first)
  score = jnp.zeros((b, w), jnp.float32)
  table = jnp.zeros((b, hist, 2), jnp.uint32).at[:, :n0].set(h0)
  filled = jnp.zeros((b, hist), bool).at[:, :n0].set(first)
  state = dict(
    step=jnp.array(0, jnp.int32),
    beam=beam,
    images=images,
    live=live,
    score=score,
    table=table,
    filled=filled,
    cursor=jnp.full(b, n0, jnp.int32),
    solved=jnp.any(hit0, axis=1),
    best=jnp.take_along_axis(starts, pick0[:, None, None], 1)[:, 0],
    best_goal=jnp.take_along_axis(g0, pick0[:, None], 1)[:, 0],
    nodes=jnp.sum(first & drawn, axis=1).astype(jnp.int32)
    if start_nodes is None
    else start_nodes.astype(jnp.int32),
    steps=jnp.zeros(b, jnp.int32),
  )

  def active(s):
    return (
      ~s["solved"] & (s["nodes"] < config.max_nodes) & jnp.any(s["live"], 1)
    )

  def cond(s):
    return (s["step"] < config.max_steps) & jnp.any(active(s))

  def body(s):
    run = active(s)
    p = propose(
      jax.random.fold_in(key, s["step"]),
      targets,
      s["beam"],
      s["images"],
      s["live"] & run[:, None],
    )
    c = p.tokens.shape[1]
    hashes = hash_tokens(p.tokens)  # [B, C, 2]
    new = p.ok & run[:, None]
    if config.dedupe:
      new = new & ~_seen(hashes, s["table"], s["filled"])
      new = new & ~earlier_duplicate(hashes, new)
    budget = config.max_nodes - s["nodes"]
    new = new & (jnp.cumsum(new, axis=1) <= budget[:, None])
    flat = p.tokens.reshape(b * c, big_l)
    imgs = draw(flat)  # one pass over the whole frontier
    imgs = imgs.reshape((b, c) + imgs.shape[1:])
    g = goal.goal_value(name, imgs, targets[:, None])  # [B, C]
    hit = (g > threshold) & new
    solved_now = jnp.any(hit, axis=1)
    first_hit = jnp.argmax(hit, axis=1)
    nodes = s["nodes"] + nodes_until_first(new, hit)
    # The solving candidate, else the best graded one seen.
    g_new = jnp.where(new, g, -jnp.inf)
    pick = jnp.where(solved_now, first_hit, jnp.argmax(g_new, 1))
    pick_goal = jnp.take_along_axis(g_new, pick[:, None], 1)[:, 0]
    better = solved_now | (pick_goal > s["best_goal"])
    pick_tok = jnp.take_along_axis(p.tokens, pick[:, None, None], 1)[:, 0]
    best = jnp.where(better[:, None], pick_tok, s["best"])
    best_goal = jnp.where(better, pick_goal, s["best_goal"])
    # Rank.
    parent = jnp.repeat(s["score"], c // w, axis=1) if c % w == 0 else 0.0
    if config.rank == "value":
      rank = -value_fn(targets, imgs)
    elif config.rank == "log_prob":
      if p.restart is not None:
        parent = jnp.where(p.restart, 0.0, parent)
      rank = parent + p.log_prob
    else:
      rank = g
    rank = jnp.where(new, rank, -jnp.inf)
    top, idx = jax.lax.top_k(rank, w)
    keep = jnp.any(new, axis=1)[:, None]
    take = lambda a: jnp.take_along_axis(  # noqa: E731
      a, idx.reshape(idx.shape + (1,) * (a.ndim - 2)), axis=1
    )
    nb = jnp.where(keep[..., None], take(p.tokens), s["beam"])
    ni = jnp.where(keep[..., None, None, None], take(imgs), s["images"])
    nl = jnp.where(keep, jnp.isfinite(top), s["live"])
    score = rank if config.rank == "log_prob" else jnp.zeros_like(rank)
    ns = jnp.where(keep, take(score), s["score"])
    # History: append this step's new nodes to the ring buffer.
    slot = (s["cursor"][:, None] + jnp.cumsum(new, axis=1) - 1) % hist
    slot = jnp.where(new, slot, hist)  # out of range: dropped
    rows = jnp.arange(b)[:, None]
    table = s["table"].at[rows, slot].set(hashes, mode="drop")
    filled = s["filled"].at[rows, slot].set(True, mode="drop")
    return dict(
      step=s["step"] + 1,
      beam=nb,
      images=ni,
      live=nl & ~solved_now[:, None],
      score=ns,
      table=table,
      filled=filled,
      cursor=s["cursor"] + jnp.sum(new, axis=1).astype(jnp.int32),
      solved=s["solved"] | solved_now,
      best=best,
      best_goal=best_goal,
      nodes=nodes,
      steps=s["steps"] + run.astype(jnp.int32),
    )

  s = jax.lax.while_loop(cond, body, state)
  return SearchResult(
    s["best"], s["solved"], s["nodes"], s["steps"], s["best_goal"]
  )
