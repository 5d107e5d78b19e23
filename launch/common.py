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
  except Exception as e:
    exit_with(f"cannot load config file {path}: {type(e).__name__}: {e}")
  if not hasattr(module, "get_config"):
    exit_with(f"config file {path} defines no get_config()")
  try:
    config = module.get_config(arg or None)
    config.lock()
  except Exception as e:
    exit_with(f"bad config {spec}: {e}")
  return config


def parse_flags_or_exit(argv: list[str], config_flag: str = "config"):
  """A `flags_parser` for `app.run` with an ml_collections config file flag
  (`config_flags.DEFINE_config_file(config_flag, ...)`): any bad flag exits
  with one line and status 2, never absl's usage text or a traceback.

  The config file is loaded first, as `load_config` does (a missing file, or
  an argument after the colon that its get_config rejects, is named), and
  every `--config.<field>=value` override must name a field of it;
  config_flags then parses the overrides (a value of the wrong type is
  named). config_flags reads the overrides from sys.argv: `argv` must be
  sys.argv, as app.run passes it.

  Returns:
    The arguments left after the flags, as `flags.FLAGS(argv)`.
  """
  import re

  args = flags.FLAGS.read_flags_from_files(argv[1:], force_gnu=False)
  if "--" in args:
    args = args[: args.index("--")]
  spec, overrides = None, []
  for i, arg in enumerate(args):
    if re.match(rf"-{{1,2}}{config_flag}=", arg):
      spec = arg.split("=", 1)[1]
    elif re.fullmatch(rf"-{{1,2}}{config_flag}", arg) and i + 1 < len(args):
      spec = args[i + 1]
    elif re.match(rf"-{{1,2}}(no)?{config_flag}\.", arg):
      overrides.append(arg.split("=", 1)[0].split(".", 1)[1])
  if overrides and spec is None:
    exit_with(f"--{config_flag}.{overrides[0]} needs --{config_flag}=<file.py>")
  if spec is not None:
    config = load_config(spec)
    for path in overrides:
      _field_or_exit(config, config_flag, path)
  try:
    return flags.FLAGS(argv)
  except Exception as e:
    line = (str(e).strip().splitlines() or [""])[0]
    if not isinstance(e, flags.Error):
      line = f"{type(e).__name__}: {line}"
    exit_with(line)


def _field_or_exit(config, name: str, path: str):
  """Exits unless `path` ("optim.lr") names a field of `config`; the message
  lists the fields of the last group found."""
  from ml_collections import ConfigDict

  node, found = config, name
  for key in path.split("."):
    if not isinstance(node, ConfigDict) or key not in node:
      known = f"; {found} is a value, not a group of fields"
      if isinstance(node, ConfigDict):
        known = f"; {found} has {', '.join(sorted(node.keys()))}"
      exit_with(f"no config field {name}.{path}{known}")
    node, found = node[key], f"{found}.{key}"


def workdir_or_exit(workdir: str | None) -> str:
  """`workdir`, or exit unless it is set and a writable folder or creatable
  as one (its parent folder exists and is writable)."""
  import os

  if not workdir:
    exit_with("--workdir is required")
  parent = os.path.dirname(os.path.abspath(workdir))
  if not os.path.isdir(parent):
    exit_with(f"the parent folder of --workdir={workdir} does not exist")
  if os.path.lexists(workdir) and not os.path.isdir(workdir):
    exit_with(f"--workdir={workdir} exists and is not a folder")
  folder = workdir if os.path.isdir(workdir) else parent
  if not os.access(folder, os.W_OK | os.X_OK):
    exit_with(f"--workdir={workdir}: {folder} is not writable")
  return workdir
