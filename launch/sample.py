"""Prints random programs of a language, one a line.

  python -m launch.sample --lang=csg2d --n=100 --min_primitives=2 \
      --max_primitives=8 --seed=0
"""

from absl import app, flags

from launch import common
from treediff_jax.dsl.rng import HostRng
from treediff_jax.dsl.sampler import sample

_LANG = common.define_lang_flag()
_N = flags.DEFINE_integer("n", 10, "Number of programs.")
_MIN = flags.DEFINE_integer("min_primitives", 2, "Fewest primitives.")
_MAX = flags.DEFINE_integer("max_primitives", 8, "Most primitives.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.")


def main(argv):
  del argv
  lang = common.language_or_exit(_LANG.value)
  g = lang.grammar
  if _N.value < 0:
    common.exit_with(f"--n must be >= 0, got {_N.value}")
  if _MIN.value < 0:
    common.exit_with(f"--min_primitives must be >= 0, got {_MIN.value}")
  import numpy as np

  rng = HostRng(np.random.default_rng(common.check_seed(_SEED.value)))
  try:
    for _ in range(_N.value):
      print(g.to_text(sample(g, g.start, _MIN.value, _MAX.value, rng)))
  except ValueError as e:
    common.exit_with(str(e))


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags_or_exit)
