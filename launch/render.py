"""Renders a text file of programs (one a line) to images.

  python -m launch.render --lang=csg2d --programs=FILE --out=OUT.npz \
      [--png_dir=DIR] [--sketch --seed=0] [--overwrite]

OUT.npz holds `images`, uint8 [N, H, W, C] (0..255) in input order, and
`programs`. A malformed line, or one over the language's token budget,
stops the run with a message naming its line number. Every output is
checked before any work (launch/outputs.py) and written whole at the end:
nothing is written when the run fails, and an existing file is replaced
only with --overwrite (an earlier run's PNGs in --png_dir excepted; the
program file never).
"""

import os

from absl import app, flags

from launch import common, outputs
from treediff_jax.dsl.grammar import ProgramSyntaxError

_LANG = common.define_lang_flag()
_PROGRAMS = flags.DEFINE_string(
  "programs", None, "Text file, a program a line."
)
_OUT = flags.DEFINE_string("out", None, "Output .npz file.")
_PNG_DIR = flags.DEFINE_string("png_dir", None, "Also write PNGs here.")
_SKETCH = flags.DEFINE_bool("sketch", False, "Draw CSG2D-Sketch images.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed of the sketches.")
_OVERWRITE = flags.DEFINE_bool(
  "overwrite", False, "Replace existing output files (never --programs)."
)


def read_programs(path: str, lang) -> list[str]:
  """Program lines of `path`, each checked (the token budget first);
  exits naming a bad line."""
  if os.path.isdir(path):
    common.exit_with(f"--programs={path} is a folder; name a text file")
  try:
    with open(path, "rb") as f:
      head = f.read(4)
  except OSError as e:
    common.exit_with(f"cannot read --programs={path}: {e.strerror}")
  if head.startswith((b"\x89PNG", b"\xff\xd8\xff")):
    common.exit_with(
      f"--programs={path} is an image, not a text file of programs "
      "(launch.solve --images finds programs for images)"
    )
  try:
    with open(path, encoding="utf-8") as f:
      lines = f.read().split("\n")
  except OSError as e:
    common.exit_with(f"cannot read --programs={path}: {e.strerror}")
  except UnicodeDecodeError as e:
    common.exit_with(f"--programs={path} is not UTF-8 text: {e.reason}")
  if lines and lines[-1] == "":
    lines.pop()  # the final newline
  if not lines:
    common.exit_with(f"--programs={path} holds no programs")
  for i, line in enumerate(lines, start=1):
    try:
      lang.parse_bounded(line)
    except ProgramSyntaxError as e:
      common.exit_with(f"{path}, line {i}: {str(e).splitlines()[0]}")
  return lines


def main(argv):
  del argv
  lang = common.language_or_exit(_LANG.value)
  if not _PROGRAMS.value or not _OUT.value:
    common.exit_with("--programs and --out are required")
  if _SKETCH.value and lang.name != "csg2d":
    common.exit_with(f"--sketch draws CSG2D programs only, not {lang.name}")
  common.check_seed(_SEED.value)
  outs = outputs.Outputs(_OVERWRITE.value, inputs=[_PROGRAMS.value])
  out = outs.file("--out", _OUT.value)
  png_dir = None
  if _PNG_DIR.value:
    png_dir = outs.folder("--png_dir", _PNG_DIR.value)
  programs = read_programs(_PROGRAMS.value, lang)
  width = len(str(max(len(programs) - 1, 0)))
  pngs = []
  if png_dir:
    pngs = [
      outs.claim("--png_dir", png_dir, f"{i:0{width}d}.png")
      for i in range(len(programs))
    ]
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

  with outs:
    outs.write(
      out,
      lambda f: np.savez_compressed(
        f, images=images, programs=np.asarray(programs)
      ),
    )
    if pngs:
      from PIL import Image

      for path, im in zip(pngs, images):
        pixels = im[..., 0] if im.shape[-1] == 1 else im
        outs.write(
          path, lambda f, p=pixels: Image.fromarray(p).save(f, format="PNG")
        )
    outs.commit()
  print(f"wrote {len(images)} images {images.shape[1:]} to {_OUT.value}")
  if pngs:
    print(f"wrote {len(images)} PNGs to {_PNG_DIR.value}")


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags_or_exit)
