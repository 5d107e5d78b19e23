"""The training loop shared by the policy and the value trainers.

Data-parallel over a ("data",) mesh: one global batch sharded over the
devices, parameters replicated, the gradient all-reduce added by the
compiler. Resume order: the newest checkpoint in the workdir that restores
(a newer one that does not is named and moved aside), then
`config.init_from`, then a fresh start. The data stream is a pure function
of the step, so a resumed run sees exactly the batches an uninterrupted one
would. The workdir is guarded (`treediff_jax.workdir`): one trainer at a
time, and a resumed run must describe the same model as the workdir's
config.json, checked before anything is written.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import sys
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import PartitionSpec as P

from data_gen import lengths as lengths_lib
from data_gen.pool import BatchPool, check_pool_settings
from data_gen.worker import ExampleConfig, make_batch
from treediff_jax import checkpointing, exported, files, model_configs, sharding
from treediff_jax import workdir as workdir_lib
from treediff_jax.dsl.languages import get_language
from treediff_jax.render import batch as batch_lib

# Training streams are seeded (seed, process index); validation uses its own.
VALIDATION_STREAM = 1 << 30
SKETCH_STREAM = (1 << 30) + 1


class ConfigError(ValueError):
  """A config value that cannot work, named."""


def check_config(config) -> None:
  """Raises ConfigError naming the first unusable field.

  The trainer's own rules are here. `config.input`'s example settings are
  checked by ExampleConfig and its pool settings by check_pool_settings
  (data_gen), both before any worker starts; their errors start with the
  setting's name and are raised here as `config.input.<name> ...`.
  """
  try:
    lang = get_language(config.lang).name
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
  if config.input.sketch and lang != "csg2d":
    raise ConfigError("config.input.sketch needs lang csg2d")
  try:
    example_config(config)
    check_pool_settings(
      config.input.num_workers,
      config.input.sort_chunk,
      config.input.length_bucket,
    )
  except ValueError as e:
    raise ConfigError(f"config.input.{e}") from None
  if config.total_steps < 1:
    raise ConfigError("config.total_steps must be >= 1")
  if config.log_every < 1:
    raise ConfigError("config.log_every must be >= 1")
  if config.ckpt.every < 1 or config.ckpt.keep < 1:
    raise ConfigError("config.ckpt.every and config.ckpt.keep must be >= 1")
  if config.evals.every < 0:
    raise ConfigError("config.evals.every must be >= 0 (0: no evaluation)")
  if config.kind not in ("policy", "value"):
    raise ConfigError("config.kind must be policy or value")
  if config.model.dtype not in ("float32", "bfloat16"):
    raise ConfigError("config.model.dtype must be float32 or bfloat16")


def example_config(config) -> ExampleConfig:
  """How `config` draws examples. Raises ValueError for an unusable
  setting (check_config names it)."""
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


def validation_batch(config, num_examples: int, **overrides) -> dict:
  """A fixed validation set rendered as training sees it.

  Examples come from the validation stream with the training settings
  (changed by `overrides`, e.g. rho=0, max_noise_steps=1); targets that
  render almost one colour are dropped, as training gives them no weight.

  Returns:
    The batch with `target_image` (a sketch where training sketches),
    `current_image` and `clean_target_image` (the clean target render, for
    goal checks). A model trained without the current image blanks it
    itself (its ModelConfig).
  """
  ex_cfg = dataclasses.replace(example_config(config), **overrides)
  batch = make_batch(
    (config.seed, VALIDATION_STREAM), range(num_examples), ex_cfg
  )
  arrays = {k: jnp.asarray(v) for k, v in batch.items()}
  key = jax.random.fold_in(jax.random.key(config.seed), VALIDATION_STREAM)
  out = batch_lib.add_images_jit(
    arrays, lang=ex_cfg.lang, key=key, sketch=config.input.sketch
  )
  keep = np.flatnonzero(np.asarray(out["target_nonempty"]))
  return {k: v[keep] for k, v in out.items()}


def init_state(config, mesh, model_cls):
  """(graphdef, replicated state) of a `model_cls` model and its optimizer.

  `model_cls(model_config, rngs=)` (PolicyModel or ValueModel) gets
  `model_configs.from_training_config(config)` and parameters seeded by
  config.seed.
  """
  model = model_cls(
    model_configs.from_training_config(config), rngs=nnx.Rngs(config.seed)
  )
  optimizer = nnx.Optimizer(model, make_optimizer(config), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  return graphdef, jax.device_put(state, sharding.replicated(mesh))


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


def make_train_step(config, graphdef, mesh, loss_fn: Callable):
  """The jitted step: (state, batch) -> (state, metrics).

  `loss_fn(model, batch, config)` returns (loss, dict of scalar metrics);
  the batch it sees has its images rendered (per device shard).
  """
  lang = get_language(config.lang).name
  render_images = _render_fn(mesh, lang, config.input.sketch)
  # Parameter init uses fold_in(key(seed), n); sketches get their own stream.
  base_key = jax.random.fold_in(jax.random.key(config.seed), SKETCH_STREAM)

  def step(state, batch):
    model, optimizer = nnx.merge(graphdef, state)
    key = jax.random.fold_in(base_key, optimizer.step[...])
    batch = render_images(batch, key)
    grad_fn = nnx.value_and_grad(
      functools.partial(loss_fn, batch=batch, config=config), has_aux=True
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


def _restore_or_init(config, graphdef, state, manager):
  """Resume order: workdir checkpoint, then config.init_from, then fresh.

  A workdir checkpoint restores everything (model, optimizer, step): the
  newest that restores; newer ones that do not are named and moved aside.
  `init_from` takes only the model's weights and starts a fresh optimizer
  and schedule; from an exported model (`treediff_jax.exported`) it takes
  the parameters by path, and parameters it lacks (a model that adds
  parts, such as a spatial decoder's projection) keep their initial values.

  Raises:
    checkpointing.CheckpointRestoreError: no workdir checkpoint restores.
  """
  if manager.latest_step() is not None:
    state, data, _, failures = checkpointing.restore_newest_good(manager, state)
    if failures:
      _set_aside(manager, failures, int(data["step"]))
    print(
      f"resumed from {manager.directory} at step {data['step']}", flush=True
    )
    return state, int(data["step"])
  if config.init_from and exported.is_export(config.init_from):
    model, optimizer = nnx.merge(graphdef, state)
    kept = _copy_params(exported.load(config.init_from)[0], model)
    state = nnx.state((model, optimizer))
    print(
      f"initialised the model from {config.init_from}"
      + (f" (kept the initial {', '.join(kept)})" if kept else ""),
      flush=True,
    )
  elif config.init_from:
    restored, _ = checkpointing.restore_path(config.init_from, state)
    model, _ = nnx.merge(graphdef, restored)
    _, optimizer = nnx.merge(graphdef, state)
    state = nnx.state((model, optimizer))
    print(f"initialised the model from {config.init_from}", flush=True)
  return state, 0


def _copy_params(source, model) -> list[str]:
  """Copies `source`'s parameters into `model` by path (shapes must agree);
  returns the paths of `model`'s parameters that `source` lacks.

  Raises:
    exported.ExportError: a parameter of another shape, or one of `source`
      that `model` lacks (named).
  """
  have = dict(nnx.to_flat_state(nnx.state(source, nnx.Param)))
  flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
  names = {p for p, _ in flat}
  extra = sorted("/".join(map(str, p)) for p in have if p not in names)
  if extra:
    raise exported.ExportError(
      f"the exported model has parameters this model lacks: {extra[:3]}"
    )
  kept = []
  for path, v in flat:
    name = "/".join(map(str, path))
    if path not in have:
      kept.append(name)
      continue
    a = have[path].get_value()
    if a.shape != v.get_value().shape:
      raise exported.ExportError(
        f"{name} has shape {list(a.shape)} in the exported model, this "
        f"model expects {list(v.get_value().shape)}"
      )
    v.set_value(a.astype(v.get_value().dtype))
  nnx.update(model, nnx.from_flat_state(flat))
  return kept


def _set_aside(manager, failures, step: int) -> None:
  """Moves checkpoints that do not restore out of the checkpoints folder
  (to `<workdir>/checkpoints_broken/STEP`), naming each, so that the run
  resumed from the older `step` saves those steps afresh.

  Raises:
    checkpointing.CheckpointRestoreError: on several processes (each would
      move them): the message asks the user to move them.
  """
  named = "; ".join(f"step {s} ({p}): {m}" for s, p, m in failures)
  if jax.process_count() > 1:
    raise checkpointing.CheckpointRestoreError(
      f"checkpoints do not restore: {named}; step {step} does: move the "
      "newer ones out of the checkpoints folder and start again"
    )
  aside = os.path.join(
    os.path.dirname(str(manager.directory)), "checkpoints_broken"
  )
  os.makedirs(aside, exist_ok=True)
  for s, path, message in failures:
    dest = os.path.join(aside, str(s))
    n = 1
    while os.path.lexists(dest):
      dest, n = os.path.join(aside, f"{s}.{n}"), n + 1
    os.rename(path, dest)
    print(
      f"warning: checkpoint step {s} ({path}) does not restore ({message}); "
      f"moved to {dest}; resuming from step {step}",
      file=sys.stderr,
      flush=True,
    )
  manager.reload()


def train_and_evaluate(
  config,
  workdir: str,
  model_cls,
  loss_fn: Callable,
  make_evaluator: Callable | None = None,
) -> dict:
  """Trains the model described by `config`, writing to `workdir`.

  Args:
    config: the experiment's ConfigDict.
    workdir: checkpoints go to `<workdir>/checkpoints`, metrics (JSON lines)
      to `<workdir>/metrics.jsonl`.
    model_cls: `model_cls(model_config, rngs=)` builds the model
      (PolicyModel or ValueModel) from
      `model_configs.from_training_config(config)`.
    loss_fn: `loss_fn(model, batch=, config=)` -> (loss, metrics).
    make_evaluator: `make_evaluator(config, graphdef)` -> an object whose
      `run(state)` returns a dict of validation metrics.

  Returns:
    The last logged metrics (a dict of floats).

  Raises:
    ConfigError: an unusable config value.
    treediff_jax.workdir.WorkdirError: another run holds the workdir, its
      config.json is unreadable, or it describes another model (language,
      kind, size, ...: `workdir.FIXED`); nothing is written then.
    checkpointing.CheckpointRestoreError: checkpoints exist but none
      restores (a newer one that fails is moved aside and named, and the
      run resumes from the newest that restores).
    data_gen.pool.WorkerError: a data worker failed.
    FloatingPointError: a non-finite loss.
  """
  check_config(config)
  config_dict = json.loads(config.to_json())
  workdir_lib.check_resume(workdir, config_dict)
  lock = None
  if jax.process_index() == 0:
    lock = workdir_lib.WorkdirLock(workdir)
  try:
    # Again under the lock: another run may have written it meanwhile.
    for note in workdir_lib.check_resume(workdir, config_dict):
      print(note, flush=True)
    os.makedirs(workdir, exist_ok=True)
    files.write_atomic(
      os.path.join(workdir, workdir_lib.CONFIG_FILE),
      lambda f: f.write(config.to_json(indent=1)),
      text=True,
    )
    return _train(config, workdir, model_cls, loss_fn, make_evaluator)
  finally:
    if lock is not None:
      lock.release()


def _train(config, workdir, model_cls, loss_fn, make_evaluator) -> dict:
  """`train_and_evaluate` once the workdir is checked, locked and holds
  the config."""
  mesh = sharding.make_mesh()
  graphdef, state = init_state(config, mesh, model_cls)
  manager = checkpointing.make_manager(
    workdir, config.ckpt.every, config.ckpt.keep, config.ckpt.async_save
  )
  try:
    state, start = _restore_or_init(config, graphdef, state, manager)
  except BaseException:
    manager.close()
    raise
  train_step = make_train_step(config, graphdef, mesh, loss_fn)
  evaluator = None
  if make_evaluator is not None and config.evals.every > 0:
    evaluator = make_evaluator(config, graphdef)
  local_batch = config.input.batch_size // jax.process_count()
  metrics_path = os.path.join(workdir, "metrics.jsonl")
  last: dict = {}
  pool = BatchPool(
    example_config(config),
    config.seed,
    local_batch,
    start_step=start,
    sort_chunk=config.input.sort_chunk,
    length_bucket=config.input.length_bucket,
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
        local = _common_length(next(pool))
        waited += time.perf_counter() - tw
        batch = sharding.global_batch(mesh, local)
        state, metrics = train_step(state, batch)
        seen += 1
        done = step + 1
        last_step = done == config.total_steps
        evaluate = evaluator is not None and (
          done % config.evals.every == 0 or last_step
        )
        if done % config.log_every == 0 or last_step or evaluate:
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
          if evaluate:
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


def _common_length(local: dict) -> dict:
  """Pads this process's sequence arrays to the longest over all processes
  (trimmed lengths differ between hosts; the global batch needs one)."""
  if jax.process_count() == 1:
    return local
  lengths = multihost_utils.process_allgather(
    np.int32(local["tokens"].shape[1])
  )
  return lengths_lib.pad_sequences(local, int(np.max(lengths)))


def _log(log_file, m: dict):
  log_file.write(json.dumps(m) + "\n")
  log_file.flush()
  parts = [f"step {m['step']}"]
  for key, fmt in (
    ("examples_per_s", "{:.1f} ex/s"),
    ("loss", "loss {:.4f}"),
    ("value_mae", "value MAE {:.3f}"),
    ("val_value_mae", "val value MAE {:.3f}"),
    ("position_accuracy", "pos acc {:.3f}"),
    ("exact_edit_accuracy", "exact {:.3f}"),
    ("one_step_goal_rate", "one-step goal {:.3f}"),
    ("one_step_fix_rate", "fixed {:.3f}"),
    ("queue_fill", "queue {:.0%}"),
  ):
    if key in m:
      parts.append(fmt.format(m[key]))
  print(" | ".join(parts), flush=True)
