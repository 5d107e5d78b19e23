"""Samples a test set of target programs and their images.

  python -m launch.make_testset --lang=csg2d --n=256 --kind=indist|hard \
      [--sketch] --seed=S --out=FILE.npz

FILE.npz holds `programs` (text), `images` (uint8 [N, H, W, C]), `lang`
and `info` (JSON: how it was drawn; for `hard`, the LZ4 cut in bytes).
"""

import json
import os

from absl import app, flags

from launch import common

_LANG = common.define_lang_flag()
_N = flags.DEFINE_integer("n", 256, "Number of test targets.")
_KIND = flags.DEFINE_enum("kind", "indist", ["indist", "hard"], "Which set.")
_SKETCH = flags.DEFINE_bool("sketch", False, "CSG2D sketches as targets.")
_SEED = flags.DEFINE_integer("seed", 0, "Sampler seed.")
_POOL = flags.DEFINE_integer("pool", 0, "Pool size for --kind=hard (20 n).")
_OUT = flags.DEFINE_string("out", None, "Output .npz file.")


def main(argv):
  del argv
  lang = common.language_or_exit(_LANG.value)
  if not _OUT.value:
    common.exit_with("--out is required")
  out_dir = os.path.dirname(os.path.abspath(_OUT.value))
  if not os.path.isdir(out_dir):
    common.exit_with(f"the folder of --out={_OUT.value} does not exist")
  common.check_seed(_SEED.value)
  common.quiet_jax_logs()
  from treediff_jax import testsets

  try:
    ts, info = testsets.make_testset(
      lang.name, _N.value, _KIND.value, _SEED.value, _SKETCH.value, _POOL.value
    )
  except ValueError as e:
    common.exit_with(str(e))
  out = _OUT.value if _OUT.value.endswith(".npz") else _OUT.value + ".npz"
  testsets.save_testset(out, ts, info)
  summary = {k: v for k, v in info.items() if k != "lz4_sizes"}
  print(json.dumps(dict(out=out, n=len(ts.images), **summary)))


if __name__ == "__main__":
  app.run(main)
