"""Guards of a training workdir (no jax here: launch.train checks before
it imports jax).

- One trainer at a time: the running trainer holds an exclusive lock
  (flock) on `<workdir>/train.lock`, which names its process id. The
  kernel drops the lock when the process ends, however it ends, so a lock
  file left by a killed run is simply taken over.
- A resumed run trains the same model: the workdir's `config.json` is
  compared with the new config before anything is written. The fields in
  FIXED (language, kind, model size and dtype, sequence length, label mode,
  what the model sees) must match; those in FREE (how long, how often, how
  fast) may change silently; any other change is allowed and named in a
  note (it changes the data or the optimisation from the resume on).
"""

from __future__ import annotations

import json
import os
import socket

try:
  import fcntl
except ImportError:  # not POSIX: fall back to the process-id check
  fcntl = None

LOCK_FILE = "train.lock"
CONFIG_FILE = "config.json"

# Fields that change the parameters' shapes or what the model means.
FIXED = (
  "kind",
  "lang",
  "model.size",
  "model.dtype",
  "model.max_len",
  "model.stem",
  "input.label_mode",
  "input.blank_current",
  "input.sketch",
)
# Fields a resumed run may change without a note (prefixes end with ".").
FREE = (
  "total_steps",
  "log_every",
  "evals.",
  "ckpt.",
  "input.num_workers",
  "input.queue_size",
)
# Defaults of fields older configs lack (as model_configs reads them).
_DEFAULTS = {
  "model.max_len": 0,
  "model.dtype": "float32",
  "model.stem": "patch",
  "model.spatial": False,
  "model.box_features": False,
  "input.blank_current": False,
  "input.sketch": False,
  "input.label_mode": "path",
}


class WorkdirError(ValueError):
  """A workdir that this run must not use, named (one line)."""


