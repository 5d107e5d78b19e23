"""Loading trained models for evaluation, without training code.

  model, config = load_policy("/tmp/td_tiny")   # a training workdir
  logits = model(target, current, tokens)

A training run writes its config to `<workdir>/config.json`; the loaders
rebuild the model from it (`model_configs.from_training_config`) and
restore the latest checkpoint's parameters. The model's `config` (a
`models.ModelConfig`) carries what the run trained with, blank_current
included: the model blanks the current image itself.
"""

from __future__ import annotations

import json
import os

import ml_collections
from flax import nnx

from treediff_jax import checkpointing, sharding


def _load(path: str, kind: str):
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
  """(PolicyModel, training ConfigDict) from a policy training workdir (or
  its checkpoints folder).

  Raises:
    checkpointing.CheckpointNotFoundError: no config or checkpoint there.
    ValueError: the workdir holds a value model.
  """
  return _load(path, "policy")


def load_value(path: str):
  """(ValueModel, config) from a value training workdir. Raises as
  `load_policy`."""
  return _load(path, "value")
