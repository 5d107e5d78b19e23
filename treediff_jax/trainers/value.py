"""The value trainer: regress the reverse-path steps left from the images."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from treediff_jax.models import ValueModel
from treediff_jax.trainers import common


def loss_and_metrics(model, batch, config):
  """Huber loss between predicted and true steps left (examples with an
  empty target render get no weight; the model blanks the current image
  where its config says so)."""
  del config
  pred = model(batch["target_image"], batch["current_image"])
  target = batch["steps_left"].astype(jnp.float32)
  w = batch["target_nonempty"].astype(jnp.float32)
  n = jnp.maximum(jnp.sum(w), 1.0)
  loss = jnp.sum(optax.huber_loss(pred, target) * w) / n
  mae = jnp.sum(jnp.abs(pred - target) * w) / n
  return loss, {"loss": loss, "value_mae": mae}


class ValueEvaluator:
  """Mean absolute error of the predicted steps left on a fixed set."""

  def __init__(self, config, graphdef):
    batch = common.validation_batch(config, config.evals.num_examples)
    target, current = batch["target_image"], batch["current_image"]
    steps = batch["steps_left"].astype(jnp.float32)

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
