"""The weights shipped in treediff_jax/weights: each loads by name with the
current code and runs one solve step; the CSG2D policy with the default
search solves fixed targets (slow)."""

import numpy as np
import pytest

from treediff_jax import loading, testsets
from treediff_jax.search import methods

# (shipped name, kind, a method that uses it)
SHIPPED = [
  ("csg2d", "policy", "tree_diffusion_search"),
  ("csg2d", "value", "tree_diffusion_search"),
  ("csg2d/ar", "policy", "ar"),
  ("csg2d/repl_flow", "policy", "repl_flow"),
]


def _targets(n, seed):
  t, _ = testsets.make_testset("csg2d", n, "indist", seed)
  return t.images


def test_every_expected_model_ships():
  assert set(loading.shipped_names()) >= {
    "csg2d",
    "csg2d/ar",
    "csg2d/repl_flow",
  }


@pytest.mark.parametrize("name, kind, method", SHIPPED)
def test_shipped_model_loads_and_runs_one_solve_step(name, kind, method):
  load = loading.load_policy if kind == "policy" else loading.load_value
  model, config = load(name)
  assert config.lang == "csg2d" and config.kind == kind
  overrides = dict(max_steps=1, max_nodes=64)
  if kind == "value":
    overrides["rank"] = "value"
  solver = methods.build(method, lang="csg2d", **overrides)
  r = solver.solve(_targets(2, 4001), key=0)
  nodes = np.asarray(r.nodes)
  assert nodes.shape == (2,) and np.all(nodes >= 1) and np.all(nodes <= 64)
  assert np.all(np.isfinite(np.asarray(r.best_goal)))


def test_shipped_policy_is_an_edit_policy_of_its_language():
  with pytest.raises(ValueError, match="holds a csg2d policy, not rainbow"):
    methods.build("tree_diffusion_search", lang="rainbow", checkpoint="csg2d")
  with pytest.raises(ValueError, match="label_mode='whole_program'"):
    methods.build("tree_diffusion_search", lang="csg2d", checkpoint="csg2d/ar")
  with pytest.raises(ValueError, match="holds a policy model, not a value"):
    loading.load_value(loading.shipped_folder("csg2d", "policy"))


# Measured with the shipped policy and the default search (RESULTS.md):
# 16 in-distribution targets of make_testset seed 4001 (never trained or
# validated on), 500 nodes, key 1: none solved (the shipped search trails
# hill climbing), mean graded goal value (IoU) of the closest programs
# 0.79. A solve count of about half of that would test nothing, so the
# bar is on the graded value, set below the measured 0.79 by more than
# its spread over the 16 targets' mean.
REGRESSION_TARGETS = 16
REGRESSION_MIN_MEAN_GOAL = 0.7


@pytest.mark.slow
def test_shipped_policy_with_the_default_search_gets_close_to_fixed_targets():
  solver = methods.build("tree_diffusion_search", lang="csg2d", max_nodes=500)
  r = solver.solve(_targets(REGRESSION_TARGETS, 4001), key=1)
  assert np.all(np.asarray(r.nodes) <= 500)
  mean_goal = float(np.mean(np.asarray(r.best_goal)))
  assert mean_goal >= REGRESSION_MIN_MEAN_GOAL, mean_goal
