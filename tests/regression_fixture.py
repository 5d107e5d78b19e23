"""Fixed-seed results of every search method with tiny random-weight
models, and the first losses of a tiny training run: the regression
fixture that refactors must reproduce (tests/data/regression.json).

  python -m tests.regression_fixture   # rewrites the fixture
"""

from __future__ import annotations

import json
import os

import numpy as np

FIXTURE = os.path.join(os.path.dirname(__file__), "data", "regression.json")
LANG = "csg2d"
NUM_TARGETS = 3


def _targets():
  from treediff_jax import render
  from treediff_jax.dsl.languages import get_language
  from treediff_jax.dsl.sampler import sample

  grammar = get_language(LANG).grammar
  rng = np.random.default_rng(123)
  texts = [
    grammar.to_text(sample(grammar, "s", 1, 3, rng)) for _ in range(NUM_TARGETS)
  ]
  return texts, np.asarray(render.render_programs(LANG, texts))


def _models():
  from flax import nnx

  from treediff_jax.model_configs import for_language
  from treediff_jax.models import PolicyModel, ValueModel

  return (
    PolicyModel(for_language(LANG, "tiny"), rngs=nnx.Rngs(0)),
    ValueModel(for_language(LANG, "tiny"), rngs=nnx.Rngs(1)),
  )


def search_results() -> dict:
  """{method: {programs, solved, nodes}} for fixed seeds and targets."""
  import dataclasses

  from treediff_jax.dsl.languages import get_language
  from treediff_jax.dsl.tokenizer import Tokenizer
  from treediff_jax.search.beam import SearchConfig
  from treediff_jax.search.solver import make_solver

  _, targets = _targets()
  policy, value = _models()
  tok = Tokenizer(get_language(LANG))
  small = dict(max_nodes=120, max_steps=8)
  runs = {
    "tree_diffusion_search": (
      "tree_diffusion",
      SearchConfig(beam=8, k=3, rank="value", **small),
      dict(policy=policy, value=value),
    ),
    "tree_diffusion_log_prob": (
      "tree_diffusion",
      SearchConfig(beam=8, k=3, rank="log_prob", **small),
      dict(policy=policy),
    ),
    "hill_climb": (
      "hill_climb",
      SearchConfig(beam=4, k=12, rank="goal", **small),
      {},
    ),
    "ar": (
      "ar",
      SearchConfig(beam=1, k=16, rank="log_prob", dedupe=False, **small),
      dict(policy=policy),
    ),
    "repl_flow": (
      "repl_flow",
      SearchConfig(beam=8, k=3, rank="log_prob", **small),
      dict(policy=policy),
    ),
  }
  out = {}
  for name, (method, config, models) in runs.items():
    solve = make_solver(LANG, config, method, **models)
    r = solve(targets, key=7)
    out[name] = dict(
      programs=[
        tok.decode_text(np.asarray(row)) for row in np.asarray(r.programs)
      ],
      solved=np.asarray(r.solved).tolist(),
      nodes=np.asarray(r.nodes).tolist(),
    )
  del dataclasses
  return out


def training_losses(workdir: str) -> list[float]:
  """Losses of the first 4 steps of the tiny trainer-test config."""
  from tests import train_tiny_config
  from treediff_jax.trainers import policy

  config = train_tiny_config.get_config("steps=4")
  config.log_every = 1
  config.ckpt.async_save = False
  policy.train_and_evaluate(config, workdir)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line)["loss"] for line in f if "loss" in line]


def compute(workdir: str) -> dict:
  return dict(search=search_results(), losses=training_losses(workdir))


if __name__ == "__main__":
  import tempfile

  with tempfile.TemporaryDirectory() as d:
    result = compute(d)
  with open(FIXTURE, "w") as f:
    json.dump(result, f, indent=1)
  print(json.dumps(result, indent=1))
