"""Shared benchmark helpers: timing with medians and the JSON last line."""

import json
import os
import statistics
import time


def pin_to_one_core():
  """Pins this process to one CPU core where the OS allows it."""
  if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def rate(fn, n: int, repeats: int) -> tuple[float, list[float]]:
  """Median items/s of `fn(n)` over `repeats` runs, and every run's rate."""
  rates = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn(n)
    rates.append(n / (time.perf_counter() - t))
  return statistics.median(rates), rates


def print_result(figures: dict):
  """Prints the figures as one JSON object: the benchmark's last line."""
  print(json.dumps(figures, sort_keys=True))
