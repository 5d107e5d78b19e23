"""Helpers shared by the absl entry points: flags and clean error exits."""

import sys

from absl import flags

from treediff_jax.dsl.languages import NAMES, get_language


def quiet_jax_logs():
  """Hides jax's INFO lines about backends it did not find (TPU on a GPU or
  CPU machine), which read like errors to a user."""
  import logging

  logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)


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
