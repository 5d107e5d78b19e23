"""The batched beam search: one jitted function from target images to
programs.

Each step of a `lax.while_loop` asks the proposer for k edits of every beam
entry, drops candidates already seen (the beam, its history or an earlier
candidate of the same step, compared by token-array hashes), renders every
new candidate in one call of the rasteriser, goal-checks it, ranks it
(`search.ranking`) and keeps the best `beam` as the next beam. A target
stops as soon as one candidate meets its goal or when its node budget is
spent. No host round trip happens inside the loop.

Nodes are counted as renderer calls: each distinct start program, then
every candidate that survives deduplication (every valid candidate when
`dedupe` is off), in proposal order, up to the budget. A step's candidates
are rendered together, but a solving step counts only the candidates up to
and including the first solving one, so the count at a solve equals what a
run with that node budget would have used. A target whose candidates are
all invalid or already seen keeps its beam and tries again at the next step
(using no nodes) until `max_steps`.

The loop body is four named steps over a `SearchState`: `_propose` (edits
and which of them are new nodes), `_count_nodes` (the frontier rendered
and goal-checked, nodes and the best program so far), `_rank_and_keep`
(the next beam) and `_remember` (the history of hashes).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from treediff_jax import render as render_lib
from treediff_jax.dsl.languages import get_language
from treediff_jax.render import goal
from treediff_jax.search import ranking as ranking_lib
from treediff_jax.search.propose import Proposals, Proposer
from treediff_jax.search.token_edits import hash_tokens

# Frontier rows rendered per pass of the fused renderer (see
# `render.render_in_chunks`).
RENDER_CHUNK = 512


@dataclasses.dataclass(frozen=True)
class SearchConfig:
  """Static settings of the search.

  beam: beam entries kept per target. k: edits proposed per entry.
  max_steps: search depth. max_nodes: node budget per target.
  rank: how candidates are ranked (`search.ranking`): `value` (value
    model, fewest edits left first), `log_prob` (summed edit
    log-probability along the path), `goal` (graded goal value, for hill
    climbing), `goal_value` or `goal_log_prob` (the goal value with the
    value model or the edit log-probability, weighted by `value_weight` /
    `log_prob_weight`).
  history: hashes of earlier nodes remembered per target (a ring buffer).
  dedupe: drop candidates seen before (on the beam, in the history or
    earlier in the same step). Without it every valid candidate is a node,
    as in plain rejection sampling.
  uniform_share: share of each entry's k edits drawn as uniform random
    grammar-valid mutations instead of from the policy (policy methods
    only), so that the learned search contains hill climbing's moves.
  temperature: softmax temperature of the learned proposers (> 0).
  """

  beam: int = 64
  k: int = 3
  max_steps: int = 50
  max_nodes: int = 10_000
  rank: str = "value"
  history: int = 4096
  dedupe: bool = True
  value_weight: float = 0.01
  log_prob_weight: float = 0.01
  uniform_share: float = 0.0
  temperature: float = 1.0

  def __post_init__(self):
    ranking_lib.get(self.rank)
    for f in ("beam", "k", "max_steps", "max_nodes", "history"):
      if getattr(self, f) < 1:
        raise ValueError(f"search setting {f} must be at least 1")
    if not 0.0 <= self.uniform_share <= 1.0:
      raise ValueError("search setting uniform_share must lie in [0, 1]")
    if not self.temperature > 0:
      raise ValueError("search setting temperature must be positive")

  @property
  def uniform_k(self) -> int:
    """Of the k edits per entry, how many are uniform mutations."""
    return int(round(self.k * self.uniform_share))


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


class SearchState(NamedTuple):
  """The `lax.while_loop` state: B targets, W beam entries, L tokens,
  T remembered hashes, H x W' x C images."""

  step: jnp.ndarray  # [] int32 loop iterations so far
  beam: jnp.ndarray  # [B, W, L] int32 programs on the beam
  images: jnp.ndarray  # [B, W, H, W', C] float32 their renders
  live: jnp.ndarray  # [B, W] bool entries to expand
  score: jnp.ndarray  # [B, W] float32 score carried by each entry
  table: jnp.ndarray  # [B, T, 2] uint32 hashes of the nodes seen (a ring)
  filled: jnp.ndarray  # [B, T] bool ring slots in use
  cursor: jnp.ndarray  # [B] int32 next ring slot
  solved: jnp.ndarray  # [B] bool
  best: jnp.ndarray  # [B, L] int32 solving program, else best graded
  best_goal: jnp.ndarray  # [B] float32 graded goal value of `best`
  nodes: jnp.ndarray  # [B] int32 nodes expanded
  steps: jnp.ndarray  # [B] int32 steps in which the target was active


