"""The solving methods, one entry each: the one place that names them.

An entry holds a method's default search settings, the label mode its
policy is trained with (or none), whether it takes a value model, the
languages it supports, the rankings it allows and how its proposer is
built. `solver.make_solver`, `search.methods.build` and the launch
commands (`solve`, `evaluate`, `pipeline`: their --method flags) read it.

  tree_diffusion          policy rollout: beam 1, one sampled edit a step
                          (tree diffusion without search).
  tree_diffusion_search   beam search over policy edits (the default
                          settings in DEFAULT_SEARCH).
  hill_climb              random grammar-valid mutations, greedy on the
                          graded goal value (no learning).
  ar                      the autoregressive (CSGNet-style) baseline:
                          rejection sampling of whole programs.
  repl_flow               REPL Flow (CSG2D): programs grown one primitive
                          at a time, seeing the partial render.

Adding a method is one `register(Method(...))` call with its proposer
builder (see the tests for a throwaway example).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

from treediff_jax.search import propose as proposers
from treediff_jax.search import ranking as ranking_lib
from treediff_jax.search import repl
from treediff_jax.search.beam import SearchConfig
from treediff_jax.search.propose import Proposer


class Models(NamedTuple):
  """The models a method uses (Flax NNX modules; None where unused)."""

  policy: object = None
  value: object = None


class ProposerArgs(NamedTuple):
  """What a method's proposer builder gets (inside the jitted solver)."""

  lang: str  # canonical language name
  config: SearchConfig
  models: Models
  max_primitives: int  # repl_flow: entries restart at this many


@dataclasses.dataclass(frozen=True)
class Method:
  """One solving method.

  name: what the flags and result files call it.
  summary: one line for --help and the docs.
  search: default search settings.
  make_proposer: ProposerArgs -> Proposer.
  label_mode: the label mode its policy is trained with; None: no policy.
  takes_value: a value model may rank its beam (when the ranking uses one).
  languages: the languages it supports (empty: every language).
  rankings: the rankings it allows (empty: every ranking).
  beam: a beam size it requires (None: any).
  ar_starts: it can start from the autoregressive baseline's samples.
  """

  name: str
  summary: str
  search: SearchConfig
  make_proposer: Callable[[ProposerArgs], Proposer]
  label_mode: str | None = "path"
  takes_value: bool = False
  languages: tuple[str, ...] = ()
  rankings: tuple[str, ...] = ()
  beam: int | None = None
  ar_starts: bool = False

  def check(self, lang: str, config: SearchConfig, models: Models) -> None:
    """Raises ValueError naming what does not fit this method."""
    if self.languages and lang not in self.languages:
      raise ValueError(
        f"{self.name} is defined for {', '.join(self.languages)}, not {lang}"
      )
    if self.label_mode is not None and models.policy is None:
      raise ValueError(
        f"{self.name} needs a policy trained with label_mode {self.label_mode}"
      )
    if self.rankings and config.rank not in self.rankings:
      raise ValueError(
        f"{self.name} ranks by {' or '.join(self.rankings)}, not {config.rank}"
      )
    if self.beam is not None and config.beam != self.beam:
      raise ValueError(
        f"{self.name} needs beam={self.beam} (got {config.beam}); "
        "k sets the proposals per step"
      )
    if ranking_lib.get(config.rank).uses_value:
      if not self.takes_value:
        raise ValueError(f"{self.name} takes no value model")
      if models.value is None:
        raise ValueError(f"rank={config.rank!r} needs a value model")
    if config.uniform_share and self.label_mode != "path":
      raise ValueError(
        f"uniform_share mixes random mutations into policy edits; "
        f"{self.name} has none"
      )


_METHODS: dict[str, Method] = {}


def register(method: Method, replace: bool = False) -> Method:
  """Adds `method` to the registry (ValueError if the name is taken and
  not `replace`)."""
  if method.name in _METHODS and not replace:
    raise ValueError(f"a method called {method.name!r} is registered")
  _METHODS[method.name] = method
  return method


