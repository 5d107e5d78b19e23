"""Loading trained models for evaluation, without training code.

  model, config = load_policy("csg2d")          # the shipped CSG2D policy
  model, config = load_policy("csg2d/ar")       # a shipped baseline
  model, config = load_policy("/tmp/td_tiny")   # a training workdir
  model, config = load_value("/tmp/export")     # an exported model folder
  logits = model(target, current, tokens)

Three sources, tried in this order: an exported model folder
(`exported`: model.json and params.npz), a training workdir (its
`config.json` and latest orbax checkpoint), the name of weights shipped in
`treediff_jax/weights/` (`shipped_names()`). The config returned is the
training ConfigDict; the model's `config` (a `models.ModelConfig`) carries
what the run trained with, blank_current included: the model blanks the
current image itself.
"""

from __future__ import annotations

import json
import os

import ml_collections
from flax import nnx

from treediff_jax import checkpointing, exported, sharding

WEIGHTS_DIR = os.path.join(
  os.path.dirname(os.path.abspath(__file__)), "weights"
)


def shipped_names() -> list[str]:
  """Names of the shipped models: `LANG` (its policy and value model) and
  `LANG/BASELINE` (e.g. csg2d/ar, csg2d/repl_flow)."""
  names = []
  if not os.path.isdir(WEIGHTS_DIR):
    return names
  for lang in sorted(os.listdir(WEIGHTS_DIR)):
    for sub in sorted(os.listdir(os.path.join(WEIGHTS_DIR, lang))):
      if exported.is_export(os.path.join(WEIGHTS_DIR, lang, sub)):
        names.append(lang if sub in ("policy", "value") else f"{lang}/{sub}")
  return sorted(set(names))


def shipped_folder(name: str, kind: str) -> str:
  """The folder of shipped weights `name` ("csg2d", "csg2d/ar") of `kind`.

  Raises:
    checkpointing.CheckpointNotFoundError: none shipped (the message lists
      what is).
  """
  from treediff_jax.dsl.languages import get_language

  lang, _, sub = name.partition("/")
  try:
    lang = get_language(lang).name
  except ValueError:
    pass
  folder = os.path.join(WEIGHTS_DIR, lang, sub or kind)
  if not exported.is_export(folder):
    shipped = ", ".join(shipped_names()) or "none"
    raise checkpointing.CheckpointNotFoundError(
      f"no shipped {kind} weights called {name!r} (shipped: {shipped}); "
      "pass a training workdir or an exported model folder"
    )
  return folder


def _load(path: str, kind: str):
  if os.path.isdir(path) and exported.is_export(path):
    return exported.load(path, kind)
  if not os.path.exists(path) and not os.path.isabs(path):
    return exported.load(shipped_folder(path, kind), kind)
  workdir = os.path.abspath(path)
  if os.path.basename(workdir) == "checkpoints":
    workdir = os.path.dirname(workdir)
  config_path = os.path.join(workdir, "config.json")
  if not os.path.isfile(config_path):
    raise checkpointing.CheckpointNotFoundError(
      f"{path} is not a training workdir: no config.json in {workdir}"
    )
  with open(config_path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  if config.kind != kind:
    raise ValueError(f"{path} holds a {config.kind} model, not a {kind}")
  from treediff_jax.trainers import policy, value

  trainer = policy if kind == "policy" else value
  mesh = sharding.make_mesh()
  graphdef, state = trainer.init_state(config, mesh)
  state, _ = checkpointing.restore_path(workdir, state)
  model, _ = nnx.merge(graphdef, state)
  return model, config


def load_policy(path: str):
  """(PolicyModel, training ConfigDict) from an exported model folder, a
  policy training workdir (or its checkpoints folder) or the name of
  shipped weights ("csg2d", "csg2d/ar", "csg2d/repl_flow").

  Raises:
    checkpointing.CheckpointNotFoundError: no config, checkpoint or
      shipped weights there.
    ValueError: the source holds a value model (exported.ExportError for
      an exported folder that cannot be read).
  """
  return _load(path, "policy")


def load_value(path: str):
  """(ValueModel, config) from an exported model folder, a value training
  workdir or the name of shipped weights ("csg2d"). Raises as
  `load_policy`."""
  return _load(path, "value")