class Candidates(NamedTuple):
  """One step's candidates: C per target."""

  proposals: Proposals  # tokens [B, C, L], ok, log_prob, restart
  hashes: jnp.ndarray  # [B, C, 2] uint32
  new: jnp.ndarray  # [B, C] bool a new node within the budget
  run: jnp.ndarray  # [B] bool the target was active this step


class Rendered(NamedTuple):
  """The frontier's renders and goal checks."""

  images: jnp.ndarray  # [B, C, H, W', C] float32
  goal: jnp.ndarray  # [B, C] float32 graded goal value
  hit: jnp.ndarray  # [B, C] bool a new node that meets the goal


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


def _take(a, idx):
  """Rows `idx` [B, W] of a [B, C, ...] array -> [B, W, ...]."""
  return jnp.take_along_axis(
    a, idx.reshape(idx.shape + (1,) * (a.ndim - 2)), axis=1
  )


def _initial_state(
  name: str,
  config: SearchConfig,
  draw: Callable,
  targets: jnp.ndarray,
  starts: jnp.ndarray,
  start_nodes: jnp.ndarray | None,
) -> SearchState:
  """Renders and goal-checks the starts [B, S, L]; each distinct drawn
  start is a node unless `start_nodes` says what making them cost."""
  w, hist = config.beam, config.history
  b, n0, big_l = starts.shape
  img0 = draw(starts.reshape(b * n0, big_l))
  img0 = img0.reshape((b, n0) + img0.shape[1:])
  g0 = goal.goal_value(name, img0, targets[:, None])  # [B, n0]
  hit0 = g0 > goal.goal_threshold(name)
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
  if start_nodes is None:
    nodes = jnp.sum(first & drawn, axis=1).astype(jnp.int32)
  else:
    nodes = start_nodes.astype(jnp.int32)
  images = jnp.zeros((b, w) + img0.shape[2:], jnp.float32)
  return SearchState(
    step=jnp.array(0, jnp.int32),
    beam=jnp.zeros((b, w, big_l), jnp.int32).at[:, :n0].set(starts),
    images=images.at[:, :n0].set(img0),
    live=jnp.zeros((b, w), bool).at[:, :n0].set(first),
    score=jnp.zeros((b, w), jnp.float32),
    table=jnp.zeros((b, hist, 2), jnp.uint32).at[:, :n0].set(h0),
    filled=jnp.zeros((b, hist), bool).at[:, :n0].set(first),
    cursor=jnp.full(b, n0, jnp.int32),
    solved=jnp.any(hit0, axis=1),
    best=jnp.take_along_axis(starts, pick0[:, None, None], 1)[:, 0],
    best_goal=jnp.take_along_axis(g0, pick0[:, None], 1)[:, 0],
    nodes=nodes,
    steps=jnp.zeros(b, jnp.int32),
  )


def _active(config: SearchConfig, s: SearchState) -> jnp.ndarray:
  """[B] bool targets still searching."""
  return ~s.solved & (s.nodes < config.max_nodes) & jnp.any(s.live, 1)


def _propose(
  config: SearchConfig,
  propose: Proposer,
  key: jnp.ndarray,
  targets: jnp.ndarray,
  s: SearchState,
) -> Candidates:
  """Proposes k edits per live entry of the active targets and marks the
  new nodes: valid, not seen before (with `dedupe`), within the budget."""
  run = _active(config, s)
  p = propose(
    jax.random.fold_in(key, s.step),
    targets,
    s.beam,
    s.images,
    s.live & run[:, None],
  )
  hashes = hash_tokens(p.tokens)  # [B, C, 2]
  new = p.ok & run[:, None]
  if config.dedupe:
    new = new & ~_seen(hashes, s.table, s.filled)
    new = new & ~earlier_duplicate(hashes, new)
  budget = config.max_nodes - s.nodes
  new = new & (jnp.cumsum(new, axis=1) <= budget[:, None])
  return Candidates(p, hashes, new, run)


