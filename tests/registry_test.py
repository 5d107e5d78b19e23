"""The method registry: one entry per method, read by every entry point."""

import dataclasses

import numpy as np
import pytest

from treediff_jax import evaluation, render
from treediff_jax.search import methods, propose, registry
from treediff_jax.search.beam import SearchConfig


def test_a_new_method_is_one_entry_and_runs_like_the_others():
  """Uniform proposals ranked by edit log-probability, registered here
  only, solve through the code path of `launch.evaluate`."""
  registry.register(
    registry.Method(
      "uniform_log_prob",
      "uniform random mutations ranked by their log-probability",
      SearchConfig(beam=4, k=48, max_steps=30, rank="log_prob"),
      lambda a: propose.uniform_proposer(a.lang, a.config.k),
      label_mode=None,
    )
  )
  try:
    assert "uniform_log_prob" in registry.names()
    solver = methods.build("uniform_log_prob", lang="csg2d", max_nodes=300)
    assert solver.config.rank == "log_prob" and solver.config.max_nodes == 300
    programs = ["(Circle 8 8 4)", "(Circle 8 8 5)"]
    images = np.asarray(render.render_programs("csg2d", programs))
    problems = evaluation.run_solver(solver, images, programs, [0, 1], 2)
    assert len(problems) == 4
    assert all(p["nodes"] <= 300 for p in problems)
    rates = evaluation.solve_rates(problems, [300], [0, 1])
    assert 0.0 <= rates["300"]["mean"] <= 1.0
  finally:
    registry.unregister("uniform_log_prob")
  assert "uniform_log_prob" not in registry.names()


def test_the_registry_names_every_method_once():
  assert registry.names() == (
    "tree_diffusion",
    "tree_diffusion_search",
    "hill_climb",
    "ar",
    "repl_flow",
  )
  with pytest.raises(ValueError, match="is registered"):
    registry.register(registry.get("hill_climb"))
  with pytest.raises(ValueError, match="unknown method 'nope'.*hill_climb"):
    registry.get("nope")


@pytest.mark.parametrize(
  "method, lang, config, message",
  [
    ("repl_flow", "rainbow", {}, "defined for csg2d"),
    ("repl_flow", "csg2d", dict(rank="value"), "log_prob or goal"),
    ("hill_climb", "csg2d", dict(rank="log_prob"), "ranks by goal"),
    ("ar", "csg2d", dict(beam=4), "needs beam=1"),
    ("hill_climb", "csg2d", dict(uniform_share=0.5), "uniform_share"),
    ("tree_diffusion_search", "csg2d", dict(rank="value"), "value model"),
  ],
)
def test_settings_that_do_not_fit_a_method_are_named(
  method, lang, config, message
):
  spec = registry.get(method)
  search = dataclasses.replace(spec.search, **config)
  with pytest.raises(ValueError, match=message):
    spec.check(lang, search, registry.Models(policy=object()))
  if spec.label_mode is not None:
    with pytest.raises(ValueError, match="needs a policy"):
      spec.check("csg2d", spec.search, registry.Models())


def test_methods_without_a_model_refuse_checkpoints():
  with pytest.raises(ValueError, match="uses no trained model"):
    methods.build("hill_climb", lang="csg2d", checkpoint="/nowhere")
  with pytest.raises(ValueError, match="needs a language"):
    methods.build("hill_climb")
