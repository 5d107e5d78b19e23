"""Solvers of the registered methods (`search.registry`) built from
checkpoints: what `launch.solve` and `launch.evaluate` run."""

from __future__ import annotations

import dataclasses

from treediff_jax import checkpointing, loading
from treediff_jax.dsl.languages import get_language
from treediff_jax.search import ranking as ranking_lib
from treediff_jax.search import registry
from treediff_jax.search.beam import SearchConfig
from treediff_jax.search.solver import make_solver


@dataclasses.dataclass
class Solver:
  """A ready solver: `solve(targets, starts=None, key=0) -> SearchResult`."""

  name: str
  lang: str
  config: SearchConfig
  solve: object


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


# Where a method's shipped policy lives, by its label mode.
SHIPPED_POLICY = {
  "path": "{lang}",
  "whole_program": "{lang}/ar",
  "repl": "{lang}/repl_flow",
}


def shipped_policy(lang: str, label_mode: str) -> str:
  """The name of the shipped policy a method with `label_mode` uses
  ("csg2d", "csg2d/ar", ...)."""
  return SHIPPED_POLICY[label_mode].format(lang=get_language(lang).name)


def shipped_value(lang: str) -> str | None:
  """The name of the shipped value model of `lang`, or None."""
  name = get_language(lang).name
  try:
    loading.shipped_folder(name, "value")
  except checkpointing.CheckpointNotFoundError:
    return None
  return name


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
) -> Solver:
  """Builds a registered method's solver from checkpoints.

  Args:
    method: a registered method name (`registry.names()`).
    lang: language (needed without a policy; must match the checkpoint).
    checkpoint: policy training workdir, exported model folder or shipped
      name (methods with a policy); None: the weights shipped for `lang`.
    value_checkpoint: value training workdir, exported folder or shipped
      name (methods that take one); without it (and none shipped), a value
      ranking falls back to `log_prob`.
    max_nodes: node budget per target.
    mesh: optional ("data",) mesh.
    start_checkpoint: autoregressive policy workdir (methods with
      `ar_starts`): start the search from the best of `start_samples`
      whole programs it samples per target, each counted as a node; the
      method is then named METHOD_from_ar.
    overrides: SearchConfig fields (beam, k, max_steps, rank, ...).

  Raises:
    ValueError: unknown method, missing or mismatched checkpoint.
    checkpointing.CheckpointNotFoundError: no checkpoint at the path.
  """
  spec = registry.get(method)
  if start_checkpoint and not spec.ar_starts:
    raise ValueError(
      "--start_checkpoint (autoregressive starts) is for the tree diffusion "
      f"methods, not {method}"
    )
  fields = dict(overrides)
  if max_nodes is not None:
    fields["max_nodes"] = max_nodes
  policy = value = None
  extra = {}
  if spec.label_mode is None:
    if lang is None:
      raise ValueError(f"{method} needs a language (--lang)")
    lang = get_language(lang).name
    if checkpoint or value_checkpoint:
      raise ValueError(f"{method} uses no trained model; drop --checkpoint")
  else:
    if not checkpoint:
      if lang is None:
        raise ValueError(
          f"{method} needs --checkpoint (a policy workdir or exported "
          "model) or --lang (the shipped weights of that language)"
        )
      checkpoint = shipped_policy(lang, spec.label_mode)
      rank = fields.get("rank", spec.search.rank)
      if value_checkpoint is None and ranking_lib.get(rank).uses_value:
        value_checkpoint = shipped_value(lang)
    policy, pconfig = loading.load_policy(checkpoint)
    if lang is not None and get_language(lang).name != pconfig.lang:
      raise ValueError(
        f"{checkpoint} holds a {pconfig.lang} policy, not {lang}"
      )
    lang = pconfig.lang
    mode = pconfig.input.label_mode
    _check_autoregressive_input(checkpoint, pconfig)
    # "path" and its ablation "last_mutation" both train edit policies.
    edit_modes = ("path", "last_mutation")
    trained = "path" if mode in edit_modes else mode
    if trained != spec.label_mode:
      need = (
        repr(spec.label_mode)
        if spec.label_mode != "path"
        else ("an edit policy")
      )
      raise ValueError(
        f"{checkpoint} holds a policy trained with label_mode={mode!r}; "
        f"{method} needs {need}"
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
    if spec.label_mode == "repl":
      extra["max_primitives"] = int(pconfig.input.max_primitives)
    if value_checkpoint:
      if not spec.takes_value:
        raise ValueError(f"{method} takes no value model")
      value, vconfig = loading.load_value(value_checkpoint)
      if vconfig.lang != lang:
        raise ValueError(
          f"{value_checkpoint} holds a {vconfig.lang} value model, not {lang}"
        )
  config = dataclasses.replace(spec.search, **fields)
  if value is None and ranking_lib.get(config.rank).uses_value:
    if "rank" in overrides:
      raise ValueError(
        f"--rank={config.rank} needs a value model (--value_checkpoint)"
      )
    config = dataclasses.replace(config, rank="log_prob")
  solve = make_solver(lang, config, spec, policy, value, mesh=mesh, **extra)
  name = f"{method}_from_ar" if start_checkpoint else method
  return Solver(name, lang, config, solve)
