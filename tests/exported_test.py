"""Exported models (parameters only) and loading shipped weights by name."""

import json

import jax
import numpy as np
import pytest
from flax import nnx

from treediff_jax import checkpointing, exported, loading
from treediff_jax.configs import common
from treediff_jax.model_configs import from_training_config
from treediff_jax.models import PolicyModel, ValueModel
from treediff_jax.search import methods


def _params(model):
  return jax.tree.leaves(nnx.state(model, nnx.Param))


@pytest.mark.parametrize("dtype, atol", [("float32", 0.0), ("bfloat16", 2e-2)])
def test_export_round_trip(tmp_path, dtype, atol):
  config = common.policy_config("rainbow", "tiny")
  config.input.blank_current = True
  model = PolicyModel(from_training_config(config), rngs=nnx.Rngs(3))
  exported.save(model, config, str(tmp_path), dtype, step=7)
  back, back_config = loading.load_policy(str(tmp_path))
  assert back.config == model.config and back.config.blank_current
  assert back_config.lang == "rainbow"
  for a, b in zip(_params(model), _params(back)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=atol)
  info = json.loads((tmp_path / "model.json").read_text())
  assert info["step"] == 7 and info["dtype"] == dtype
  with pytest.raises(ValueError, match="holds a policy model, not a value"):
    loading.load_value(str(tmp_path))


def test_exports_that_do_not_fit_are_named(tmp_path):
  config = common.value_config("csg2d", "tiny")
  model = ValueModel(from_training_config(config), rngs=nnx.Rngs(0))
  exported.save(model, config, str(tmp_path))
  info = json.loads((tmp_path / "model.json").read_text())
  info["training_config"]["model"]["size"] = "small"
  (tmp_path / "model.json").write_text(json.dumps(info))
  with pytest.raises(exported.ExportError, match="does not fit"):
    loading.load_value(str(tmp_path))
  (tmp_path / "model.json").write_text("{")
  with pytest.raises(exported.ExportError, match="model.json is not valid"):
    loading.load_value(str(tmp_path))


def test_unknown_shipped_names_are_named():
  with pytest.raises(
    checkpointing.CheckpointNotFoundError, match="no shipped policy weights"
  ):
    loading.load_policy("tinysvg/nothing")


def test_methods_without_a_checkpoint_need_a_language():
  with pytest.raises(ValueError, match="or --lang"):
    methods.build("tree_diffusion_search")
  assert methods.shipped_policy("csg2da", "whole_program") == "csg2d/ar"
