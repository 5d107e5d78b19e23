"""What the launch commands write, and the rules they all follow:

1. An output never replaces an input of the run (not even with
   --overwrite), nor a folder, nor a file the commands did not make
   (unless --overwrite is passed).
2. Output paths are unique within a run: two inputs that would write one
   output file are refused.
3. Every output is checked before any work starts (`Outputs.file`,
   `Outputs.folder`, `Outputs.claim`), written to a hidden temporary file
   beside it (`Outputs.write`) and renamed into place when the run is done
   (`Outputs.commit`): a failure leaves nothing half-written, and a folder
   the run created for its outputs is removed again. Files get the
   permissions the umask gives (treediff_jax/files.py).

A folder the commands write into keeps the list of files they made there
(MANIFEST, with each file's SHA-256): a command run again replaces its own
earlier outputs without --overwrite, but not a file someone else put there
or changed since. A single output file named by a flag (render and
make_testset --out) is never replaced without --overwrite.

Every refusal is one line naming the flag and the file, exit status 2.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import tempfile
from typing import IO, Callable, Iterable

from launch import common
from treediff_jax import files

MANIFEST = ".treediff-outputs.json"


def _sha256(path: str) -> str | None:
  h = hashlib.sha256()
  try:
    with open(path, "rb") as f:
      for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
  except OSError:
    return None
  return h.hexdigest()


def read_manifest(folder: str) -> dict[str, str]:
  """{file name: sha256} of the files the commands made in `folder`
  (empty if there is no readable manifest)."""
  try:
    with open(os.path.join(folder, MANIFEST)) as f:
      made = json.load(f).get("files", {})
    return {str(k): str(v) for k, v in made.items()}
  except (OSError, ValueError, AttributeError):
    return {}


def made_here(folder: str, name: str) -> bool:
  """Whether `folder/name` is a file the commands made and nobody changed
  since."""
  digest = read_manifest(folder).get(name)
  path = os.path.join(folder, name)
  return (
    digest is not None and os.path.isfile(path) and (_sha256(path) == digest)
  )


def record(folder: str, names: Iterable[str]) -> None:
  """Adds `folder/name` (as they are now) to the folder's manifest."""
  made = read_manifest(folder)
  for name in names:
    digest = _sha256(os.path.join(folder, name))
    if digest is not None:
      made[name] = digest
  made = {
    k: v for k, v in made.items() if os.path.isfile(os.path.join(folder, k))
  }
  text = json.dumps(
    {"written_by": "treediff-jax launch commands", "files": made},
    indent=1,
    sort_keys=True,
  )
  files.write_atomic(
    os.path.join(folder, MANIFEST), lambda f: f.write(text), text=True
  )


def probe_writable(folder: str) -> str | None:
  """None if a file can be created in `folder` (tried, then removed), else
  the reason."""
  try:
    fd, path = tempfile.mkstemp(prefix=".treediff-probe-", dir=folder)
  except OSError as e:
    return e.strerror or str(e)
  os.close(fd)
  os.unlink(path)
  return None


