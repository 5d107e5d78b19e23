"""The policy trainer: cross-entropy on edit tokens, one-step goal rate."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from data_gen.worker import ExampleConfig, make_batch
from treediff_jax.dsl.languages import get_language
from treediff_jax.dsl.tokenizer import SOS, Tokenizer
from treediff_jax.models.policy import PolicyModel
from treediff_jax.render import batch as batch_lib
from treediff_jax.render import goal as goal_lib
from treediff_jax.render import render as render_tokens
from treediff_jax.trainers import common
from treediff_jax.trainers.common import ConfigError, check_config  # noqa: F401


def loss_and_metrics(model, batch, config):
  """Cross-entropy on the edit tokens only.

  Args:
    batch: tokens and loss_mask [B, S]; target_image, current_image
      [B, H, W, C]; target_nonempty [B] (examples with an empty target
      render get no weight).

  Returns:
    (loss, dict of scalar metrics: loss, position accuracy, exact edit).
  """
  tokens = batch["tokens"]
  current = batch["current_image"]
  if config.input.blank_current:
    current = jnp.zeros_like(current)
  logits = model(batch["target_image"], current, tokens[:, :-1])
  labels = tokens[:, 1:]
  weight = batch["target_nonempty"].astype(jnp.float32)[:, None]
  mask = batch["loss_mask"][:, 1:] * weight
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  loss = jnp.sum(ce * mask) / jnp.maximum(jnp.sum(mask), 1.0)
  correct = jnp.argmax(logits, -1) == labels
  is_pos = tokens[:, :-1] == SOS  # predicting the <POS p> token
  n = jnp.maximum(jnp.sum(weight), 1.0)
  pos_acc = jnp.sum(jnp.sum(correct & is_pos, -1) * weight[:, 0]) / n
  exact = jnp.all(correct | (mask == 0), axis=-1)
  exact_acc = jnp.sum(exact * weight[:, 0]) / n
  return loss, {
    "loss": loss,
    "position_accuracy": pos_acc,
    "exact_edit_accuracy": exact_acc,
  }


def greedy_edits(model, target, current, prefix, prefix_len, steps: int):
  """Greedy decoding of edits after `prefix` (program + <SOS>).

  Args:
    target, current: [B, H, W, C] images.
    prefix: [B, S] int32, the program and <SOS>, then padding.
    prefix_len: [B] int32 length of the prefix.
    steps: tokens to decode.

  Returns:
    [B, S] int32 sequences with the decoded edit written after the prefix.
  """
  memory = model.encode(target, current)
  rows = jnp.arange(prefix.shape[0])

  def body(i, seq):
    logits = model.decoder(seq, memory)
    pos = jnp.minimum(prefix_len + i, seq.shape[1] - 1)
    nxt = jnp.argmax(logits[rows, pos - 1], -1).astype(jnp.int32)
    return seq.at[rows, pos].set(nxt)

  return jax.lax.fori_loop(0, steps, body, prefix)


class OneStepEvaluator:
  """Can the model undo one mutation? Greedy-decode the edit for a fixed
  validation set of once-mutated targets, apply it, render, goal-check."""

  def __init__(self, config, graphdef, num_examples: int):
    self.lang = get_language(config.lang).name
    self.tok = Tokenizer(get_language(self.lang))
    self.graphdef = graphdef
    ex_cfg = ExampleConfig(lang=self.lang, rho=0.0, max_noise_steps=1)
    batch = make_batch(
      (config.seed, common.VALIDATION_STREAM), range(num_examples), ex_cfg
    )
    tokens = batch["tokens"]
    sos = np.argmax(tokens == SOS, axis=1)
    prefix = np.where(
      np.arange(tokens.shape[1])[None] <= sos[:, None], tokens, 0
    )
    images = batch_lib.add_images_jit(
      {k: jnp.asarray(batch[k]) for k in ("target_tokens", "current_tokens")},
      lang=self.lang,
    )
    self.target_image = images["target_image"]
    current = images["current_image"]
    if config.input.blank_current:
      current = jnp.zeros_like(current)
    self.current_image = current
    self.prefix, self.prefix_len = jnp.asarray(prefix), jnp.asarray(sos + 1)
    self.steps = get_language(self.lang).max_edit_len - 1

    @jax.jit
    def decode(state):
      model, _ = nnx.merge(graphdef, state)
      return greedy_edits(
        model,
        self.target_image,
        self.current_image,
        self.prefix,
        self.prefix_len,
        self.steps,
      )

    self._decode = decode

  def run(self, state) -> dict:
    """{'one_step_goal_rate': share of the set solved by one greedy edit}."""
    seqs = np.asarray(self._decode(state))
    programs = []
    for row in seqs:
      try:
        split = self.tok.split_edit_sequence(row)
        programs.append(
          self.tok.apply_edit(split.program, split.position, split.replacement)
        )
      except ValueError:  # includes ProgramSyntaxError
        programs.append(None)
    ok = [p for p in programs if p is not None]
    solved = np.zeros(len(programs), bool)
    if ok:
      tokens = np.zeros((len(ok), max(p.ntok for p in ok)), np.int32)
      for i, p in enumerate(ok):
        ids = self.tok.encode(p)
        tokens[i, : len(ids)] = ids
      images = render_tokens(self.lang, jnp.asarray(tokens))
      idx = [i for i, p in enumerate(programs) if p is not None]
      reached = goal_lib.goal_reached(
        self.lang, images, self.target_image[np.asarray(idx)]
      )
      solved[idx] = np.asarray(reached)
    return {
      "one_step_goal_rate": float(solved.mean()),
      "valid_edit_rate": len(ok) / len(programs),
    }


def _model_cls(config):
  return functools.partial(PolicyModel, max_len=config.model.get("max_len", 0))


def init_state(config, mesh):
  """(graphdef, replicated state) of the policy and its optimizer."""
  return common.init_state(config, mesh, _model_cls(config))


def make_train_step(config, graphdef, mesh):
  """The jitted policy step: (state, batch) -> (state, metrics)."""
  return common.make_train_step(config, graphdef, mesh, loss_and_metrics)


example_config = common.example_config


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains the policy of `config`; see `common.train_and_evaluate`."""
  return common.train_and_evaluate(
    config,
    workdir,
    _model_cls(config),
    loss_and_metrics,
    lambda c, g: OneStepEvaluator(c, g, c.evals.num_examples),
  )
