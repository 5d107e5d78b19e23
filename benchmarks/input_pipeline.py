"""Host input pipeline: batches per second from the worker pool, and the
share of training time spent waiting for data.

  python -m benchmarks.input_pipeline [--lang=csg2d --batch=32]

Measures examples/s delivered by `data_gen.pool.BatchPool` with 1, 2 and 4
workers (timed from the first batch, so batches already buffered by then
count), then runs a short real training run
of the tiny policy and reports its data-wait fraction.
"""

import tempfile
import time

from absl import app, flags

from benchmarks import common as bench
from treediff_jax.dsl.languages import NAMES

_LANG = flags.DEFINE_enum("lang", "csg2d", NAMES, "Language.")
_BATCH = flags.DEFINE_integer("batch", 32, "Batch size.")
_BATCHES = flags.DEFINE_integer("batches", 40, "Batches timed per setting.")
_STEPS = flags.DEFINE_integer("steps", 60, "Steps of the real run.")


def pool_rate(lang, batch, workers, batches):
  from data_gen.pool import BatchPool
  from data_gen.worker import ExampleConfig

  with BatchPool(
    ExampleConfig(lang=lang),
    seed=0,
    batch_size=batch,
    num_workers=workers,
    queue_size=2 * workers,
  ) as pool:
    next(pool)  # workers started and imported
    t = time.perf_counter()
    for _ in range(batches):
      next(pool)
    return batches * batch / (time.perf_counter() - t)


def main(argv):
  del argv
  figures = {"lang": _LANG.value, "batch": _BATCH.value}
  for workers in (1, 2, 4):
    figures[f"workers_{workers}_examples_per_s"] = round(
      pool_rate(_LANG.value, _BATCH.value, workers, _BATCHES.value), 1
    )
    print(
      f"{workers} workers: "
      f"{figures[f'workers_{workers}_examples_per_s']} examples/s"
    )
  from treediff_jax.configs import common
  from treediff_jax.trainers import policy

  config = common.policy_config(_LANG.value, "tiny", _BATCH.value, _STEPS.value)
  config.log_every = max(1, _STEPS.value // 2)
  # One step shape, as in the tiny CPU configs: no compilation inside the
  # timed half of the run.
  config.input.sort_chunk = 1
  config.input.length_bucket = 0
  config.evals.every = 0
  config.ckpt.every = 10**9
  with tempfile.TemporaryDirectory() as workdir:
    last = policy.train_and_evaluate(config, workdir)
  figures["train_examples_per_s_tiny"] = round(last["examples_per_s"], 1)
  figures["data_wait_fraction_tiny"] = round(last["data_wait_fraction"], 3)
  bench.print_result(figures)


if __name__ == "__main__":
  app.run(main)
