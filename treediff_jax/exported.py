"""Trained models as parameters only, without optimizer state: what the
package ships (`treediff_jax/weights/`) and what `launch.export` writes.

An exported model is a folder:

  model.json    kind ("policy" or "value"), the training config (language,
                size, label mode, blank_current, every setting), the step,
                examples seen, validation metrics, and the stored dtype of
                each parameter file
  params.npz    the parameters by path ("encoder/embed/kernel"), float32 or
                bfloat16 (stored as its uint16 bits)

`load(folder)` rebuilds the model from model.json and fills in the
parameters; nothing else is needed (no orbax, no training code).
"""

from __future__ import annotations

import json
import os

import jax
import ml_collections
import ml_dtypes
import numpy as np
from flax import nnx

from treediff_jax import files, model_configs
from treediff_jax.models import PolicyModel, ValueModel

MODEL_FILE = "model.json"
PARAMS_FILE = "params.npz"
KINDS = {"policy": PolicyModel, "value": ValueModel}


class ExportError(ValueError):
  """An exported model that cannot be read, named."""


def _key(path) -> str:
  """A parameter's name in params.npz: its state path joined by "/"."""
  return "/".join(str(k) for k in path)


def _flat(state) -> dict[str, np.ndarray]:
  flat = nnx.to_flat_state(state)
  return {_key(path): np.asarray(v.get_value()) for path, v in flat}


def save(model, config, folder: str, dtype: str = "float32", **info) -> str:
  """Writes `model`'s parameters and `config` (its training ConfigDict) to
  `folder` (created; files written to temporary names, then renamed).

  Args:
    model: a PolicyModel or ValueModel.
    config: the training ConfigDict (kind, lang, model, input, ...).
    folder: output folder.
    dtype: "float32" or "bfloat16" for the stored parameters.
    info: extra JSON-able facts for model.json (step, examples seen,
      validation metrics, ...).

  Returns:
    The folder.
  """
  if dtype not in ("float32", "bfloat16"):
    raise ValueError(f"dtype must be float32 or bfloat16, got {dtype!r}")
  os.makedirs(folder, exist_ok=True)
  arrays = _flat(nnx.state(model, nnx.Param))
  if dtype == "bfloat16":
    arrays = {
      k: v.astype(ml_dtypes.bfloat16).view(np.uint16) for k, v in arrays.items()
    }
  meta = dict(
    format=1,
    kind=config.kind,
    dtype=dtype,
    num_params=int(sum(v.size for v in arrays.values())),
    training_config=json.loads(config.to_json()),
    **info,
  )
  files.write_atomic(
    os.path.join(folder, PARAMS_FILE), lambda f: np.savez(f, **arrays)
  )
  files.write_atomic(
    os.path.join(folder, MODEL_FILE),
    lambda f: f.write(json.dumps(meta, indent=1) + "\n"),
    text=True,
  )
  return folder


def is_export(folder: str) -> bool:
  """Whether `folder` holds an exported model."""
  return os.path.isfile(os.path.join(folder, MODEL_FILE))


def read_info(folder: str) -> dict:
  """model.json of an exported model.

  Raises:
    ExportError: no model.json, or one that is not valid JSON.
  """
  path = os.path.join(folder, MODEL_FILE)
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    raise ExportError(
      f"{folder} holds no exported model ({MODEL_FILE})"
    ) from None
  except json.JSONDecodeError as e:
    raise ExportError(f"{path} is not valid JSON: {e}") from None


def load(folder: str, kind: str | None = None):
  """(model, training ConfigDict) of an exported model.

  Args:
    folder: an exported model's folder.
    kind: "policy" or "value" to require that kind (None: any).

  Raises:
    ExportError: a missing or unreadable file, another kind, or parameters
      that do not fit the model the config describes.
  """
  meta = read_info(folder)
  config = ml_collections.ConfigDict(meta["training_config"])
  if kind is not None and meta["kind"] != kind:
    raise ExportError(f"{folder} holds a {meta['kind']} model, not a {kind}")
  model = KINDS[meta["kind"]](
    model_configs.from_training_config(config), rngs=nnx.Rngs(0)
  )
  path = os.path.join(folder, PARAMS_FILE)
  try:
    with np.load(path) as npz:
      stored = {k: npz[k] for k in npz.files}
  except (OSError, ValueError) as e:
    raise ExportError(f"cannot read {path}: {e}") from None
  state = nnx.state(model, nnx.Param)
  flat = nnx.to_flat_state(state)
  want = {_key(p) for p, _ in flat}
  if set(stored) != want:
    missing = sorted(want - set(stored))[:3]
    extra = sorted(set(stored) - want)[:3]
    raise ExportError(
      f"{path} does not fit the model in {MODEL_FILE} "
      f"(missing {missing}, unexpected {extra})"
    )
  for p, v in flat:
    a = stored[_key(p)]
    if meta.get("dtype") == "bfloat16":
      a = a.view(ml_dtypes.bfloat16)
    if a.shape != v.get_value().shape:
      raise ExportError(
        f"{path}: {_key(p)} has shape {list(a.shape)}, the "
        f"model expects {list(v.get_value().shape)}"
      )
    v.set_value(jax.numpy.asarray(a, jax.numpy.float32))
  nnx.update(model, nnx.from_flat_state(flat))
  return model, config
