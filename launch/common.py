"""Helpers shared by the absl entry points: flags and clean error exits."""

import sys

from absl import flags

from treediff_jax.dsl.languages import NAMES, get_language


def quiet_jax_logs():
  """Hides INFO log lines: jax's about backends it did not find (TPU on a
  GPU or CPU machine), which read like errors, and orbax's per-save ones."""
  import logging

  from absl import logging as absl_logging

  logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
  absl_logging.set_verbosity(absl_logging.WARNING)


def check_seed(seed: int) -> int:
  """The seed, or exit if it is negative (NumPy seeds are non-negative)."""
  if seed < 0:
    exit_with(f"--seed must be >= 0, got {seed}")
  return seed


def define_lang_flag(default: str = "csg2d"):
  return flags.DEFINE_string(
    "lang", default, f"Language: one of {', '.join(NAMES)}."
  )


def language_or_exit(name: str):
  """The language, or exit with a one-line message naming the problem."""
  try:
    return get_language(name)
  except ValueError as e:
    exit_with(str(e))


def exit_with(message: str, code: int = 2):
  """Prints `message` to stderr and exits; no traceback."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(code)


def load_config(spec: str):
  """Loads `path/to/config.py[:arg]` by calling its `get_config(arg)`.

  Exits with a one-line message if the file is missing, has no get_config,
  or rejects the argument.
  """
  import importlib.util
  import os

  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    exit_with(f"no config file at {path}")
  if not path.endswith(".py"):
    exit_with(f"config file {path} is not a .py file")
  module_spec = importlib.util.spec_from_file_location("_td_config", path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
  except Exception as e:  # pylint: disable=broad-except
    exit_with(f"cannot load config file {path}: {type(e).__name__}: {e}")
  if not hasattr(module, "get_config"):
    exit_with(f"config file {path} defines no get_config()")
  try:
    config = module.get_config(arg or None)
    config.lock()
  except Exception as e:  # pylint: disable=broad-except
    exit_with(f"bad config {spec}: {e}")
  return config
