"""Noises a program and prints the reverse path back to it, edit by edit.

  python -m launch.noise --lang=csg2d \
      --program='(+ (Circle 4 8 8) (Quad 8 8 4 4 H))' --steps=3 --seed=0
"""

from absl import app, flags

from launch import common
from treediff_jax.dsl import edits
from treediff_jax.dsl.grammar import ProgramSyntaxError
from treediff_jax.dsl.rng import HostRng

_LANG = common.define_lang_flag()
_PROGRAM = flags.DEFINE_string("program", None, "Program text to noise.")
_STEPS = flags.DEFINE_integer("steps", 3, "Number of mutations (t).")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.")
MAX_STEPS = 1000


def main(argv):
  del argv
  lang = common.language_or_exit(_LANG.value)
  g = lang.grammar
  if _PROGRAM.value is None:
    common.exit_with("--program is required")
  if not 0 <= _STEPS.value <= MAX_STEPS:
    common.exit_with(f"--steps must be in [0, {MAX_STEPS}], got {_STEPS.value}")
  try:
    clean = lang.parse_bounded(_PROGRAM.value)
  except ProgramSyntaxError as e:
    common.exit_with(str(e).splitlines()[0])
  import numpy as np

  rng = HostRng(np.random.default_rng(common.check_seed(_SEED.value)))
  noised, mutations = edits.noise(g, clean, _STEPS.value, rng)
  print(f"clean:  {g.to_text(clean)}")
  current = clean
  for i, m in enumerate(mutations):
    print(f"  mutation {i + 1}: {m.describe(g, current)}")
    current = m.apply(g, current)
  print(f"noised: {g.to_text(noised)}")
  path = edits.reverse_path(g, noised, clean, rng)
  if path is None:
    common.exit_with("no reverse path found within the round limit")
  print(f"reverse path ({len(path)} edits):")
  current = noised
  for i, e in enumerate(path):
    print(f"  edit {i + 1}: {e.describe(g, current)}")
    current = e.apply(g, current)
    print(f"          {g.to_text(current)}")


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags_or_exit)
