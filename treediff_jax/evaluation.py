"""Solve rate against nodes expanded: a solver run over a test set for
several seeds (what `launch.evaluate` does, as a library function)."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from treediff_jax.dsl.languages import get_language
from treediff_jax.dsl.tokenizer import Tokenizer


def pad_batch(images: np.ndarray, size: int) -> np.ndarray:
  """images [n, ...] with n <= size -> [size, ...], the last one repeated,
  so every call of the jitted search sees one batch shape."""
  extra = np.repeat(images[-1:], size - len(images), axis=0)
  return np.concatenate([images, extra])


def run_solver(
  solver,
  images: np.ndarray,
  names: list[str],
  seeds: list[int],
  batch: int,
  progress: Callable | None = None,
) -> list[dict]:
  """Solves every image once per seed.

  Args:
    solver: a `search.methods.Solver` (name, lang, solve).
    images: [N, H, W, C] float32 targets in [0, 1].
    names: N problem names.
    seeds: seeds; batch i of seed s uses key s * 1,000,003 + i.
    batch: images per call (the last batch is padded).
    progress: optional progress(seed, done, total, solved).

  Returns:
    One record per (seed, problem): seed, index, name, solved, nodes,
    steps, goal_value, wall_s (a batch's time shared evenly among its
    problems; compilation excluded: one untimed call comes first) and the
    program text.
  """
  tok = Tokenizer(get_language(solver.lang))
  problems = []
  [np.asarray(x) for x in solver.solve(pad_batch(images[:batch], batch), key=0)]
  for seed in seeds:
    solved = 0
    if progress:
      progress(seed, 0, len(images), 0)
    for i in range(0, len(images), batch):
      chunk = images[i : i + batch]
      n = len(chunk)
      t0 = time.perf_counter()
      r = solver.solve(pad_batch(chunk, batch), key=seed * 1_000_003 + i)
      r = [np.asarray(x) for x in r]
      wall = (time.perf_counter() - t0) / n
      for j in range(n):
        problems.append(
          dict(
            seed=seed,
            index=i + j,
            name=names[i + j],
            solved=bool(r[1][j]),
            nodes=int(r[2][j]),
            steps=int(r[3][j]),
            goal_value=float(r[4][j]) if np.isfinite(r[4][j]) else None,
            wall_s=wall,
            program=tok.decode_text(r[0][j]),
          )
        )
        solved += bool(r[1][j])
      if progress:
        progress(seed, i + n, len(images), solved)
  return problems


def solve_rates(problems: list[dict], budgets, seeds) -> dict:
  """{budget: {mean, std, per_seed}}: the share of problems solved within
  each node budget, per seed, from `run_solver`'s records."""
  out = {}
  for b in budgets:
    per_seed = []
    for s in seeds:
      rows = [p for p in problems if p["seed"] == s]
      per_seed.append(
        float(np.mean([p["solved"] and p["nodes"] <= b for p in rows]))
      )
    out[str(b)] = dict(
      mean=float(np.mean(per_seed)),
      std=float(np.std(per_seed)),
      per_seed=per_seed,
    )
  return out