def unregister(name: str) -> None:
  """Removes a method (tests)."""
  _METHODS.pop(name, None)


def get(name: str) -> Method:
  """The method called `name`.

  Raises:
    ValueError: an unknown name (the message lists the known ones).
  """
  if name not in _METHODS:
    raise ValueError(
      f"unknown method {name!r}; choose one of {', '.join(_METHODS)}"
    )
  return _METHODS[name]


def names() -> tuple[str, ...]:
  """The registered method names, in registration order."""
  return tuple(_METHODS)


# -- the proposers of the built-in methods -------------------------------------


def policy_edits(a: ProposerArgs) -> Proposer:
  """Edits sampled from the policy, with `uniform_share` of each entry's
  k drawn as uniform random mutations (`propose.mixed_proposer`)."""
  k_uniform = a.config.uniform_k
  k_policy = a.config.k - k_uniform
  if not k_uniform:
    return proposers.policy_proposer(
      a.lang, a.models.policy, k_policy, a.config.temperature
    )
  uniform = proposers.uniform_proposer(a.lang, k_uniform)
  if not k_policy:
    return uniform
  policy = proposers.policy_proposer(
    a.lang, a.models.policy, k_policy, a.config.temperature
  )
  return proposers.mixed_proposer([(policy, k_policy), (uniform, k_uniform)])


def uniform_mutations(a: ProposerArgs) -> Proposer:
  """Uniform random grammar-valid mutations (no model)."""
  return proposers.uniform_proposer(a.lang, a.config.k)


def whole_programs(a: ProposerArgs) -> Proposer:
  """Whole programs from the autoregressive policy."""
  return proposers.whole_program_proposer(
    a.lang, a.models.policy, a.config.k, a.config.temperature
  )


def repl_steps(a: ProposerArgs) -> Proposer:
  """Next primitives from the REPL Flow policy."""
  return repl.repl_proposer(
    a.lang,
    a.models.policy,
    a.config.k,
    a.config.temperature,
    a.max_primitives,
  )


# The default search of tree_diffusion_search, the best of the settings
# measured on the CSG2D validation targets with the shipped policy
# (RESULTS.md): hill climbing's shape (beam 4, 48 edits per entry), half
# of each entry's edits from the policy and half uniform mutations, ranked
# by the goal value with the edit's log-probability as a tie-break. It
# needs no value model.
DEFAULT_SEARCH = SearchConfig(
  beam=4, k=48, max_steps=200, rank="goal_log_prob", uniform_share=0.5
)

register(
  Method(
    "tree_diffusion",
    "policy rollout: beam 1, one sampled edit a step",
    SearchConfig(beam=1, k=1, max_steps=200, rank="log_prob"),
    policy_edits,
    takes_value=True,
    ar_starts=True,
  )
)
register(
  Method(
    "tree_diffusion_search",
    "beam search over policy edits",
    DEFAULT_SEARCH,
    policy_edits,
    takes_value=True,
    ar_starts=True,
  )
)
register(
  Method(
    "hill_climb",
    "random grammar-valid mutations, greedy on the goal value",
    SearchConfig(beam=4, k=48, max_steps=200, rank="goal"),
    uniform_mutations,
    label_mode=None,
    rankings=("goal",),
  )
)
register(
  Method(
    "ar",
    "autoregressive baseline: rejection sampling of whole programs",
    # Rejection sampling: every sampled program is a renderer call.
    SearchConfig(beam=1, k=64, max_steps=200, rank="log_prob", dedupe=False),
    whole_programs,
    label_mode="whole_program",
    beam=1,
  )
)
register(
  Method(
    "repl_flow",
    "REPL Flow: programs grown one primitive at a time",
    SearchConfig(beam=64, k=3, max_steps=200, rank="log_prob"),
    repl_steps,
    label_mode="repl",
    languages=("csg2d",),
    rankings=("log_prob", "goal"),
  )
)
