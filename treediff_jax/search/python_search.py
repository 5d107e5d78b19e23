"""The beam search written as a plain Python loop over targets, for tests.

It takes its edits from the same proposer (called on the same arrays with
the same keys) and renders with the same renderer, but keeps the beam,
the seen-set, the node count and the ranking in Python containers, so it
checks the bookkeeping of the jitted `search` independently.
"""

from __future__ import annotations

import jax
import numpy as np

from treediff_jax import render as render_lib
from treediff_jax.dsl.languages import get_language
from treediff_jax.render import goal
from treediff_jax.search.beam import SearchConfig


def python_search(
  lang: str, config: SearchConfig, propose, targets, starts, key
) -> dict:
  """Same arguments as `beam.search` (rank `log_prob` or `goal`; one start
  per target, all <PAD> for an empty start that is neither a node nor a
  solution); returns a dict of NumPy arrays with the fields of
  `SearchResult`."""
  name = get_language(lang).name
  if config.rank not in ("log_prob", "goal"):
    raise ValueError("python_search ranks by log_prob or goal only")
  draw = render_lib.renderer(name)
  propose = jax.jit(propose)
  targets = np.asarray(targets, np.float32)
  starts = np.asarray(starts, np.int32)
  b, big_l = starts.shape
  w = config.beam
  img0 = np.asarray(draw(starts))
  drawn = np.any(starts != 0, axis=1)
  solved = list(np.asarray(goal.goal_reached(name, img0, targets)) & drawn)
  g0 = np.asarray(goal.goal_value(name, img0, targets))
  best_goal = list(np.where(drawn, g0, -np.inf).astype(np.float32))
  best = [starts[i].copy() for i in range(b)]
  nodes = [int(d) for d in drawn]
  steps = [0] * b
  seen = [{tuple(starts[i])} for i in range(b)]
  beams = [[(starts[i], img0[i], 0.0)] for i in range(b)]
  for step in range(config.max_steps):
    run = [
      not solved[i] and nodes[i] < config.max_nodes and len(beams[i]) > 0
      for i in range(b)
    ]
    if not any(run):
      break
    beam = np.zeros((b, w, big_l), np.int32)
    images = np.zeros((b, w) + img0.shape[1:], np.float32)
    live = np.zeros((b, w), bool)
    for i in range(b):
      for j, (t, im, _) in enumerate(beams[i]):
        beam[i, j], images[i, j], live[i, j] = t, im, run[i]
    p = propose(jax.random.fold_in(key, step), targets, beam, images, live)
    toks, ok, lp = (np.asarray(a) for a in p[:3])
    restart = np.zeros_like(ok) if p.restart is None else np.asarray(p.restart)
    c = toks.shape[1]
    imgs = np.asarray(draw(toks.reshape(b * c, big_l)))
    tgt = np.repeat(targets, c, axis=0)
    g = np.asarray(goal.goal_value(name, imgs, tgt)).reshape(b, c)
    hit = np.asarray(goal.goal_reached(name, imgs, tgt)).reshape(b, c)
    imgs = imgs.reshape((b, c) + imgs.shape[1:])
    for i in range(b):
      if not run[i]:
        continue
      steps[i] += 1
      kids = []
      for j in range(c):
        h = tuple(toks[i, j])
        if not ok[i, j] or h in seen[i] or nodes[i] >= config.max_nodes:
          continue
        seen[i].add(h)
        nodes[i] += 1
        parent = beams[i][j // (c // w)][2] if c % w == 0 else 0.0
        parent = 0.0 if restart[i, j] else parent
        if config.rank == "log_prob":
          r = np.float32(parent) + np.float32(lp[i, j])
        else:
          r = g[i, j]
        kids.append((j, r))
      hits = [j for j, _ in kids if hit[i, j]]
      if hits:  # nodes after the first solving one do not count
        nodes[i] -= sum(1 for j, _ in kids if j > hits[0])
        solved[i] = True
        best[i], best_goal[i] = toks[i, hits[0]], g[i, hits[0]]
      elif kids:
        j = max(kids, key=lambda x: (g[i, x[0]], -x[0]))[0]
        if g[i, j] > best_goal[i]:
          best[i], best_goal[i] = toks[i, j], g[i, j]
      if kids:
        kids.sort(key=lambda x: -x[1])  # stable: ties keep proposal order
        beams[i] = [
          (toks[i, j], imgs[i, j], r if config.rank == "log_prob" else 0.0)
          for j, r in kids[:w]
        ]
  return dict(
    programs=np.stack(best),
    solved=np.array(solved),
    nodes=np.array(nodes, np.int32),
    steps=np.array(steps, np.int32),
    best_goal=np.array(best_goal, np.float32),
  )
