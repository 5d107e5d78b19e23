"""Training throughput of the policy's jitted train step.

  python -m benchmarks.train --model=base --batch=32 [--lang=csg2d]

Times the full step (rendering the batch's images, forward, backward, AdamW)
on the batches the trainer sees: one chunk of --sort_chunk batches drawn
together, dealt out by sequence length and trimmed to multiples of
--length_bucket tokens (data_gen/lengths.py, the config defaults). Every
distinct shape is compiled and run once first; then each timed pass runs
the whole chunk, and examples/s is the median over --repeats passes.
Baselines in the same run, on the chunk's first stream-order batch: every
sequence padded to 512 tokens, as the reference implementation padded them,
and padded to the language's full sequence length (no trimming). On a GPU
it also reports model FLOPs utilisation from XLA's cost analysis.
"""

import concurrent.futures
import os
import time

import numpy as np
from absl import app, flags

from benchmarks import common as bench
from treediff_jax.dsl.languages import NAMES

_LANG = flags.DEFINE_enum("lang", "csg2d", NAMES, "Language.")
_MODEL = flags.DEFINE_enum("model", "base", ["tiny", "small", "base"], "Size.")
_BATCH = flags.DEFINE_integer("batch", 32, "Global batch.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed passes over the chunk.")
_BASELINE_REPEATS = flags.DEFINE_integer(
  "baseline_repeats", 3, "Timed steps of each fixed-batch baseline."
)
_SORT_CHUNK = flags.DEFINE_integer(
  "sort_chunk", None, "Batches per length-sorted chunk (config default)."
)
_LENGTH_BUCKET = flags.DEFINE_integer(
  "length_bucket", None, "Trim granularity in tokens (config default)."
)
_DTYPE = flags.DEFINE_enum(
  "dtype", "float32", ["float32", "bfloat16"], "Model compute dtype."
)
_PEAK_TFLOPS = flags.DEFINE_float(
  "peak_tflops", 0.0, "Accelerator peak (bf16 dense) for MFU; 0 = no MFU."
)


_COMPILE_THREADS = 4


def _examples_per_s(config, batches, repeats):
  """Median examples/s of passes over `batches` (dicts of [B, ...] arrays),
  the XLA FLOPs of one pass (None where unknown) and the pass time."""
  import jax

  from treediff_jax import sharding
  from treediff_jax.trainers import policy

  mesh = sharding.make_mesh()
  graphdef, state = policy.init_state(config, mesh)
  step = policy.make_train_step(config, graphdef, mesh)
  batches = [sharding.global_batch(mesh, b) for b in batches]
  # One compile per length, up to _COMPILE_THREADS at a time (each compile
  # of the base model's step holds a few GB of host memory): the compiled
  # executable both runs the step and gives XLA's FLOP count (calling the
  # jitted function after lowering would compile again).
  first = {}  # one batch of each sequence length
  for batch in batches:
    first.setdefault(batch["tokens"].shape[1], batch)
  threads = min(len(first), os.cpu_count() or 1, _COMPILE_THREADS)
  with concurrent.futures.ThreadPoolExecutor(threads) as pool:
    lowered = [step.lower(state, b) for b in first.values()]
    compiled = dict(zip(first, pool.map(lambda x: x.compile(), lowered)))
  flops_of = {}
  for length, executable in compiled.items():
    try:
      cost = executable.cost_analysis()
      cost = cost[0] if isinstance(cost, list) else cost
      flops_of[length] = float(cost.get("flops", 0.0))
    except Exception:
      flops_of[length] = 0.0
    state, m = executable(state, first[length])  # warm this shape
    jax.block_until_ready(m)
  flops = sum(flops_of[b["tokens"].shape[1]] for b in batches)
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    for batch in batches:
      state, m = compiled[batch["tokens"].shape[1]](state, batch)
    jax.block_until_ready(m)
    times.append(time.perf_counter() - t)
  sec = float(np.median(times))
  examples = sum(len(b["tokens"]) for b in batches)
  return examples / sec, flops or None, sec


def main(argv):
  del argv
  import jax

  from data_gen import lengths
  from data_gen.worker import make_batch
  from treediff_jax.configs import common
  from treediff_jax.trainers import policy

  config = common.policy_config(_LANG.value, _MODEL.value, _BATCH.value, 1000)
  config.model.dtype = _DTYPE.value
  if _SORT_CHUNK.value is not None:
    config.input.sort_chunk = _SORT_CHUNK.value
  if _LENGTH_BUCKET.value is not None:
    config.input.length_bucket = _LENGTH_BUCKET.value
  examples = policy.example_config(config)
  k, bucket = config.input.sort_chunk, config.input.length_bucket
  chunk = lengths.chunk_batches((0, 0), 0, _BATCH.value, k, examples, bucket)
  rate, flops, sec = _examples_per_s(config, chunk, _REPEATS.value)
  full = make_batch((0, 0), range(_BATCH.value), examples)
  full_rate, _, _ = _examples_per_s(config, [full], _BASELINE_REPEATS.value)
  config.model.max_len = 512
  padded = lengths.pad_sequences(full, 512)
  base_rate, _, _ = _examples_per_s(config, [padded], _BASELINE_REPEATS.value)
  figures = {
    "lang": _LANG.value,
    "model": _MODEL.value,
    "dtype": _DTYPE.value,
    "batch": _BATCH.value,
    "sort_chunk": k,
    "length_bucket": bucket,
    "mean_padded_length": float(np.mean([b["tokens"].shape[1] for b in chunk])),
    "backend": jax.default_backend(),
    "devices": jax.device_count(),
    "examples_per_s": round(rate, 2),
    "full_length_examples_per_s": round(full_rate, 2),
    "baseline_padded512_examples_per_s": round(base_rate, 2),
    "ratio_vs_padded512": round(rate / base_rate, 2),
  }
  if flops:
    figures["tflops_per_example"] = round(flops / 1e12 / (k * _BATCH.value), 5)
    if _PEAK_TFLOPS.value > 0:
      figures["mfu"] = round(flops / sec / (_PEAK_TFLOPS.value * 1e12), 4)
  print(
    f"{_MODEL.value} policy on {_LANG.value}: {rate:.2f} examples/s "
    f"(batch {_BATCH.value}, {k} batches sorted by length, trimmed to "
    f"{bucket}-token multiples, {jax.default_backend()}); full length "
    f"{full_rate:.2f}; padded to 512: {base_rate:.2f}"
  )
  bench.print_result(figures)


if __name__ == "__main__":
  app.run(main)
