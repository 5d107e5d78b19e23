"""Fast scalar draws from a seeded `numpy.random.Generator`.

Tree sampling makes thousands of tiny random choices per example; a call into
NumPy per choice costs more than the choice itself. `HostRng` draws uniform
doubles from the generator in blocks and serves scalar draws from the block,
so all randomness still comes from one seeded generator and every run is
reproducible from its seed.
"""

from __future__ import annotations

import numpy as np


class HostRng:
  """Buffered scalar random draws from a `numpy.random.Generator`."""

  __slots__ = ("generator", "_buf", "_i", "_block")

  def __init__(self, generator: np.random.Generator, block: int = 256):
    self.generator = generator
    self._block = block
    self._buf: list[float] = []
    self._i = 0

  def random(self) -> float:
    """A float uniform in [0, 1)."""
    i = self._i
    if i >= len(self._buf):
      self._buf = self.generator.random(self._block).tolist()
      self._block = min(self._block * 2, 8192)
      i = 0
    self._i = i + 1
    return self._buf[i]

  def below(self, n: int) -> int:
    """An int uniform in [0, n); n >= 1."""
    return int(self.random() * n)

  def integers(self, low: int, high: int) -> int:
    """An int uniform in [low, high], both ends included."""
    return low + int(self.random() * (high - low + 1))

  def shuffle(self, items: list) -> None:
    """Shuffles `items` in place (Fisher-Yates)."""
    for i in range(len(items) - 1, 0, -1):
      j = int(self.random() * (i + 1))
      items[i], items[j] = items[j], items[i]


def as_host_rng(rng) -> HostRng:
  """Wraps a Generator, an int seed or a HostRng into a HostRng."""
  if isinstance(rng, HostRng):
    return rng
  if isinstance(rng, np.random.Generator):
    return HostRng(rng)
  if isinstance(rng, (int, np.integer)):
    return HostRng(np.random.default_rng(int(rng)))
  raise TypeError(
    f"expected a numpy Generator, HostRng or int seed, got {type(rng).__name__}"
  )
