"""Host input pipeline: batches per second from the worker pool, and the
share of training time spent waiting for data.

  python -m benchmarks.input_pipeline [--lang=csg2d --batch=32]

Measures examples/s delivered by `data_gen.pool.BatchPool` with 1, 2 and 4
workers, timed from the first batch delivered over --batches more (the
consumer takes batches at once, so this is the production rate once the
workers are up; start-up is not counted), then
runs a short real training run of the tiny policy and reports its
data-wait fraction. With --grain
(needs grain: `pip install -e ".[bench]"`), also grain's multiprocess prefetch
(`MapDataset.map(make_batch).to_iter_dataset().mp_prefetch`) drawing the
same batches with the same worker counts.
"""

import tempfile
import time

from absl import app, flags

from benchmarks import common as bench
from treediff_jax.dsl.languages import NAMES

_LANG = flags.DEFINE_enum("lang", "csg2d", NAMES, "Language.")
_BATCH = flags.DEFINE_integer("batch", 32, "Batch size.")
_BATCHES = flags.DEFINE_integer("batches", 1200, "Batches timed per setting.")
_STEPS = flags.DEFINE_integer("steps", 60, "Steps of the real run.")
_GRAIN = flags.DEFINE_bool(
  "grain", False, "Also time grain's mp_prefetch (needs the bench extra)."
)


def _grain_batch(lang, batch, step):
  from data_gen.worker import ExampleConfig, make_batch

  indices = range(step * batch, (step + 1) * batch)
  return make_batch((0, 0), indices, ExampleConfig(lang=lang))


def grain_rate(lang, batch, workers, batches):
  """examples/s of grain's multiprocess prefetch over the same batches."""
  import functools

  try:
    import grain
  except ImportError:
    raise SystemExit("--grain needs grain: pip install -e '.[bench]'") from None
  ds = (
    grain.MapDataset.range(batches + 1)
    .map(functools.partial(_grain_batch, lang, batch))
    .to_iter_dataset()
    .mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
  )
  return _steady_rate(iter(ds), batch, batches)


def _steady_rate(batches_iter, batch, batches):
  """examples/s over `batches` batches drawn after the first."""
  next(batches_iter)  # workers started and imported
  t = time.perf_counter()
  for _ in range(batches):
    next(batches_iter)
  return batches * batch / (time.perf_counter() - t)


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
    return _steady_rate(pool, batch, batches)


def main(argv):
  del argv
  figures = {"lang": _LANG.value, "batch": _BATCH.value}
  for workers in (1, 2, 4):
    figures[f"workers_{workers}_examples_per_s"] = round(
      pool_rate(_LANG.value, _BATCH.value, workers, _BATCHES.value), 1
    )
    grain_part = ""
    if _GRAIN.value:
      rate = grain_rate(_LANG.value, _BATCH.value, workers, _BATCHES.value)
      figures[f"grain_workers_{workers}_examples_per_s"] = round(rate, 1)
      grain_part = f"; grain {round(rate, 1)}"
    print(
      f"{workers} workers: "
      f"{figures[f'workers_{workers}_examples_per_s']} examples/s{grain_part}"
    )
  from treediff_jax.configs import common
  from treediff_jax.trainers import policy

  config = common.policy_config(_LANG.value, "tiny", _BATCH.value, _STEPS.value)
  config.log_every = max(1, _STEPS.value // 2)
  # One step shape, as in the tiny CPU configs: no compilation inside the
  # timed half of the run.
  common.full_length_sequences(config)
  config.evals.every = 0
  config.ckpt.every = 10**9
  with tempfile.TemporaryDirectory() as workdir:
    last = policy.train_and_evaluate(config, workdir)
  figures["train_examples_per_s_tiny"] = round(last["examples_per_s"], 1)
  figures["data_wait_fraction_tiny"] = round(last["data_wait_fraction"], 3)
  bench.print_result(figures)


if __name__ == "__main__":
  app.run(main)
