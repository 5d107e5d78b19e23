"""The flags that choose and set up a solver, shared by `launch.solve` and
`launch.evaluate` (each calls `define()`), and building the solver from
them with one-line errors."""

from __future__ import annotations

import types

from absl import flags

from launch import common
from treediff_jax.search import ranking, registry

_DEFINED: types.SimpleNamespace | None = None


def define(default_nodes: int = 2000) -> types.SimpleNamespace:
  """Defines the solver flags once per process; returns their holders."""
  global _DEFINED
  if _DEFINED is not None:
    return _DEFINED
  f = types.SimpleNamespace()
  f.method = flags.DEFINE_enum(
    "method",
    "tree_diffusion_search",
    list(registry.names()),
    "Solving method (treediff_jax/search/registry.py).",
  )
  f.checkpoint = flags.DEFINE_string(
    "checkpoint", None, "Policy training workdir."
  )
  f.value_checkpoint = flags.DEFINE_string(
    "value_checkpoint", None, "Value training workdir (ranks the beam)."
  )
  f.lang = flags.DEFINE_string(
    "lang", None, "Language (methods without a policy; else read from it)."
  )
  f.seed = flags.DEFINE_integer("seed", 0, "Seed of start programs and edits.")
  f.max_nodes = flags.DEFINE_integer(
    "max_nodes", default_nodes, "Node budget per image."
  )
  f.beam = flags.DEFINE_integer("beam", 0, "Beam size (0: the method's).")
  f.k = flags.DEFINE_integer("k", 0, "Edits per beam entry (0: the method's).")
  f.max_steps = flags.DEFINE_integer("max_steps", 0, "Depth (0: the method's).")
  f.rank = flags.DEFINE_enum(
    "rank",
    None,
    list(ranking.RANKINGS),
    "Ranking of the beam (default: the method's; "
    "treediff_jax/search/ranking.py).",
  )
  f.uniform_share = flags.DEFINE_float(
    "uniform_share",
    None,
    "Share of each entry's edits drawn as uniform random mutations "
    "(default: the method's).",
  )
  f.temperature = flags.DEFINE_float(
    "temperature",
    None,
    "Sampling temperature of the learned proposals (default: the method's).",
  )
  f.out = flags.DEFINE_string("out", None, "Output folder.")
  f.overwrite = flags.DEFINE_bool(
    "overwrite",
    False,
    "Replace files in --out that earlier runs did not write (never inputs).",
  )
  f.batch = flags.DEFINE_integer("batch", 8, "Images solved together.")
  f.start_checkpoint = flags.DEFINE_string(
    "start_checkpoint",
    None,
    "Autoregressive policy workdir: tree diffusion starts from its samples.",
  )
  f.start_samples = flags.DEFINE_integer(
    "start_samples", 64, "Autoregressive start samples per image."
  )
  _DEFINED = f
  return f


def search_overrides(f) -> dict:
  """The search settings the flags change from the method's defaults."""
  out = {}
  for name in ("beam", "k", "max_steps"):
    value = getattr(f, name).value
    if value < 0:
      common.exit_with(f"--{name} must be >= 0")
    if value:
      out[name] = value
  if f.rank.value is not None:
    out["rank"] = f.rank.value
  if f.uniform_share.value is not None:
    if not 0.0 <= f.uniform_share.value <= 1.0:
      common.exit_with("--uniform_share must lie in [0, 1]")
    out["uniform_share"] = f.uniform_share.value
  if f.temperature.value is not None:
    if not f.temperature.value > 0:
      common.exit_with("--temperature must be positive")
    out["temperature"] = f.temperature.value
  return out


def check(f) -> None:
  """Exits with one line on a bad number or seed (before any work)."""
  if f.max_nodes.value < 1 or f.batch.value < 1:
    common.exit_with("--max_nodes and --batch must be >= 1")
  if f.start_samples.value < 1:
    common.exit_with("--start_samples must be >= 1")
  common.check_seed(f.seed.value)
  if f.lang.value:
    common.language_or_exit(f.lang.value)
  search_overrides(f)
  for flag in ("checkpoint", "value_checkpoint", "start_checkpoint"):
    _check_model_config(flag, getattr(f, flag).value)


def _check_model_config(flag: str, path: str | None) -> None:
  """Exits naming the file if a workdir's config.json (or an exported
  model's model.json) under --FLAG is not a readable JSON object."""
  import json
  import os

  if not path or not os.path.isdir(path):
    return
  root = os.path.abspath(path)
  if os.path.basename(root) == "checkpoints":
    root = os.path.dirname(root)
  for name in ("config.json", "model.json"):
    file = os.path.join(root, name)
    if not os.path.isfile(file):
      continue
    try:
      with open(file) as fh:
        data = json.load(fh)
    except json.JSONDecodeError as e:
      common.exit_with(
        f"--{flag}: {file} is not valid JSON ({e.msg}: line {e.lineno} "
        f"column {e.colno}; truncated?)"
      )
    except (OSError, UnicodeDecodeError) as e:
      common.exit_with(f"--{flag}: cannot read {file}: {e}")
    if not isinstance(data, dict):
      common.exit_with(f"--{flag}: {file} is not a JSON object")


def build_solver_or_exit(f, max_nodes: int):
  """`search.methods.build` from the flags; exits with a one-line message
  on a bad method, language, setting or checkpoint."""
  from treediff_jax import checkpointing
  from treediff_jax.search import methods

  try:
    return methods.build(
      f.method.value,
      lang=f.lang.value,
      checkpoint=f.checkpoint.value,
      value_checkpoint=f.value_checkpoint.value,
      max_nodes=max_nodes,
      start_checkpoint=f.start_checkpoint.value,
      start_samples=f.start_samples.value,
      **search_overrides(f),
    )
  except (ValueError, NotImplementedError) as e:
    common.exit_with(str(e))
  except checkpointing.CheckpointNotFoundError as e:
    common.exit_with(f"no checkpoint: {e}")
  except checkpointing.CheckpointRestoreError as e:
    common.exit_with(str(e))
