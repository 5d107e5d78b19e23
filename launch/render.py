"""Renders a text file of programs (one a line) to images.

  python -m launch.render --lang=csg2d --programs=FILE --out=OUT.npz \
      [--png_dir=DIR] [--sketch --seed=0]

OUT.npz holds `images`, uint8 [N, H, W, C] (0..255) in input order, and
`programs`. A malformed line stops the run with a message naming its line
number; nothing is written then.
"""

import os
import tempfile

from absl import app, flags

from launch import common
from treediff_jax.dsl.grammar import ProgramSyntaxError

_LANG = common.define_lang_flag()
_PROGRAMS = flags.DEFINE_string(
  "programs", None, "Text file, a program a line."
)
_OUT = flags.DEFINE_string("out", None, "Output .npz file.")
_PNG_DIR = flags.DEFINE_string("png_dir", None, "Also write PNGs here.")
_SKETCH = flags.DEFINE_bool("sketch", False, "Draw CSG2D-Sketch images.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed of the sketches.")


def read_programs(path: str, grammar) -> list[str]:
  """Program lines of `path`, each checked; exits naming a bad line."""
  try:
    with open(path) as f:
      lines = f.read().split("\n")
  except OSError as e:
    common.exit_with(f"cannot read --programs={path}: {e.strerror}")
  except UnicodeDecodeError as e:
    common.exit_with(f"--programs={path} is not UTF-8 text: {e.reason}")
  if lines and lines[-1] == "":
    lines.pop()  # the final newline
  for i, line in enumerate(lines, start=1):
    try:
      grammar.parse(line)
    except ProgramSyntaxError as e:
      common.exit_with(f"{path}, line {i}: {e}")
  return lines


def main(argv):
  del argv
  lang = common.language_or_exit(_LANG.value)
  if not _PROGRAMS.value or not _OUT.value:
    common.exit_with("--programs and --out are required")
  if _SKETCH.value and lang.name != "csg2d":
    common.exit_with(f"--sketch draws CSG2D programs only, not {lang.name}")
  out_dir = os.path.dirname(os.path.abspath(_OUT.value))
  if not os.path.isdir(out_dir):
    common.exit_with(f"the folder of --out={_OUT.value} does not exist")
  if os.path.isdir(_OUT.value):
    common.exit_with(f"--out={_OUT.value} is a folder; name a .npz file")
  common.check_seed(_SEED.value)
  programs = read_programs(_PROGRAMS.value, lang.grammar)
  common.quiet_jax_logs()

  import jax
  import jax.numpy as jnp
  import numpy as np

  from treediff_jax import render as render_lib
  from treediff_jax.render import sketch as sketch_lib

  if _SKETCH.value:
    tokens = render_lib.pad_tokens(lang.name, programs)
    images = np.asarray(
      sketch_lib.sketch_jit(jnp.asarray(tokens), jax.random.key(_SEED.value))
    )
  else:
    images = render_lib.render_programs(lang.name, programs)
  images = render_lib.to_uint8(images)

  try:
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=out_dir)
    os.close(fd)
    try:
      np.savez_compressed(tmp, images=images, programs=np.asarray(programs))
      os.replace(tmp, _OUT.value)
    finally:
      if os.path.exists(tmp):
        os.unlink(tmp)
  except OSError as e:
    common.exit_with(f"cannot write --out={_OUT.value}: {e.strerror}")
  print(f"wrote {len(images)} images {images.shape[1:]} to {_OUT.value}")
  if _PNG_DIR.value:
    from PIL import Image

    try:
      os.makedirs(_PNG_DIR.value, exist_ok=True)
    except OSError as e:
      common.exit_with(
        f"cannot create --png_dir={_PNG_DIR.value}: {e.strerror}"
      )
    width = len(str(max(len(images) - 1, 0)))
    for i, im in enumerate(images):
      pixels = im[..., 0] if im.shape[-1] == 1 else im
      Image.fromarray(pixels).save(
        os.path.join(_PNG_DIR.value, f"{i:0{width}d}.png")
      )
    print(f"wrote {len(images)} PNGs to {_PNG_DIR.value}")


if __name__ == "__main__":
  app.run(main)
