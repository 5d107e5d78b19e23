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
  repl_flow               REPL Flow (CSG2D): programs grown one primitive
                          at a time, seeing the partial render, from a
                          policy trained with label_mode "repl"
                          (configs/repl_flow_tiny.py); beam 64, k 3,
                          ranked by summed step log-probability, entries
                          that reach the training size limit start over.
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
  "repl_flow": SearchConfig(beam=64, k=3, max_steps=200, rank="log_prob"),
}

# The label mode each learned method's policy is trained with.
LABEL_MODE = {"ar": "whole_program", "repl_flow": "repl"}


@dataclasses.dataclass
class Method:
  """A ready solver: `solve(targets, starts=None, key=0) -> SearchResult`."""

  name: str
  lang: str
  config: SearchConfig
  solve: object
  blank_current: bool = False


def _check_autoregressive_input(path: str, pconfig) -> None:
  """Raises ValueError unless a whole-program policy was trained on the
  blank current image its sampler shows it."""
  if (
    pconfig.input.label_mode == "whole_program"
    and not pconfig.input.blank_current
  ):
    raise ValueError(
      f"{path}: an autoregressive policy must be trained with "
      "input.blank_current=True (the sampler shows it a blank image)"
    )


def build(
  method: str,
  lang: str | None = None,
  checkpoint: str | None = None,
  value_checkpoint: str | None = None,
  max_nodes: int | None = None,
  mesh=None,
  start_checkpoint: str | None = None,
  start_samples: int = 64,
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
    start_checkpoint: autoregressive policy workdir (tree diffusion
      methods): start the search from the best of `start_samples` whole
      programs it samples per target, each counted as a node; the method is
      then named METHOD_from_ar.
    overrides: SearchConfig fields (beam, k, max_steps, ...).

  Raises:
    ValueError: unknown method, missing or mismatched checkpoint.
    checkpointing.CheckpointNotFoundError: no checkpoint at the path.
  """
  from treediff_jax import loading  # pylint: disable=g-import-not-at-top

  if method not in METHODS:
    raise ValueError(
      f"unknown method {method!r}; choose one of {', '.join(METHODS)}"
    )
  if start_checkpoint and not method.startswith("tree_diffusion"):
    raise ValueError(
      "--start_checkpoint (autoregressive starts) is for the tree diffusion "
      f"methods, not {method}"
    )
  config = DEFAULTS[method]
  fields = dict(overrides)
  if max_nodes is not None:
    fields["max_nodes"] = max_nodes
  policy = value = None
  blank = False
  extra = {}
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
    mode = pconfig.input.label_mode
    _check_autoregressive_input(checkpoint, pconfig)
    need = LABEL_MODE.get(method)
    if (mode if mode in LABEL_MODE.values() else None) != need:
      raise ValueError(
        f"{checkpoint} holds a policy trained with label_mode={mode!r}; "
        f"{method} needs " + (repr(need) if need else "an edit policy")
      )
    if start_checkpoint:
      ar, ar_config = loading.load_policy(start_checkpoint)
      if ar_config.input.label_mode != "whole_program":
        raise ValueError(
          f"{start_checkpoint} holds a policy trained with label_mode="
          f"{ar_config.input.label_mode!r}; autoregressive starts need "
          "'whole_program'"
        )
      _check_autoregressive_input(start_checkpoint, ar_config)
      if get_language(ar_config.lang).name != lang:
        raise ValueError(
          f"{start_checkpoint} holds a {ar_config.lang} policy, not {lang}"
        )
      extra.update(start_policy=ar, start_samples=start_samples)
    if method == "repl_flow":
      if value_checkpoint:
        raise ValueError(
          "repl_flow ranks by step log-probability; it takes no value model"
        )
      extra["max_primitives"] = int(pconfig.input.max_primitives)
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
    method if method in ("hill_climb", "ar", "repl_flow") else "tree_diffusion",
    policy,
    value,
    blank_current=blank,
    mesh=mesh,
    **extra,
  )
  name = f"{method}_from_ar" if start_checkpoint else method
  return Method(name, lang, config, solve, blank)
