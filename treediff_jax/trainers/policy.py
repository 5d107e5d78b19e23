"""Training the policy: data-parallel over a ("data",) mesh, orbax resume.

Resume order: the latest checkpoint in the workdir, then `config.init_from`,
then a fresh start. The data stream is a pure function of the step, so a
resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from flax import nnx
from jax.sharding import PartitionSpec as P

from data_gen.pool import BatchPool
from data_gen.worker import ExampleConfig, make_batch
from treediff_jax import checkpointing, sharding
from treediff_jax.dsl.languages import get_language
from treediff_jax.dsl.tokenizer import SOS, Tokenizer
from treediff_jax.models.policy import PolicyModel
from treediff_jax.render import batch as batch_lib
from treediff_jax.render import goal as goal_lib
from treediff_jax.render import render as render_tokens

# Training streams are seeded (seed, process index); validation uses its own.
VALIDATION_STREAM = 1 << 30


class ConfigError(ValueError):
  """A config value that cannot work, named."""


def check_config(config) -> None:
  """Raises ConfigError naming the first unusable field."""
  try:
    get_language(config.lang)
  except ValueError as e:
    raise ConfigError(f"config.lang: {e}") from None
  if config.input.batch_size < 1:
    raise ConfigError("config.input.batch_size must be >= 1")
  n = jax.device_count()
  if config.input.batch_size % n:
    raise ConfigError(
      f"config.input.batch_size={config.input.batch_size} "
      f"is not divisible by the {n} devices"
    )
  if config.input.sketch and get_language(config.lang).name != "csg2d":
    raise ConfigError("config.input.sketch needs lang csg2d")
  if config.input.label_mode == "last_mutation" and config.input.rho != 0:
    raise ConfigError(
      "config.input.label_mode='last_mutation' needs config.input.rho=0"
    )
  if config.total_steps < 1:
    raise ConfigError("config.total_steps must be >= 1")
  if config.model.dtype not in ("float32", "bfloat16"):
    raise ConfigError("config.model.dtype must be float32 or bfloat16")


def example_config(config) -> ExampleConfig:
  i = config.input
  return ExampleConfig(
    lang=get_language(config.lang).name,
    rho=i.rho,
    min_primitives=i.min_primitives,
    max_primitives=i.max_primitives,
    max_noise_steps=i.max_noise_steps,
    label_mode=i.label_mode,
  )


def make_optimizer(config) -> optax.GradientTransformation:
  o = config.optim
  schedule = optax.warmup_cosine_decay_schedule(
    0.0,
    o.lr,
    max(1, min(o.warmup_steps, config.total_steps - 1)),
    max(config.total_steps, 2),
  )
  return optax.chain(
    optax.clip_by_global_norm(o.clip_norm),
    optax.adamw(schedule, weight_decay=o.weight_decay),
  )


def init_state(config, mesh):
  """(graphdef, replicated state) of the model and its optimizer."""
  dtype = jnp.bfloat16 if config.model.dtype == "bfloat16" else jnp.float32
  model = PolicyModel(
    config.lang, config.model.size, dtype=dtype, rngs=nnx.Rngs(config.seed)
  )
  optimizer = nnx.Optimizer(model, make_optimizer(config), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  return graphdef, jax.device_put(state, sharding.replicated(mesh))


def loss_and_metrics(model, batch, blank_current: bool):
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
  if blank_current:
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


def _render_fn(mesh, lang: str, sketch: bool):
  """Batch -> batch with images, each device rendering its own shard."""

  def fn(batch, key):
    if mesh.size > 1:
      key = jax.random.fold_in(key, jax.lax.axis_index("data"))
    return batch_lib.add_images(batch, lang, key, sketch)

  if mesh.size == 1:
    return fn
  return jax.shard_map(
    fn, mesh=mesh, in_specs=(P("data"), P()), out_specs=P("data")
  )


def make_train_step(config, graphdef, mesh):
  """The jitted step: (state, batch) -> (state, metrics)."""
  lang = get_language(config.lang).name
  render_images = _render_fn(mesh, lang, config.input.sketch)
  base_key = jax.random.key(config.seed)

  def step(state, batch):
    model, optimizer = nnx.merge(graphdef, state)
    key = jax.random.fold_in(base_key, optimizer.step.value)
    batch = render_images(batch, key)
    grad_fn = nnx.value_and_grad(
      functools.partial(
        loss_and_metrics, batch=batch, blank_current=config.input.blank_current
      ),
      has_aux=True,
    )
    (_, metrics), grads = grad_fn(model)
    optimizer.update(model, grads)
    return nnx.state((model, optimizer)), metrics

  return jax.jit(
    step,
    in_shardings=(sharding.replicated(mesh), sharding.batch_sharded(mesh)),
    out_shardings=(sharding.replicated(mesh), sharding.replicated(mesh)),
    donate_argnums=(0,),
  )


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
      (config.seed, VALIDATION_STREAM), range(num_examples), ex_cfg
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


def _restore_or_init(config, workdir, graphdef, state, manager):
  """Resume order: workdir checkpoint, then config.init_from, then fresh."""
  if manager.latest_step() is not None:
    state, data = checkpointing.restore(manager, state)
    logging.info("resumed from %s at step %d", manager.directory, data["step"])
    return state, int(data["step"])
  if config.init_from:
    state, _ = checkpointing.restore_path(config.init_from, state)
    logging.info("initialised from %s", config.init_from)
  return state, 0


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains the policy described by `config`, writing to `workdir`.

  Returns:
    The last logged metrics (a dict of floats).

  Raises:
    ConfigError: an unusable config value.
    data_gen.pool.WorkerError: a data worker failed.
    FloatingPointError: a non-finite loss.
  """
  check_config(config)
  os.makedirs(workdir, exist_ok=True)
  mesh = sharding.make_mesh()
  graphdef, state = init_state(config, mesh)
  manager = checkpointing.make_manager(
    workdir, config.ckpt.every, config.ckpt.keep, config.ckpt.async_save
  )
  state, start = _restore_or_init(config, workdir, graphdef, state, manager)
  train_step = make_train_step(config, graphdef, mesh)
  evaluator = None
  if config.evals.every > 0:
    evaluator = OneStepEvaluator(config, graphdef, config.evals.num_examples)
  local_batch = config.input.batch_size // jax.process_count()
  metrics_path = os.path.join(workdir, "metrics.jsonl")
  last: dict = {}
  pool = BatchPool(
    example_config(config),
    config.seed,
    local_batch,
    start_step=start,
    num_workers=config.input.num_workers,
    queue_size=config.input.queue_size,
    process_index=jax.process_index(),
  )
  try:
    with open(metrics_path, "a") as log_file:
      if evaluator is not None and start == 0:
        last = {"step": 0, **evaluator.run(state)}
        _log(log_file, last)
      t0, waited, seen = time.perf_counter(), 0.0, 0
      for step in range(start, config.total_steps):
        tw = time.perf_counter()
        local = next(pool)
        waited += time.perf_counter() - tw
        batch = sharding.global_batch(mesh, local)
        state, metrics = train_step(state, batch)
        seen += 1
        done = step + 1
        if done % config.log_every == 0 or done == config.total_steps:
          m = {k: float(v) for k, v in jax.device_get(metrics).items()}
          if not all(math.isfinite(v) for v in m.values()):
            raise FloatingPointError(f"non-finite metrics at step {done}: {m}")
          dt = time.perf_counter() - t0
          m.update(
            step=done,
            examples_per_s=seen * config.input.batch_size / dt,
            data_wait_fraction=waited / dt,
            queue_fill=pool.fill(),
          )
          if evaluator is not None and (
            done % config.evals.every == 0 or done == config.total_steps
          ):
            m.update(evaluator.run(state))
          _log(log_file, m)
          last = m
          t0, waited, seen = time.perf_counter(), 0.0, 0
        checkpointing.save(
          manager, done, state, {"step": done}, force=done == config.total_steps
        )
  finally:
    pool.close()
    manager.wait_until_finished()
    manager.close()
  return last


def _log(log_file, m: dict):
  log_file.write(json.dumps(m) + "\n")
  log_file.flush()
  parts = [f"step {m['step']}"]
  for key, fmt in (
    ("examples_per_s", "{:.1f} ex/s"),
    ("loss", "loss {:.4f}"),
    ("position_accuracy", "pos acc {:.3f}"),
    ("exact_edit_accuracy", "exact {:.3f}"),
    ("one_step_goal_rate", "one-step goal {:.3f}"),
    ("queue_fill", "queue {:.0%}"),
  ):
    if key in m:
      parts.append(fmt.format(m[key]))
  print(" | ".join(parts), flush=True)
