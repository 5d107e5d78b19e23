"""Training examples for the denoising policy and the value model.

Sample a target z0; with probability rho start from a fresh random program,
otherwise from z0 noised t ~ U{1..T} times. Find the reverse path from the
start to z0, pick a uniform step i, apply the first i edits: the input is
that program and the target, the label is edit i and the value label is the
number of path steps left (docs/design.md).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from treediff_jax.dsl import edits as edits_lib
from treediff_jax.dsl.languages import Language
from treediff_jax.dsl.rng import as_host_rng
from treediff_jax.dsl.sampler import sample
from treediff_jax.dsl.tree import Node

LABEL_MODES = ("path", "last_mutation")


class TrainingExample(NamedTuple):
  """One (current, target) pair with its edit label.

  Attributes:
    target: the clean program z0.
    current: the program the policy sees.
    edit: the label, an edit of `current` (address and replacement).
    position: token index in `current` of the node the edit replaces.
    steps_left: edits from `current` to `target` on the path, >= 1 (in
      "last_mutation" mode: the number of mutations applied).
    random_start: whether the path started from a fresh random program.
  """

  target: Node
  current: Node
  edit: edits_lib.Edit
  position: int
  steps_left: int
  random_start: bool


def make_training_example(
  language: Language,
  rng,
  *,
  rho: float = 0.2,
  min_primitives: int = 2,
  max_primitives: int = 8,
  max_noise_steps: int = 5,
  small: int = edits_lib.SIGMA_SMALL,
  label_mode: str = "path",
  target_filter: Callable[[Node], bool] | None = None,
  max_tries: int = 1000,
) -> TrainingExample:
  """Samples one training example.

  Args:
    language: the language.
    rng: numpy Generator, HostRng or int seed.
    rho: probability of a fresh random start instead of a noised target.
    min_primitives: smallest target (and random start) size.
    max_primitives: largest target (and random start) size.
    max_noise_steps: t is uniform in [1, max_noise_steps].
    small: sigma_small, the largest node an edit replaces in one step.
    label_mode: "path" (default) labels a step of the reverse path;
      "last_mutation" (ablation) starts from the noised target and labels the
      inverse of the last mutation; it needs rho == 0.
    target_filter: optional predicate a target must pass (for example, "its
      render is not empty"); rejected targets are redrawn.
    max_tries: attempts before giving up.

  Raises:
    ValueError: bad settings, or no example after `max_tries` attempts.
  """
  if label_mode not in LABEL_MODES:
    raise ValueError(
      f"label_mode must be one of {LABEL_MODES}, got {label_mode!r}"
    )
  if label_mode == "last_mutation" and rho != 0:
    raise ValueError(
      "label_mode='last_mutation' has no path to a random start: set rho=0"
    )
  if not 0.0 <= rho <= 1.0:
    raise ValueError(f"rho must be in [0, 1], got {rho}")
  if max_noise_steps < 1:
    raise ValueError(f"max_noise_steps must be >= 1, got {max_noise_steps}")
  rng = as_host_rng(rng)
  g = language.grammar
  for _ in range(max_tries):
    target = sample(g, g.start, min_primitives, max_primitives, rng)
    if target_filter is not None and not target_filter(target):
      continue
    random_start = rng.random() < rho
    if random_start:
      start = sample(g, g.start, min_primitives, max_primitives, rng)
      mutations = []
    else:
      steps = rng.integers(1, max_noise_steps)
      start, mutations = edits_lib.noise(g, target, steps, rng)
    if label_mode == "last_mutation":
      if not mutations:
        continue
      before = edits_lib.apply_edits(g, target, mutations[:-1])
      label = edits_lib.invert_last_mutation(before, mutations[-1])
      return TrainingExample(
        target, start, label, label.position(g, start), len(mutations), False
      )
    path = edits_lib.reverse_path(g, start, target, rng, small)
    if not path:  # start equals target, or no path within the round limit
      continue
    i = rng.below(len(path))
    current = edits_lib.apply_edits(g, start, path[:i])
    label = path[i]
    return TrainingExample(
      target,
      current,
      label,
      label.position(g, current),
      len(path) - i,
      random_start,
    )
  raise ValueError(
    f"{language.name}: no training example in {max_tries} "
    "tries; check the sampling settings and target_filter"
  )
