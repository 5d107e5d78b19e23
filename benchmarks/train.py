"""Training throughput of the policy's jitted train step.

  python -m benchmarks.train --model=base --batch=32 [--lang=csg2d]

Times the full step (rendering the batch's images, forward, backward, AdamW)
on a fixed batch, median of --repeats steps after compiling. Baseline in the
same run: the same step with every sequence padded to 512 tokens, as the
reference implementation padded them. On a GPU it also reports model FLOPs
utilisation from XLA's cost analysis.
"""

import time

import numpy as np
from absl import app, flags

from benchmarks import common as bench
from treediff_jax.dsl.languages import NAMES

_LANG = flags.DEFINE_enum("lang", "csg2d", NAMES, "Language.")
_MODEL = flags.DEFINE_enum("model", "base", ["tiny", "small", "base"], "Size.")
_BATCH = flags.DEFINE_integer("batch", 32, "Global batch.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed steps.")
_PEAK_TFLOPS = flags.DEFINE_float(
  "peak_tflops", 0.0, "Accelerator peak (bf16 dense) for MFU; 0 = no MFU."
)


def _examples_per_s(config, batch_np, repeats):
  import jax

  from treediff_jax import sharding
  from treediff_jax.trainers import policy

  mesh = sharding.make_mesh()
  graphdef, state = policy.init_state(config, mesh)
  step = policy.make_train_step(config, graphdef, mesh)
  batch = sharding.global_batch(mesh, batch_np)
  flops = None
  try:
    cost = step.lower(state, batch).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops = float(cost.get("flops", 0.0)) or None
  except Exception:  # pylint: disable=broad-except
    pass
  state, m = step(state, batch)
  jax.block_until_ready(m)
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    state, m = step(state, batch)
    jax.block_until_ready(m)
    times.append(time.perf_counter() - t)
  sec = float(np.median(times))
  return len(batch_np["tokens"]) / sec, flops, sec


def main(argv):
  del argv
  import jax

  from data_gen.worker import make_batch
  from treediff_jax.configs import common
  from treediff_jax.trainers import policy

  config = common.policy_config(_LANG.value, _MODEL.value, _BATCH.value, 1000)
  batch = make_batch((0, 0), range(_BATCH.value), policy.example_config(config))
  rate, flops, sec = _examples_per_s(config, batch, _REPEATS.value)
  padded = dict(batch)
  for key in ("tokens", "loss_mask"):
    extra = 512 - batch[key].shape[1]
    padded[key] = np.pad(batch[key], ((0, 0), (0, extra)))
  config.model.max_len = 512
  base_rate, _, _ = _examples_per_s(config, padded, _REPEATS.value)
  figures = {
    "lang": _LANG.value,
    "model": _MODEL.value,
    "batch": _BATCH.value,
    "backend": jax.default_backend(),
    "devices": jax.device_count(),
    "examples_per_s": round(rate, 2),
    "baseline_padded512_examples_per_s": round(base_rate, 2),
    "ratio_vs_padded512": round(rate / base_rate, 2),
  }
  if flops:
    figures["tflops_per_step"] = round(flops / 1e12, 4)
    if _PEAK_TFLOPS.value > 0:
      figures["mfu"] = round(flops / sec / (_PEAK_TFLOPS.value * 1e12), 4)
  print(
    f"{_MODEL.value} policy on {_LANG.value}: {rate:.2f} examples/s "
    f"(batch {_BATCH.value}, {jax.default_backend()}); padded to 512: "
    f"{base_rate:.2f}"
  )
  bench.print_result(figures)


if __name__ == "__main__":
  app.run(main)
