"""XLA compiler options for the jitted renderers.

Two of XLA's CPU defaults cost the CSG2D renderer's pixel loop (ten distance
fields folded by min and max per pixel) much of its speed:
- min and max are lowered so that a NaN operand propagates, which takes
  extra compares and selects per operation. The CSG2D renderer never sees a
  NaN (its inputs are table lookups of finite values, its square roots take
  sums of squares), so the fast lowering gives the same images;
- loops are vectorised 256 bits wide; on a CPU with AVX-512, 512 bits is
  faster. This changes how loops run, not what they compute.
Measured on one core, batch 256, in one run: 13,900-14,600 images/s with the
defaults, 20,400-22,800 with fast min/max, 21,400-23,800 with both
(BENCHMARKS.md). The TinySVG and Rainbow renderers gained nothing from
either; the train step and the search spend a small share of their time
rendering (wider vectors alone left both unchanged). They keep XLA's
defaults.
"""

from __future__ import annotations

import functools

import jax


@functools.lru_cache(maxsize=None)
def _host_has_avx512() -> bool:
  try:
    with open("/proc/cpuinfo") as f:
      return any(line.startswith("flags") and " avx512f" in line for line in f)
  except OSError:
    return False


def renderer_options(lang: str) -> dict[str, str | bool] | None:
  """`compiler_options` for `jax.jit` of language `lang`'s renderer (its
  canonical name): for CSG2D on a CPU backend, fast min/max and, where the
  CPU has AVX-512, 512-bit vectors; else None (XLA's defaults)."""
  if lang != "csg2d" or jax.default_backend() != "cpu":
    return None
  options: dict[str, str | bool] = {"xla_cpu_enable_fast_min_max": True}
  if _host_has_avx512():
    options["xla_cpu_prefer_vector_width"] = "512"
  return options