class Outputs:
  """The output files of one run: checked first, published together.

  Args:
    overwrite: --overwrite was passed (files the commands did not make may
      be replaced; inputs never are).
    inputs: the run's input files (a folder input: pass its files).
  """

  def __init__(self, overwrite: bool = False, inputs: Iterable[str] = ()):
    self.overwrite = overwrite
    self._inputs: dict[tuple[int, int], str] = {}
    self._claimed: dict[str, tuple[str, str]] = {}  # path -> (owner, flag)
    self._existed: set[str] = set()
    self._staged: list[tuple[str, str]] = []  # (temporary, path)
    self._made_dirs: list[str] = []
    self._folders: dict[str, list[str]] = {}  # folder -> names to record
    self._atexit = False
    for p in inputs:
      self.add_input(p)

  # -- checks, before any work ---------------------------------------------

  def add_input(self, path: str) -> None:
    """Marks `path` (an existing file) as an input of the run."""
    try:
      st = os.stat(path)
    except OSError:
      return
    self._inputs[(st.st_dev, st.st_ino)] = path

  def file(self, flag: str, path: str | None) -> str:
    """Checks a single output file named by `flag`; returns its path.

    Refused: no name, a name ending in a path separator or naming a
    folder, a folder above it that is missing or not writable, an input,
    an existing file without --overwrite.
    """
    if not path:
      common.exit_with(f"{flag} is required")
    name = os.path.basename(path)
    if path.endswith(("/", os.sep)) or name in ("", ".", ".."):
      common.exit_with(f"{flag}={path} names a folder; name a file")
    if os.path.isdir(path):
      common.exit_with(f"{flag}={path} is a folder; name a file")
    self._writable_folder(flag, path, os.path.dirname(os.path.abspath(path)))
    return self._claim(flag, os.path.abspath(path), flag, folder=None)

  def folder(self, flag: str, path: str | None, parents: bool = False) -> str:
    """Checks an output folder named by `flag`; returns its absolute path.

    It must be an existing writable folder, or creatable: its parent
    folder exists and is writable (with `parents`, the nearest existing
    folder above it).
    """
    if not path:
      common.exit_with(f"{flag} is required")
    full = os.path.abspath(path)
    if os.path.lexists(full) and not os.path.isdir(full):
      common.exit_with(f"{flag}={path} exists and is not a folder")
    if os.path.isdir(full):
      reason = probe_writable(full)
      if reason:
        common.exit_with(f"{flag}={path} is not writable: {reason}")
      return full
    above = os.path.dirname(full)
    if parents:
      while not os.path.lexists(above) and above != os.path.dirname(above):
        above = os.path.dirname(above)
    self._writable_folder(flag, path, above)
    return full

  def _writable_folder(self, flag: str, path: str, folder: str) -> None:
    if not os.path.isdir(folder):
      what = "is not a folder" if os.path.lexists(folder) else "does not exist"
      common.exit_with(f"the folder above {flag}={path} ({folder}) {what}")
    reason = probe_writable(folder)
    if reason:
      common.exit_with(f"{flag}={path}: cannot write in {folder}: {reason}")

  def claim(self, flag: str, folder: str, name: str, owner: str = "") -> str:
    """Checks output `name` in output folder `folder` (from `folder()`);
    returns its path. `owner` names what it is the output of (for the
    message when two outputs collide)."""
    path = os.path.join(folder, name)
    self._claim(flag, path, owner or name, folder=folder)
    self._folders.setdefault(folder, []).append(name)
    return path

  def exists(self, path: str) -> bool:
    """Whether a claimed output existed when it was claimed (and is
    replaced by this run)."""
    return path in self._existed

  def _claim(self, flag, path, owner, folder) -> str:
    if path in self._claimed:
      other = self._claimed[path][0]
      common.exit_with(
        f"{flag}: {other} and {owner} would both be written to {path}; "
        "rename one"
      )
    if os.path.lexists(path):
      if os.path.isdir(path) and not os.path.islink(path):
        common.exit_with(f"{flag}: the output {path} is a folder")
      try:
        st = os.stat(path)
        key = (st.st_dev, st.st_ino)
      except OSError:
        key = None
      if key in self._inputs:
        common.exit_with(
          f"{flag}: the output {path} would replace the input "
          f"{self._inputs[key]}; choose another {flag}"
        )
      if folder is None and not self.overwrite:
        common.exit_with(
          f"{flag}={path} exists; pass --overwrite to replace it"
        )
      ours = folder is not None and made_here(folder, os.path.basename(path))
      if folder is not None and not self.overwrite and not ours:
        common.exit_with(
          f"{flag}: {path} exists and is not an unchanged earlier output "
          "of these commands; pass --overwrite to replace it"
        )
      self._existed.add(path)
    self._claimed[path] = (owner, flag)
    return path

  # -- writing, after the work ---------------------------------------------

  def write(
    self, path: str, write: Callable[[IO], None], text: bool = False
  ) -> None:
    """Writes claimed output `path` (`write(file)`) to a temporary file
    beside it; `commit()` renames it into place. Exits with one line
    (status 1, after removing what this run wrote) if writing fails."""
    path = os.path.abspath(path)
    assert path in self._claimed, path
    if not self._atexit:
      # Whatever ends the run before commit(), its temporary files and new
      # folders go (not on SIGKILL: then hidden .NAME.*.tmp files stay).
      atexit.register(self.abort)
      self._atexit = True
    try:
      self._make_folder(os.path.dirname(path))
      self._staged.append((files.stage(path, write, text), path))
    except OSError as e:
      self.abort()
      common.exit_with(f"cannot write {path}: {e.strerror or e}", code=1)

  def _make_folder(self, folder: str) -> None:
    if os.path.isdir(folder):
      return
    self._make_folder(os.path.dirname(folder))
    os.mkdir(folder)
    self._made_dirs.append(folder)

  def commit(self) -> None:
    """Renames the written outputs into place and records them in their
    folders' manifests. A file that appeared at an output path during the
    run (and was not there when checked) is kept: the output goes beside it
    as NAME.new, named in a message, and the run exits with status 1."""
    clashes = []
    for tmp, path in self._staged:
      if os.path.lexists(path) and path not in self._existed:
        kept = f"{path}.new"
        n = 1
        while os.path.lexists(kept):
          kept, n = f"{path}.new{n}", n + 1
        os.replace(tmp, kept)
        clashes.append(f"{path} appeared during the run; wrote {kept}")
      else:
        os.replace(tmp, path)
      self._existed.add(path)
    self._staged, self._made_dirs = [], []
    for folder, names in self._folders.items():
      written = [n for n in names if os.path.isfile(os.path.join(folder, n))]
      if written:
        record(folder, written)
    if clashes:
      common.exit_with("; ".join(clashes), code=1)

  def abort(self) -> None:
    """Removes the temporary files and the folders this run created."""
    for tmp, _ in self._staged:
      files.discard(tmp)
    self._staged = []
    for folder in reversed(self._made_dirs):
      try:
        os.rmdir(folder)
      except OSError:
        pass
    self._made_dirs = []

  def __enter__(self):
    return self

  def __exit__(self, exc_type, exc, tb):
    if exc_type is not None:
      self.abort()
