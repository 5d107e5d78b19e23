"""Samples a test set of target programs and their images.

  python -m launch.make_testset --lang=csg2d --n=256 --kind=indist|hard \
      [--sketch] --seed=S --out=FILE.npz [--overwrite]

FILE.npz holds `programs` (text), `images` (uint8 [N, H, W, C]), `lang`
and `info` (JSON: how it was drawn; for `hard`, the LZ4 cut in bytes).
`.npz` is added to a name without it. An existing file is replaced only
with --overwrite; the file is written whole (launch/outputs.py).
"""

import json
import os

from absl import app, flags

from launch import common, outputs

_LANG = common.define_lang_flag()
_N = flags.DEFINE_integer("n", 256, "Number of test targets.")
_KIND = flags.DEFINE_enum("kind", "indist", ["indist", "hard"], "Which set.")
_SKETCH = flags.DEFINE_bool("sketch", False, "CSG2D sketches as targets.")
_SEED = flags.DEFINE_integer("seed", 0, "Sampler seed.")
_POOL = flags.DEFINE_integer("pool", 0, "Pool size for --kind=hard (20 n).")
_OUT = flags.DEFINE_string("out", None, "Output .npz file.")
_OVERWRITE = flags.DEFINE_bool(
  "overwrite", False, "Replace an existing --out file."
)


def main(argv):
  del argv
  lang = common.language_or_exit(_LANG.value)
  if not _OUT.value:
    common.exit_with("--out is required")
  if _N.value < 1:
    common.exit_with(f"--n must be >= 1, got {_N.value}")
  if _POOL.value < 0:
    common.exit_with(f"--pool must be >= 0 (0: 20 n), got {_POOL.value}")
  if _POOL.value and _KIND.value != "hard":
    common.exit_with("--pool is for --kind=hard")
  if _POOL.value and _POOL.value < _N.value:
    common.exit_with(
      f"--pool={_POOL.value} must hold at least --n={_N.value} programs"
    )
  if _SKETCH.value and lang.name != "csg2d":
    common.exit_with(f"--sketch targets exist for csg2d only, not {lang.name}")
  common.check_seed(_SEED.value)
  out = _OUT.value
  if os.path.isdir(out):
    common.exit_with(f"--out={out} is a folder; name a .npz file")
  if not (out.endswith(".npz") or out.endswith(("/", os.sep))):
    out += ".npz"
  if os.path.basename(out) == ".npz":
    common.exit_with(f"--out={_OUT.value} names no file (only .npz)")
  outs = outputs.Outputs(_OVERWRITE.value)
  path = outs.file("--out", out)
  common.quiet_jax_logs()
  from treediff_jax import testsets

  try:
    ts, info = testsets.make_testset(
      lang.name, _N.value, _KIND.value, _SEED.value, _SKETCH.value, _POOL.value
    )
  except ValueError as e:
    common.exit_with(str(e))
  with outs:
    outs.write(path, lambda f: testsets.save_testset(f, ts, info))
    outs.commit()
  summary = {k: v for k, v in info.items() if k != "lz4_sizes"}
  print(json.dumps(dict(out=out, n=len(ts.images), **summary)))


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags_or_exit)
