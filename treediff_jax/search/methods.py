"""The solving methods by name, with their default search settings, built
from checkpoints: what `launch.solve` and `launch.evaluate` run.

  tree_diffusion          policy rollout: beam 1, one sampled edit a step
                          (tree diffusion without search).
  tree_diffusion_search   value-guided beam search (beam 64, k 3; ranked by
                          edit log-probability when no value model is
                          given).
  hill_climb              random grammar-valid mutations, greedy on the
                          graded goal value (no learning; no checkpoint).
  ar                      the autoregressive (CSGNet-style) baseline:
                          rejection sampling of whole programs (64 a step)
                          from a policy trained with label_mode
                          "whole_program" (configs/ar_tiny.py).
  repl_flow               REPL Flow (not implemented yet: see `build`).
"""

from __future__ import annotations

import dataclasses

from treediff_jax.dsl.languages import get_language
from treediff_jax.search.beam import SearchConfig
from treediff_jax.search.solver import make_solver

METHODS = (
  "tree_diffusion",
  "tree_diffusion_search",
  "hill_climb",
  "ar",
  "repl_flow",
)

DEFAULTS = {
  "tree_diffusion": SearchConfig(beam=1, k=1, max_steps=200, rank="log_prob"),
  "tree_diffusion_search": SearchConfig(beam=64, k=3, max_steps=30),
  "hill_climb": SearchConfig(beam=4, k=48, max_steps=200, rank="goal"),
  # Rejection sampling: every sampled program is a renderer call.
  "ar": SearchConfig(
    beam=1, k=64, max_steps=200, rank="log_prob", dedupe=False
  ),
}


@dataclasses.dataclass
class Method:
  """A ready solver: `solve(targets, starts=None, key=0) -> SearchResult`."""

  name: str
  lang: str
  config: SearchConfig
  solve: object
  blank_current: bool = False


def build(
  method: str,
  lang: str | None = None,
  checkpoint: str | None = None,
  value_checkpoint: str | None = None,
  max_nodes: int | None = None,
  mesh=None,
  **overrides,
) -> Method:
  """Builds a method's solver.

  Args:
    method: one of METHODS.
    lang: language (needed for hill_climb; must match the checkpoint).
    checkpoint: policy training workdir (tree diffusion methods).
    value_checkpoint: value training workdir (tree_diffusion_search).
    max_nodes: node budget per target.
    mesh: optional ("data",) mesh.
    overrides: SearchConfig fields (beam, k, max_steps, ...).

  Raises:
    ValueError: unknown method, missing or mismatched checkpoint.
    NotImplementedError: a baseline not built yet.
    checkpointing.CheckpointNotFoundError: no checkpoint at the path.
  """
  from treediff_jax import loading  # pylint: disable=g-import-not-at-top

  if method not in METHODS:
    raise ValueError(
      f"unknown method {method!r}; choose one of {', '.join(METHODS)}"
    )
  if method == "repl_flow":
    raise NotImplementedError(
      "the repl_flow baseline needs its own trainer (primitive by primitive, "
      "seeing partial renders), which is not written yet; evaluate "
      "tree_diffusion, tree_diffusion_search, ar or hill_climb"
    )
  config = DEFAULTS[method]
  fields = dict(overrides)
  if max_nodes is not None:
    fields["max_nodes"] = max_nodes
  policy = value = None
  blank = False
  if method == "hill_climb":
    if lang is None:
      raise ValueError("hill_climb needs a language (--lang)")
    lang = get_language(lang).name
  else:
    if not checkpoint:
      raise ValueError(f"{method} needs --checkpoint (a policy workdir)")
    policy, pconfig = loading.load_policy(checkpoint)
    if lang is not None and get_language(lang).name != pconfig.lang:
      raise ValueError(
        f"{checkpoint} holds a {pconfig.lang} policy, not {lang}"
      )
    lang = pconfig.lang
    blank = bool(pconfig.input.blank_current)
    whole = pconfig.input.label_mode == "whole_program"
    if whole and not blank:
      raise ValueError(
        f"{checkpoint}: an autoregressive policy must be trained with "
        "input.blank_current=True (the sampler shows it a blank image)"
      )
    if whole != (method == "ar"):
      raise ValueError(
        f"{checkpoint} holds a policy trained with label_mode="
        f"{pconfig.input.label_mode!r}; {method} needs "
        + ("'whole_program'" if method == "ar" else "an edit policy")
      )
    if method == "tree_diffusion_search":
      if value_checkpoint:
        value, vconfig = loading.load_value(value_checkpoint)
        if vconfig.lang != lang:
          raise ValueError(
            f"{value_checkpoint} holds a {vconfig.lang} value model, not {lang}"
          )
      else:
        fields.setdefault("rank", "log_prob")
  config = dataclasses.replace(config, **fields)
  solve = make_solver(
    lang,
    config,
    method if method in ("hill_climb", "ar") else "tree_diffusion",
    policy,
    value,
    blank_current=blank,
    mesh=mesh,
  )
  return Method(method, lang, config, solve, blank)
