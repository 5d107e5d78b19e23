"""Demo of what exists so far, on every language: sample a target program,
noise it, print the reverse path and one training example, and render them.

  python -m launch.demo --seed=0 --out=/tmp/treediff_demo

Writes, per language, `<out>/<lang>_path.png` (target, noised program, then
the program after each reverse-path edit, left to right), for CSG2D also
`<out>/csg2d_sketch.png` (the target and three sketches of it), and
`<out>/<lang>_example.json` with a training example's programs and tokens.
The outputs are checked before any work and written whole at the end
(launch/outputs.py); a file in OUT that earlier runs did not write is
replaced only with --overwrite.
"""

import json
import os

from absl import app, flags

from data_gen.worker import ExampleConfig, make_example
from launch import common, outputs
from treediff_jax.dsl import edits
from treediff_jax.dsl.languages import NAMES, get_language
from treediff_jax.dsl.sampler import sample
from treediff_jax.dsl.tokenizer import Tokenizer

_SEED = flags.DEFINE_integer("seed", 0, "Random seed.")
_STEPS = flags.DEFINE_integer("steps", 3, "Noise steps.")
_OUT = flags.DEFINE_string("out", "/tmp/treediff_demo", "Output folder.")
_OVERWRITE = flags.DEFINE_bool(
  "overwrite", False, "Replace files in --out that earlier runs did not write."
)
MAX_STEPS = 1000


def output_names(name: str) -> list[str]:
  """The files the demo writes for language `name`."""
  extra = ["csg2d_sketch.png"] if name == "csg2d" else []
  return [f"{name}_path.png", *extra, f"{name}_example.json"]


def run_language(
  name: str, seed: int, steps: int, out: str, outs: outputs.Outputs
):
  import numpy as np

  lang = get_language(name)
  g = lang.grammar
  rng = np.random.default_rng(seed)
  target = sample(g, g.start, 2, 8, rng)
  noised, _ = edits.noise(g, target, steps, rng)
  path = edits.reverse_path(g, noised, target, rng)
  print(f"== {name}")
  print(f"target ({target.size} primitives): {g.to_text(target)}")
  print(f"noised ({steps} mutations):        {g.to_text(noised)}")
  current = noised
  frames = [target, noised]
  for i, e in enumerate(path):
    print(f"  edit {i + 1}: {e.describe(g, current)}")
    current = e.apply(g, current)
    frames.append(current)
  strip = os.path.join(out, f"{name}_path.png")
  _save_strip(name, frames, strip, outs)
  print(f"wrote {strip}")
  if name == "csg2d":
    sketches = os.path.join(out, "csg2d_sketch.png")
    _save_sketches(target, seed, sketches, outs)
    print(f"wrote {sketches}")
  ex = make_example(seed, 0, ExampleConfig(lang=name))
  tok = Tokenizer(lang)
  split = tok.split_edit_sequence(ex["tokens"])
  record = {
    "language": name,
    "current": tok.decode_text(ex["current_tokens"]),
    "target": tok.decode_text(ex["target_tokens"]),
    "edit_position": split.position,
    "edit_replacement": tok.decode_text(split.replacement),
    "steps_left": int(ex["steps_left"]),
    "tokens": ex["tokens"].tolist(),
  }
  print(
    f"training example: at token {split.position} put "
    f"{record['edit_replacement']} ({record['steps_left']} steps left)"
  )
  path_out = os.path.join(out, f"{name}_example.json")
  outs.write(path_out, lambda f: json.dump(record, f, indent=1), text=True)
  print(f"wrote {path_out}")


def _to_pixels(images):
  """uint8 pixels, grey images without their channel axis (for PIL)."""
  from treediff_jax import render as render_lib

  pixels = render_lib.to_uint8(images)
  return pixels[..., 0] if pixels.shape[-1] == 1 else pixels


def _save_strip(name, programs, path, outs):
  """Renders `programs` side by side, separated by grey bars, to a PNG."""
  import numpy as np
  from PIL import Image

  from treediff_jax import render as render_lib

  images = _to_pixels(render_lib.render_programs(name, programs))
  bar = np.full(images.shape[1:2] + (4,) + images.shape[3:], 128, np.uint8)
  tiles = []
  for im in images:
    tiles += [im, bar]
  strip = Image.fromarray(np.concatenate(tiles[:-1], axis=1))
  outs.write(path, lambda f: strip.save(f, format="PNG"))


def _save_sketches(target, seed, path, outs):
  import jax
  import jax.numpy as jnp
  import numpy as np
  from PIL import Image

  from treediff_jax import render as render_lib
  from treediff_jax.render import sketch as sketch_lib

  tokens = jnp.asarray(render_lib.pad_tokens("csg2d", [target] * 3))
  sketches = sketch_lib.sketch_jit(tokens, jax.random.key(seed))
  clean = render_lib.render_programs("csg2d", [target])
  images = _to_pixels(np.concatenate([clean, np.asarray(sketches)]))
  sheet = Image.fromarray(np.concatenate(list(images), axis=1))
  outs.write(path, lambda f: sheet.save(f, format="PNG"))


def main(argv):
  del argv
  common.check_seed(_SEED.value)
  if not 0 <= _STEPS.value <= MAX_STEPS:
    common.exit_with(f"--steps must be in [0, {MAX_STEPS}], got {_STEPS.value}")
  outs = outputs.Outputs(_OVERWRITE.value)
  folder = outs.folder("--out", _OUT.value)
  for name in NAMES:
    for file in output_names(name):
      outs.claim("--out", folder, file)
  common.quiet_jax_logs()
  with outs:
    for name in NAMES:
      run_language(name, _SEED.value, _STEPS.value, _OUT.value, outs)
    outs.commit()


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags_or_exit)
