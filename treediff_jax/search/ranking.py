"""How the search ranks a step's candidates: one entry per ranking.

Every candidate is rendered and goal-checked anyway, so its graded goal
value against the target costs nothing; the learned signals are the value
model's predicted edits left and the policy's edit log-probability. A
ranking maps what the search knows of a step's candidates (`Frontier`) to
a score (higher is kept first) and to the score each kept candidate carries
to the next step (the running sum of the `log_prob` ranking; zeros for the
others).

  value          the value model: fewest predicted edits left first.
  log_prob       the summed edit log-probability along the path.
  goal           the graded goal value (hill climbing).
  goal_value     goal value minus value_weight x predicted edits left.
  goal_log_prob  goal value plus log_prob_weight x the edit's own
                 log-probability (a tie-break among equally good renders).

Add a ranking with one entry in RANKINGS.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax.numpy as jnp


class Frontier(NamedTuple):
  """What a ranking sees of a step's C candidates per target.

  goal: [B, C] float32 graded goal value against the target.
  log_prob: [B, C] float32 the edit's log-probability under its proposer.
  parent_score: [B, C] float32 the carried score of each candidate's beam
    entry (0 where the proposer restarted the program).
  value: [B, C] float32 predicted edits left, or None when the ranking
    does not use the value model.
  """

  goal: jnp.ndarray
  log_prob: jnp.ndarray
  parent_score: jnp.ndarray
  value: jnp.ndarray | None


@dataclasses.dataclass(frozen=True)
class Ranking:
  """score(frontier, weights) -> (rank [B, C], carried score [B, C])."""

  score: Callable
  uses_value: bool = False
  carries_score: bool = False


def _zeros(x):
  return jnp.zeros_like(x)


def _value(f: Frontier, w):
  del w
  return -f.value, _zeros(f.goal)


def _log_prob(f: Frontier, w):
  del w
  total = f.parent_score + f.log_prob
  return total, total


def _goal(f: Frontier, w):
  del w
  return f.goal, _zeros(f.goal)


def _goal_value(f: Frontier, w):
  return f.goal - w.value_weight * f.value, _zeros(f.goal)


def _goal_log_prob(f: Frontier, w):
  return f.goal + w.log_prob_weight * f.log_prob, _zeros(f.goal)


RANKINGS: dict[str, Ranking] = {
  "value": Ranking(_value, uses_value=True),
  "log_prob": Ranking(_log_prob, carries_score=True),
  "goal": Ranking(_goal),
  "goal_value": Ranking(_goal_value, uses_value=True),
  "goal_log_prob": Ranking(_goal_log_prob),
}


def get(name: str) -> Ranking:
  """The ranking called `name`.

  Raises:
    ValueError: an unknown name (the message lists the known ones).
  """
  if name not in RANKINGS:
    raise ValueError(
      f"unknown ranking {name!r}; choose one of {', '.join(RANKINGS)}"
    )
  return RANKINGS[name]
