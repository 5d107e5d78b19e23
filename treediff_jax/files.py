"""Writing files whole: a temporary file beside the target, renamed into
place when complete, with the permissions the umask gives a new file.

A failure while writing leaves the target as it was (absent or the old
file) and removes the temporary file; a reader never sees half a file.
"""

from __future__ import annotations

import os
import tempfile
from typing import IO, Callable


def umask() -> int:
  """The process umask (read by setting and restoring it)."""
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


def stage(path: str, write: Callable[[IO], None], text: bool = False) -> str:
  """Writes `write(file)`'s output to a temporary file beside `path`.

  The temporary file is hidden (`.NAME.XXXX.tmp`) and gets the permissions
  a new file gets under the umask (mkstemp alone makes it 0600).

  Returns:
    The temporary file's path; rename it onto `path` (os.replace) to
    publish it, or remove it.

  Raises:
    OSError: the folder is not writable or the write failed (nothing is
      left behind then).
  """
  folder = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(
    prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder
  )
  try:
    with os.fdopen(fd, "w" if text else "wb") as f:
      write(f)
    os.chmod(tmp, 0o666 & ~umask())
  except BaseException:
    discard(tmp)
    raise
  return tmp


def write_atomic(
  path: str, write: Callable[[IO], None], text: bool = False
) -> None:
  """Writes `path` whole: `write(file)` into a temporary file beside it,
  then renamed over it. Raises OSError as `stage`."""
  tmp = stage(path, write, text)
  try:
    os.replace(tmp, path)
  except BaseException:
    discard(tmp)
    raise


def discard(tmp: str) -> None:
  """Removes a temporary file after a failed write (already gone: fine)."""
  try:
    os.unlink(tmp)
  except OSError:
    pass