def _flatten(d: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def read_config(workdir: str) -> dict | None:
  """The workdir's config.json as a dict, or None if there is none.

  Raises:
    WorkdirError: it cannot be read or is not a JSON object (named).
  """
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.lexists(path):
    return None
  try:
    with open(path) as f:
      config = json.load(f)
  except json.JSONDecodeError as e:
    raise WorkdirError(
      f"{path} is not valid JSON ({e.msg}: line {e.lineno} column "
      f"{e.colno}; truncated?): restore it, or train in another workdir"
    ) from None
  except (OSError, UnicodeDecodeError) as e:
    reason = getattr(e, "strerror", None) or str(e)
    raise WorkdirError(f"cannot read {path}: {reason}") from None
  if not isinstance(config, dict):
    raise WorkdirError(
      f"{path} is not a training config (a JSON {type(config).__name__}, "
      "not an object)"
    )
  return config


def _resolved(flat: dict) -> dict:
  """FIXED fields with defaults filled in, the language by its canonical
  name and max_len 0 as the language's sequence length."""
  from treediff_jax.dsl.languages import get_language

  out = {k: flat.get(k, _DEFAULTS.get(k)) for k in FIXED}
  try:
    lang = get_language(str(out["lang"]))
    out["lang"] = lang.name
    if not out["model.max_len"]:
      out["model.max_len"] = lang.seq_len
  except ValueError:
    pass
  return out


def compare_configs(old: dict, new: dict, path: str) -> list[str]:
  """Checks that `new` may resume a run trained with `old`.

  Args:
    old: the workdir's config (from its config.json at `path`).
    new: the new run's config.

  Returns:
    Notes naming each changed field outside FIXED and FREE.

  Raises:
    WorkdirError: a FIXED field differs (the first one is named, with both
      values).
  """
  old_flat, new_flat = _flatten(old), _flatten(new)
  a, b = _resolved(old_flat), _resolved(new_flat)
  for key in FIXED:
    if a[key] != b[key]:
      raise WorkdirError(
        f"{path} was trained with config.{key}={a[key]!r}, this config has "
        f"{b[key]!r}: a resumed run must keep it (or train in another "
        "workdir)"
      )
  notes = []
  for key in sorted(set(old_flat) | set(new_flat)):
    if key in FIXED or any(
      key == f or (f.endswith(".") and key.startswith(f)) for f in FREE
    ):
      continue
    if old_flat.get(key) != new_flat.get(key):
      notes.append(
        f"note: config.{key} changes from {old_flat.get(key)!r} to "
        f"{new_flat.get(key)!r} on this resume"
      )
  return notes


def check_resume(workdir: str, config: dict) -> list[str]:
  """Compares `config` with the workdir's config.json (if any); reads only.

  Returns:
    Notes on changed fields (see `compare_configs`).

  Raises:
    WorkdirError: config.json is unreadable or a FIXED field differs.
  """
  if os.path.lexists(workdir) and not os.path.isdir(workdir):
    raise WorkdirError(f"--workdir={workdir} exists and is not a folder")
  old = read_config(workdir) if os.path.isdir(workdir) else None
  if old is None:
    return []
  return compare_configs(old, config, os.path.join(workdir, CONFIG_FILE))


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def _holder(path: str) -> tuple[int | None, str]:
  """(pid, host) written in a lock file; (None, "") if unreadable."""
  try:
    with open(path) as f:
      words = f.read().split()
    return int(words[0]), (words[1] if len(words) > 1 else "")
  except (OSError, ValueError, IndexError):
    return None, ""


def _in_use(path: str, pid: int | None, host: str) -> WorkdirError:
  who = f"pid {pid}" if pid is not None else "a process"
  if host and host != socket.gethostname():
    who += f" on {host}"
  return WorkdirError(
    f"{os.path.dirname(path)} is in use by another training run ({who} "
    f"holds {path}); wait for it to finish or train in another workdir"
  )


def check_unlocked(workdir: str) -> None:
  """Raises WorkdirError if a live trainer holds the workdir's lock; reads
  only (creates nothing)."""
  path = os.path.join(workdir, LOCK_FILE)
  if not os.path.isfile(path):
    return
  pid, host = _holder(path)
  if fcntl is None:
    if pid is not None and pid != os.getpid() and _pid_alive(pid):
      raise _in_use(path, pid, host)
    return
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError:
    return
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    raise _in_use(path, pid, host) from None
  except OSError:
    pass  # no locks on this filesystem: the trainer checks the pid
  finally:
    os.close(fd)


class WorkdirLock:
  """The exclusive lock of a training workdir, held until `release()`.

  Creates the workdir if needed. The lock file holds "PID HOST".

  Raises (from the constructor):
    WorkdirError: another live process holds the lock.
  """

  def __init__(self, workdir: str):
    os.makedirs(workdir, exist_ok=True)
    self.path = os.path.join(workdir, LOCK_FILE)
    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
    pid, host = _holder(self.path)
    locked = False
    if fcntl is not None:
      try:
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        locked = True
      except BlockingIOError:
        os.close(self._fd)
        raise _in_use(self.path, pid, host) from None
      except OSError:
        pass  # no locks on this filesystem: check the pid instead
    same_host = host in ("", socket.gethostname())
    if pid is not None and pid != os.getpid() and same_host:
      if not locked and _pid_alive(pid):
        os.close(self._fd)
        raise _in_use(self.path, pid, host)
      if not _pid_alive(pid):
        print(
          f"note: {self.path} was left by pid {pid}, which is no longer "
          "running; taking it over",
          flush=True,
        )
    os.ftruncate(self._fd, 0)
    os.pwrite(self._fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)

  def release(self) -> None:
    """Empties the lock file and drops the lock (the file stays: removing
    it would let two later runs lock two different files)."""
    if self._fd is None:
      return
    try:
      os.ftruncate(self._fd, 0)
    except OSError:
      pass
    os.close(self._fd)  # drops the flock
    self._fd = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.release()
