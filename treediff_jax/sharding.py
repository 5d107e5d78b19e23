"""The device mesh and shardings for data-parallel training."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P


def make_mesh(devices=None) -> Mesh:
  """A 1-D ("data",) mesh over `devices` (all devices by default)."""
  devices = jax.devices() if devices is None else list(devices)
  return Mesh(np.asarray(devices), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over the "data" axis."""
  return NamedSharding(mesh, P("data"))


def global_batch(mesh: Mesh, local: dict) -> dict:
  """Host-local NumPy batch -> global jax.Arrays sharded over "data".

  Each process passes its own [B_local, ...] slice (B_local divisible by its
  local device count); the result has the global batch B_local * processes.
  """
  sharding = batch_sharded(mesh)
  return {
    k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
    for k, v in local.items()
  }
