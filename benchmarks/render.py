"""Rendering speed: the JAX renderer against the reference renderer.

  python -m benchmarks.render --lang=csg2d --batch=256 [--repeats=7]

Renders `batch` sampled programs (2..8 primitives) per call with the jitted
JAX renderer, and the same programs one by one with the reference renderer
(skia for CSG2D, iceberg on skia for TinySVG and Rainbow), in the same run.
The process is pinned to one core unless --all_cores. Where the renderer
asks XLA for other compiler options (`treediff_jax/xla_options.py`), the
same programs are also timed with XLA's defaults. On a GPU it also
times --gpu_batch programs per call; --nooracle leaves the reference
renderer out (for machines without the test extra).
"""

import functools
import time

import numpy as np
from absl import app, flags

from benchmarks import common
from treediff_jax.dsl.languages import NAMES, get_language
from treediff_jax.dsl.sampler import sample

_LANG = flags.DEFINE_enum("lang", "csg2d", NAMES, "Language.")
_BATCH = flags.DEFINE_integer("batch", 256, "Programs per render call.")
_REPEATS = flags.DEFINE_integer("repeats", 7, "Timed calls (median taken).")
_ORACLE_N = flags.DEFINE_integer("oracle_n", 256, "Programs for the oracle.")
_ALL_CORES = flags.DEFINE_bool("all_cores", False, "Do not pin to one core.")
_GPU_BATCH = flags.DEFINE_integer("gpu_batch", 4096, "Batch on accelerators.")
_ORACLE = flags.DEFINE_bool(
  "oracle", True, "Time the reference renderer (needs the test extra)."
)


def _time_calls(fn, tokens, repeats):
  import jax

  jax.block_until_ready(fn(tokens))  # compile
  rates = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn(tokens))
    rates.append(len(tokens) / (time.perf_counter() - t))
  return float(np.median(rates))


def main(argv):
  del argv
  if not _ALL_CORES.value:
    common.pin_to_one_core()
  import jax
  import jax.numpy as jnp

  from treediff_jax import render as render_lib
  from treediff_jax import xla_options

  name = _LANG.value
  lang = get_language(name)
  rng = np.random.default_rng(0)
  programs = [
    sample(lang.grammar, "s", 2, 8, rng)
    for _ in range(max(_BATCH.value, _ORACLE_N.value))
  ]
  tokens = render_lib.pad_tokens(name, programs)
  fn = render_lib.renderer(name)
  figures = {
    "lang": name,
    "batch": _BATCH.value,
    "backend": jax.default_backend(),
  }
  figures["images_per_s"] = round(
    _time_calls(fn, jnp.asarray(tokens[: _BATCH.value]), _REPEATS.value), 1
  )
  if xla_options.renderer_options(name):
    # Same-run baseline: the renderer compiled with XLA's default options.
    plain = jax.jit(functools.partial(render_lib.render, name))
    rate = _time_calls(
      plain, jnp.asarray(tokens[: _BATCH.value]), _REPEATS.value
    )
    figures["xla_default_options_images_per_s"] = round(rate, 1)

  key = "skia" if name == "csg2d" else "iceberg"
  if _ORACLE.value:
    from treediff_jax.render import reference

    oracle_rates = []
    for _ in range(3):
      t = time.perf_counter()
      for p in programs[: _ORACLE_N.value]:
        reference.render(name, p)
      oracle_rates.append(_ORACLE_N.value / (time.perf_counter() - t))
    oracle = float(np.median(oracle_rates))
    figures[f"{key}_images_per_s"] = round(oracle, 1)
    figures[f"ratio_vs_{key}"] = round(figures["images_per_s"] / oracle, 2)

  if jax.default_backend() != "cpu":
    big = np.concatenate([tokens] * (-(-_GPU_BATCH.value // len(tokens))))
    figures["gpu_batch"] = _GPU_BATCH.value
    figures["gpu_images_per_s"] = round(
      _time_calls(fn, jnp.asarray(big[: _GPU_BATCH.value]), _REPEATS.value), 1
    )
  summary = (
    f"{name}: JAX {figures['images_per_s']:.0f} images/s at batch "
    f"{_BATCH.value} on {figures['backend']}"
  )
  if _ORACLE.value:
    summary += (
      f"; {key} {figures[f'{key}_images_per_s']:.0f} images/s one by one; "
      f"ratio {figures[f'ratio_vs_{key}']:.2f}"
    )
  if "gpu_images_per_s" in figures:
    summary += (
      f"; {figures['gpu_images_per_s']:.0f} images/s at batch "
      f"{figures['gpu_batch']}"
    )
  print(summary)
  common.print_result(figures)


if __name__ == "__main__":
  app.run(main)
