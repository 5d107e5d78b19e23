"""XLA compiler options for the jitted renderers.

XLA's CPU backend vectorises its loops 256 bits wide unless told otherwise.
On a CPU with AVX-512, the CSG2D renderer's pixel loop (ten distance fields
per pixel) runs about 20% faster 512 bits wide; the TinySVG and Rainbow
renderers, the train step and the search gained nothing measurable, so only
CSG2D's standalone renderer asks for it (BENCHMARKS.md). The option changes
how loops are vectorised, not what they compute.
"""

from __future__ import annotations

import functools

import jax

_WIDE_VECTOR_LANGUAGES = ("csg2d",)


@functools.lru_cache(maxsize=None)
def _host_has_avx512() -> bool:
  try:
    with open("/proc/cpuinfo") as f:
      return any(line.startswith("flags") and " avx512f" in line for line in f)
  except OSError:
    return False


def renderer_options(lang: str) -> dict[str, str] | None:
  """`compiler_options` for `jax.jit` of language `lang`'s renderer (its
  canonical name): 512-bit vectors for CSG2D where the default backend is a
  CPU with AVX-512, else None (XLA's defaults)."""
  if lang not in _WIDE_VECTOR_LANGUAGES:
    return None
  if jax.default_backend() != "cpu" or not _host_has_avx512():
    return None
  return {"xla_cpu_prefer_vector_width": "512"}
