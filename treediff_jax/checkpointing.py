"""Orbax checkpoints of training state and data position (the only module
that imports orbax).

A checkpoint holds `state` (model and optimizer state, a pytree of arrays)
and `data` (JSON: the next step, and so the position in the data stream,
which is a pure function of the step). Restoring builds the target from the
live state's shapes and shardings, so a checkpoint written on 8 devices
restores on 1 and the other way round.
"""

from __future__ import annotations

import os
import sys

import jax
import orbax.checkpoint as ocp


class CheckpointNotFoundError(FileNotFoundError):
  """No checkpoint where one was asked for."""


class CheckpointRestoreError(RuntimeError):
  """Checkpoints exist but none restores; the message names each step's
  folder and its error."""


def make_manager(
  workdir: str, save_every: int, keep: int, async_save: bool = True
) -> ocp.CheckpointManager:
  """A manager saving to `<workdir>/checkpoints` every `save_every` steps,
  keeping the last `keep`."""
  return ocp.CheckpointManager(
    os.path.join(os.path.abspath(workdir), "checkpoints"),
    options=ocp.CheckpointManagerOptions(
      save_interval_steps=save_every,
      max_to_keep=keep,
      enable_async_checkpointing=async_save,
    ),
    item_names=("state", "data"),
  )


def save(manager, step: int, state, data: dict, force: bool = False) -> bool:
  """Saves at `step` if the save interval says so (or `force`)."""
  return manager.save(
    step,
    args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data)
    ),
    force=force,
  )


def restore(manager, like_state, step: int | None = None):
  """Restores (state, data) at `step` (the latest if None).

  Args:
    manager: from `make_manager`.
    like_state: a pytree with the shapes, dtypes and shardings to restore
      into (for example the freshly initialised state).

  Raises:
    CheckpointNotFoundError: there is no checkpoint.
  """
  step = manager.latest_step() if step is None else step
  if step is None:
    raise CheckpointNotFoundError(f"no checkpoint in {manager.directory}")
  target = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
    like_state,
  )
  out = manager.restore(
    step,
    args=ocp.args.Composite(
      state=ocp.args.StandardRestore(target), data=ocp.args.JsonRestore()
    ),
  )
  return out["state"], out["data"]


def step_path(manager, step: int) -> str:
  """The folder of checkpoint `step`."""
  return os.path.join(str(manager.directory), str(step))


def _first_line(e: BaseException) -> str:
  text = (str(e).strip().splitlines() or [""])[0]
  if len(text) > 160:
    text = text[:157] + "..."
  return f"{type(e).__name__}: {text}" if text else type(e).__name__


def restore_newest_good(manager, like_state):
  """Restores the newest checkpoint that restores, trying older ones when
  a newer one fails (a truncated or damaged file).

  Args:
    manager: from `make_manager`.
    like_state: as for `restore`.

  Returns:
    (state, data, step, failures): failures lists (step, folder, error
    line) of each newer checkpoint that did not restore.

  Raises:
    CheckpointNotFoundError: there is no checkpoint.
    CheckpointRestoreError: none restores (each one named).
  """
  steps = sorted(manager.all_steps(), reverse=True)
  if not steps:
    raise CheckpointNotFoundError(f"no checkpoint in {manager.directory}")
  failures = []
  for step in steps:
    try:
      state, data = restore(manager, like_state, step)
      return state, data, step, failures
    except Exception as e:  # orbax and tensorstore raise many kinds
      failures.append((step, step_path(manager, step), _first_line(e)))
  named = "; ".join(f"step {s} ({p}): {m}" for s, p, m in failures)
  raise CheckpointRestoreError(f"no checkpoint restores: {named}")


def restore_path(path: str, like_state):
  """Restores the latest (state, data) from a workdir or its `checkpoints`
  folder, for use without training code.

  The newest checkpoint that restores is used (a damaged newer one is named
  in a warning on stderr).

  Raises:
    CheckpointNotFoundError: no checkpoint there (the message names the path).
    CheckpointRestoreError: none restores (each one named).
  """
  root = os.path.abspath(path)
  if os.path.basename(root) != "checkpoints":
    root = os.path.join(root, "checkpoints")
  if not os.path.isdir(root):
    raise CheckpointNotFoundError(f"no checkpoints folder at {root}")
  manager = ocp.CheckpointManager(root, item_names=("state", "data"))
  try:
    state, data, _, failures = restore_newest_good(manager, like_state)
  finally:
    manager.close()
  for step, folder, message in failures:
    print(
      f"warning: checkpoint step {step} ({folder}) does not restore "
      f"({message}); using an older one",
      file=sys.stderr,
    )
  return state, data
