"""The policy trainer: cross-entropy on edit tokens, one-step goal rate."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from treediff_jax import render as render_lib
from treediff_jax.dsl.languages import get_language
from treediff_jax.dsl.tokenizer import SOS, Tokenizer
from treediff_jax.models import PolicyModel
from treediff_jax.render import goal as goal_lib
from treediff_jax.trainers import common
from treediff_jax.trainers.common import ConfigError, check_config  # noqa: F401


def loss_and_metrics(model, batch, config):
  """Cross-entropy on the edit tokens only.

  Args:
    batch: tokens and loss_mask [B, S]; target_image, current_image
      [B, H, W, C] (the model blanks the current image where its config
      says so); target_nonempty [B] (examples with an empty target render
      get no weight).

  Returns:
    (loss, dict of scalar metrics: loss, position accuracy, exact edit).
  """
  del config
  tokens = batch["tokens"]
  logits = model(batch["target_image"], batch["current_image"], tokens[:, :-1])
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
  validation set of once-mutated targets, apply it, render, goal-check
  against the clean target render.

  For the autoregressive baseline (label_mode "whole_program") the rate is
  that of greedily decoded programs that meet their target; for REPL Flow
  ("repl"), that of greedy steps whose program renders as the target's
  program one primitive further.

  Edit policies also report `already_solved_share`, the share of examples
  whose mutated program already meets the goal (a mutation the render does
  not show), and `one_step_fix_rate`, the rate among the other examples:
  the one that says whether the edit repairs anything.
  """

  def __init__(self, config, graphdef, num_examples: int):
    self.lang = get_language(config.lang).name
    self.tok = Tokenizer(get_language(self.lang))
    self.mode = config.input.label_mode
    # Edit policies are scored on once-mutated examples; the baselines
    # build whole programs from their own stream.
    edits_policy = self.mode not in ("whole_program", "repl")
    if not edits_policy:
      batch = common.validation_batch(config, num_examples)
    else:
      batch = common.validation_batch(
        config, num_examples, rho=0.0, max_noise_steps=1, label_mode="path"
      )
    tokens = np.asarray(batch["tokens"])
    sos = np.argmax(tokens == SOS, axis=1)
    prefix = np.where(
      np.arange(tokens.shape[1])[None] <= sos[:, None], tokens, 0
    )
    self._render = render_lib.renderer(self.lang)
    self.clean_target = batch["clean_target_image"]
    if self.mode == "repl":
      nxt = [self._program(row) for row in tokens]
      self.clean_target = self._render(
        jnp.asarray(render_lib.pad_tokens(self.lang, nxt))
      )
    target, current = batch["target_image"], batch["current_image"]
    self._goal = jax.jit(functools.partial(goal_lib.goal_reached, self.lang))
    # Examples whose current program already meets the goal.
    self.already = None
    if edits_policy:
      self.already = np.asarray(self._goal(current, self.clean_target))
    prefix, prefix_len = jnp.asarray(prefix), jnp.asarray(sos + 1)
    steps = get_language(self.lang).max_edit_len - 1
    if self.mode == "whole_program":
      steps = tokens.shape[1] - 1

    @jax.jit
    def decode(state):
      model, _ = nnx.merge(graphdef, state)
      return greedy_edits(model, target, current, prefix, prefix_len, steps)

    self._decode = decode

  def run(self, state) -> dict:
    """Share of the set solved by one greedy edit, and of valid edits."""
    seqs = np.asarray(self._decode(state))
    programs = []
    for row in seqs:
      try:
        programs.append(self._program(row))
      except ValueError:  # includes ProgramSyntaxError
        programs.append(None)
    idx = [i for i, p in enumerate(programs) if p is not None]
    solved = np.zeros(len(programs), bool)
    if idx:
      tokens = render_lib.pad_tokens(self.lang, [programs[i] for i in idx])
      images = self._render(jnp.asarray(tokens))
      solved[idx] = np.asarray(
        self._goal(images, self.clean_target[np.asarray(idx)])
      )
    out = {
      "one_step_goal_rate": float(solved.mean()),
      "valid_edit_rate": len(idx) / max(len(programs), 1),
    }
    if self.already is not None:
      out["already_solved_share"] = float(self.already.mean())
      rest = ~self.already
      out["one_step_fix_rate"] = (
        float(solved[rest].mean()) if rest.any() else float("nan")
      )
    return out

  def _program(self, sequence):
    """The program an edit sequence leads to (ValueError if none)."""
    split = self.tok.split_edit_sequence(sequence)
    if self.mode == "whole_program":
      return self.tok.decode(split.replacement)
    if self.mode == "repl":
      return self.tok.apply_repl_action(split.program, split.replacement)
    return self.tok.apply_edit(split.program, split.position, split.replacement)


def init_state(config, mesh):
  """(graphdef, replicated state) of the policy and its optimizer."""
  return common.init_state(config, mesh, PolicyModel)


def make_train_step(config, graphdef, mesh):
  """The jitted policy step: (state, batch) -> (state, metrics)."""
  return common.make_train_step(config, graphdef, mesh, loss_and_metrics)


example_config = common.example_config


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains the policy of `config`; see `common.train_and_evaluate`."""
  return common.train_and_evaluate(
    config,
    workdir,
    PolicyModel,
    loss_and_metrics,
    lambda c, g: OneStepEvaluator(c, g, c.evals.num_examples),
  )
