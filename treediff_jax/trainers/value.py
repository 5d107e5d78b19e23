"""The value trainer: regress the reverse-path steps left from the images."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from data_gen.worker import make_batch
from treediff_jax.models.policy import ValueModel
from treediff_jax.render import batch as batch_lib
from treediff_jax.trainers import common


def loss_and_metrics(model, batch, config):
  """Huber loss between predicted and true steps left (examples with an
  empty target render get no weight)."""
  current = batch["current_image"]
  if config.input.blank_current:
    current = jnp.zeros_like(current)
  pred = model(batch["target_image"], current)  # [B]
  target = batch["steps_left"].astype(jnp.float32)
  w = batch["target_nonempty"].astype(jnp.float32)
  n = jnp.maximum(jnp.sum(w), 1.0)
  loss = jnp.sum(optax.huber_loss(pred, target) * w) / n
  mae = jnp.sum(jnp.abs(pred - target) * w) / n
  return loss, {"loss": loss, "value_mae": mae}


class ValueEvaluator:
  """Mean absolute error of the predicted steps left on a fixed set."""

  def __init__(self, config, graphdef):
    ex_cfg = common.example_config(config)
    batch = make_batch(
      (config.seed, common.VALIDATION_STREAM),
      range(config.evals.num_examples),
      ex_cfg,
    )
    images = batch_lib.add_images_jit(
      {k: jnp.asarray(batch[k]) for k in ("target_tokens", "current_tokens")},
      lang=ex_cfg.lang,
    )
    current = images["current_image"]
    if config.input.blank_current:
      current = jnp.zeros_like(current)
    target = images["target_image"]
    steps = jnp.asarray(batch["steps_left"], jnp.float32)

    @jax.jit
    def mae(state):
      model, _ = nnx.merge(graphdef, state)
      return jnp.mean(jnp.abs(model(target, current) - steps))

    self._mae = mae

  def run(self, state) -> dict:
    return {"val_value_mae": float(np.asarray(self._mae(state)))}


def init_state(config, mesh):
  """(graphdef, replicated state) of the value model and its optimizer."""
  return common.init_state(config, mesh, ValueModel)


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains the value model of `config`; see `common.train_and_evaluate`."""
  return common.train_and_evaluate(
    config, workdir, ValueModel, loss_and_metrics, ValueEvaluator
  )
