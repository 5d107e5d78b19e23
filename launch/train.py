"""Trains a policy or a value model from a config file.

  python -m launch.train --config=treediff_jax/configs/policy_tiny.py \
      --workdir=/tmp/td_tiny

Overrides follow the file after a colon (`policy_tiny.py:lang=rainbow`).
Runs unchanged on CPU, GPU or a TPU slice; on several hosts, pass
--multihost to call jax.distributed.initialize() first. A killed run
resumes from the last checkpoint in --workdir when started again, and
reuses the steps compiled before from <workdir>/compile_cache
(--nocompile_cache: compile afresh).
"""

import os

from absl import app, flags

from launch import common

# Only the trainer imports jax, and only inside main(): data workers are
# spawned and re-import this module.
_CONFIG = flags.DEFINE_string(
  "config",
  None,
  "Config file, with optional overrides after a colon: "
  "treediff_jax/configs/policy_tiny.py:lang=rainbow,steps=300",
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
  del argv
  if _CONFIG.value is None:
    common.exit_with("--config is required (a file in treediff_jax/configs)")
  if not _WORKDIR.value:
    common.exit_with("--workdir is required")
  parent = os.path.dirname(os.path.abspath(_WORKDIR.value))
  if not os.path.isdir(parent):
    common.exit_with(
      f"the parent folder of --workdir={_WORKDIR.value} does not exist"
    )
  if os.path.exists(_WORKDIR.value) and not os.path.isdir(_WORKDIR.value):
    common.exit_with(f"--workdir={_WORKDIR.value} exists and is not a folder")
  config = common.load_config(_CONFIG.value)
  common.quiet_jax_logs()
  import jax

  from data_gen.pool import WorkerError
  from treediff_jax.trainers import common as trainer_common
  from treediff_jax.trainers import policy, value

  if _MULTIHOST.value:
    jax.distributed.initialize()
  if _COMPILE_CACHE.value:
    # Each sequence length compiles its own train step (data_gen/lengths.py);
    # on a GPU that is about half a minute per length for the base model.
    jax.config.update(
      "jax_compilation_cache_dir",
      os.path.join(os.path.abspath(_WORKDIR.value), "compile_cache"),
    )
  print(
    f"process {jax.process_index()} of {jax.process_count()}; "
    f"{jax.local_device_count()} local of {jax.device_count()} devices "
    f"({jax.devices()[0].platform})",
    flush=True,
  )
  trainer = value if config.get("kind") == "value" else policy
  try:
    trainer.train_and_evaluate(config, _WORKDIR.value)
  except trainer_common.ConfigError as e:
    common.exit_with(f"bad config: {e}")
  except WorkerError as e:
    common.exit_with(str(e), code=1)


if __name__ == "__main__":
  app.run(main)