def _count_nodes(
  name: str,
  draw: Callable,
  targets: jnp.ndarray,
  f: Candidates,
  s: SearchState,
) -> tuple[Rendered, SearchState]:
  """Renders the whole frontier in one pass, goal-checks it, and updates
  the node counts, the solved flags and the best program so far."""
  tokens = f.proposals.tokens
  b, c, big_l = tokens.shape
  imgs = draw(tokens.reshape(b * c, big_l))  # one pass over the frontier
  imgs = imgs.reshape((b, c) + imgs.shape[1:])
  g = goal.goal_value(name, imgs, targets[:, None])  # [B, C]
  hit = (g > goal.goal_threshold(name)) & f.new
  solved_now = jnp.any(hit, axis=1)
  # The solving candidate, else the best graded one seen.
  g_new = jnp.where(f.new, g, -jnp.inf)
  pick = jnp.where(solved_now, jnp.argmax(hit, axis=1), jnp.argmax(g_new, 1))
  pick_goal = jnp.take_along_axis(g_new, pick[:, None], 1)[:, 0]
  better = solved_now | (pick_goal > s.best_goal)
  pick_tok = jnp.take_along_axis(tokens, pick[:, None, None], 1)[:, 0]
  s = s._replace(
    solved=s.solved | solved_now,
    best=jnp.where(better[:, None], pick_tok, s.best),
    best_goal=jnp.where(better, pick_goal, s.best_goal),
    nodes=s.nodes + nodes_until_first(f.new, hit),
  )
  return Rendered(imgs, g, hit), s


def _rank_and_keep(
  config: SearchConfig,
  value_fn: Callable | None,
  targets: jnp.ndarray,
  f: Candidates,
  r: Rendered,
  s: SearchState,
) -> SearchState:
  """Ranks the new candidates and keeps the best `beam` of each target
  that made any (the others keep their beam); solved targets stop."""
  w = config.beam
  p = f.proposals
  c = p.tokens.shape[1]
  ranking = ranking_lib.get(config.rank)
  parent = jnp.repeat(s.score, c // w, axis=1) if c % w == 0 else 0.0
  if p.restart is not None:
    parent = jnp.where(p.restart, 0.0, parent)
  parent = jnp.broadcast_to(parent, r.goal.shape)
  value = value_fn(targets, r.images) if ranking.uses_value else None
  rank, carried = ranking.score(
    ranking_lib.Frontier(r.goal, p.log_prob, parent, value), config
  )
  rank = jnp.where(f.new, rank, -jnp.inf)
  if ranking.carries_score:
    carried = jnp.where(f.new, carried, -jnp.inf)
  top, idx = jax.lax.top_k(rank, w)
  keep = jnp.any(f.new, axis=1)[:, None]
  solved_now = jnp.any(r.hit, axis=1)
  live = jnp.where(keep, jnp.isfinite(top), s.live)
  return s._replace(
    beam=jnp.where(keep[..., None], _take(p.tokens, idx), s.beam),
    images=jnp.where(
      keep[..., None, None, None], _take(r.images, idx), s.images
    ),
    live=live & ~solved_now[:, None],
    score=jnp.where(keep, _take(carried, idx), s.score),
  )


def _remember(
  config: SearchConfig, f: Candidates, s: SearchState
) -> SearchState:
  """Appends the step's new nodes to each target's ring of hashes."""
  hist = config.history
  b = f.new.shape[0]
  slot = (s.cursor[:, None] + jnp.cumsum(f.new, axis=1) - 1) % hist
  slot = jnp.where(f.new, slot, hist)  # out of range: dropped
  rows = jnp.arange(b)[:, None]
  return s._replace(
    table=s.table.at[rows, slot].set(f.hashes, mode="drop"),
    filled=s.filled.at[rows, slot].set(True, mode="drop"),
    cursor=s.cursor + jnp.sum(f.new, axis=1).astype(jnp.int32),
  )


def search(
  lang: str,
  config: SearchConfig,
  propose: Proposer,
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
    propose: a `Proposer` (see `treediff_jax.search.propose`).
    value_fn: (targets [B, H, W, C], images [B, C, H, W, C]) -> [B, C]
      float32 predicted edits left of C candidates per target; needed when
      the ranking uses the value model.
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
  if ranking_lib.get(config.rank).uses_value and value_fn is None:
    raise ValueError(f"rank={config.rank!r} needs a value model")
  if starts.ndim == 2:
    starts = starts[:, None]
  n0 = starts.shape[1]
  if n0 > min(config.beam, config.history):
    raise ValueError(
      f"{n0} start programs per target exceed beam={config.beam} or "
      f"history={config.history}"
    )

  def draw(tokens):
    return render_lib.render_in_chunks(name, tokens, RENDER_CHUNK)

  def cond(s: SearchState):
    return (s.step < config.max_steps) & jnp.any(_active(config, s))

  def body(s: SearchState) -> SearchState:
    f = _propose(config, propose, key, targets, s)
    rendered, s = _count_nodes(name, draw, targets, f, s)
    s = _rank_and_keep(config, value_fn, targets, f, rendered, s)
    s = _remember(config, f, s)
    return s._replace(step=s.step + 1, steps=s.steps + f.run.astype(jnp.int32))

  s = _initial_state(name, config, draw, targets, starts, start_nodes)
  s = jax.lax.while_loop(cond, body, s)
  return SearchResult(s.best, s.solved, s.nodes, s.steps, s.best_goal)
