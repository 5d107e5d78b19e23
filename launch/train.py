"""Trains a policy or a value model from a config file.

  python -m launch.train --config=treediff_jax/configs/policy_tiny.py \
      --workdir=/tmp/td_tiny

The file's presets follow a colon (`policy_tiny.py:lang=csg2d,steps=400`,
passed to its get_config) and any field can be set after --config
(`--config.optim.lr=1e-3 --config.input.batch_size=16`); a bad file,
preset, field or value stops the run with one line (status 2).
Runs unchanged on CPU, GPU or a TPU slice; on several hosts, pass
--multihost to call jax.distributed.initialize() first. A killed run
resumes from the last checkpoint in --workdir when started again, and
reuses the steps compiled before from <workdir>/compile_cache
(--nocompile_cache: compile afresh). One run at a time holds a workdir
(<workdir>/train.lock), and a resumed run must train the same model
(language, kind, size, label mode, ...: treediff_jax/workdir.py); both
are checked before anything is written.
"""

import os

from absl import app, flags
from ml_collections import config_flags

from launch import common

# Only the trainer imports jax, and only inside main(): data workers are
# spawned and re-import this module.
_CONFIG = config_flags.DEFINE_config_file(
  "config",
  None,
  "Config file, with presets after a colon: "
  "treediff_jax/configs/policy_tiny.py:lang=rainbow,steps=300; any field "
  "can then be set with --config.<field>=value (--config.optim.lr=1e-3).",
  lock_config=True,
)
_WORKDIR = flags.DEFINE_string(
  "workdir", None, "Where checkpoints and metrics go."
)
_MULTIHOST = flags.DEFINE_bool(
  "multihost", False, "Call jax.distributed.initialize() first."
)
_COMPILE_CACHE = flags.DEFINE_bool(
  "compile_cache",
  True,
  "Keep compiled steps in <workdir>/compile_cache, so that a resumed run "
  "does not compile them again.",
)


def main(argv):
  if len(argv) > 1:
    common.exit_with(f"unexpected arguments: {' '.join(argv[1:])}")
  config = _CONFIG.value
  if config is None:
    common.exit_with("--config is required (a file in treediff_jax/configs)")
  workdir = common.workdir_or_exit(_WORKDIR.value)
  # The workdir's guards, before jax: another run holding it, or a config
  # that describes another model than the one trained there.
  import json

  from treediff_jax import workdir as workdir_lib

  try:
    workdir_lib.check_resume(workdir, json.loads(config.to_json()))
    workdir_lib.check_unlocked(workdir)
  except workdir_lib.WorkdirError as e:
    common.exit_with(str(e))
  common.quiet_jax_logs()
  import jax

  from data_gen.pool import WorkerError
  from treediff_jax import checkpointing
  from treediff_jax.trainers import common as trainer_common
  from treediff_jax.trainers import policy, value

  if _MULTIHOST.value:
    jax.distributed.initialize()
  if _COMPILE_CACHE.value:
    # Each sequence length compiles its own train step (data_gen/lengths.py);
    # on a GPU that is about half a minute per length for the base model.
    jax.config.update(
      "jax_compilation_cache_dir",
      os.path.join(os.path.abspath(workdir), "compile_cache"),
    )
  print(
    f"process {jax.process_index()} of {jax.process_count()}; "
    f"{jax.local_device_count()} local of {jax.device_count()} devices "
    f"({jax.devices()[0].platform})",
    flush=True,
  )
  trainer = value if config.get("kind") == "value" else policy
  try:
    trainer.train_and_evaluate(config, workdir)
  except trainer_common.ConfigError as e:
    common.exit_with(f"bad config: {e}")
  except (workdir_lib.WorkdirError, checkpointing.CheckpointRestoreError) as e:
    common.exit_with(str(e))
  except WorkerError as e:
    common.exit_with(str(e), code=1)


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags_or_exit)
