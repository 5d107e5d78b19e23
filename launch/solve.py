"""Finds a program for each image.

  python -m launch.solve --checkpoint=POLICY_WORKDIR \
      [--value_checkpoint=VALUE_WORKDIR] --images=PNG_OR_DIR --out=DIR
  python -m launch.solve --method=hill_climb --lang=csg2d --images=... \
      --out=DIR

For each image NAME.png, DIR gets NAME.txt (the program), NAME_render.png
(its render) and NAME_side.png (target | render), and DIR/results.jsonl
one line per image (program, solved, nodes expanded). Images of another
size or channel count are resized and converted (a note says so); sketches
work the same way.
"""

import json
import os

from absl import app, flags

from launch import common, search_flags

_SEARCH = search_flags.define()
_IMAGES = flags.DEFINE_string("images", None, "A PNG file or a folder.")


def image_paths(path: str) -> list[str]:
  """The image files named by --images; exits if there are none."""
  if os.path.isdir(path):
    files = sorted(
      os.path.join(path, f)
      for f in os.listdir(path)
      if f.lower().endswith((".png", ".jpg", ".jpeg"))
    )
    if not files:
      common.exit_with(f"--images={path} holds no .png images")
    return files
  if not os.path.isfile(path):
    common.exit_with(f"no image or folder at --images={path}")
  return [path]


def side_by_side(target, image):
  """[H, W, C] float pair -> [H, 2W + 4, 3] uint8 (target | render)."""
  import numpy as np

  from treediff_jax.render import to_uint8

  def rgb(x):
    x = to_uint8(x)
    return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x

  h = target.shape[0]
  gap = np.full((h, 4, 3), 128, np.uint8)
  return np.concatenate([rgb(target), gap, rgb(image)], axis=1)


def main(argv):
  del argv
  if not _IMAGES.value or not _SEARCH.out.value:
    common.exit_with("--images and --out are required")
  search_flags.check(_SEARCH)
  paths = image_paths(_IMAGES.value)
  parent = os.path.dirname(os.path.abspath(_SEARCH.out.value))
  if not os.path.isdir(parent):
    common.exit_with(
      f"the folder above --out={_SEARCH.out.value} does not exist"
    )
  common.quiet_jax_logs()

  import numpy as np
  from PIL import Image

  from treediff_jax import evaluation, render, testsets
  from treediff_jax.dsl.languages import get_language
  from treediff_jax.dsl.tokenizer import Tokenizer

  method = search_flags.build_solver_or_exit(_SEARCH, _SEARCH.max_nodes.value)
  lang = get_language(method.lang)
  shape = lang.canvas_shape
  targets = []
  gray = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
  for p in paths:
    try:
      with Image.open(p) as img:
        img.load()
        fitted = testsets.fit_image(img, shape)
        size, mode = img.size, img.mode
    except (OSError, ValueError) as e:
      common.exit_with(f"{p} is not a readable image: {e}")
    if size != (shape[1], shape[0]) or (mode in gray) != (shape[2] == 1):
      print(
        f"note: {os.path.basename(p)} is {size[0]}x{size[1]} {mode}; "
        f"resized and converted to the {lang.name} canvas {list(shape)}"
      )
    targets.append(fitted)
  targets = np.stack(targets)
  os.makedirs(_SEARCH.out.value, exist_ok=True)
  tok = Tokenizer(lang)
  b = _SEARCH.batch.value
  lines = []
  for i in range(0, len(targets), b):
    chunk = targets[i : i + b]
    n = len(chunk)
    padded = evaluation.pad_batch(chunk, b)
    r = method.solve(padded, key=_SEARCH.seed.value + i)
    programs = np.asarray(r.programs)[:n]
    images = np.asarray(render.renderer(lang.name)(programs))
    for j in range(n):
      stem = os.path.splitext(os.path.basename(paths[i + j]))[0]
      text = tok.decode_text(programs[j])
      with open(os.path.join(_SEARCH.out.value, stem + ".txt"), "w") as f:
        f.write(text + "\n")
      im = render.to_uint8(images[j])
      Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(
        os.path.join(_SEARCH.out.value, stem + "_render.png")
      )
      Image.fromarray(side_by_side(chunk[j], images[j])).save(
        os.path.join(_SEARCH.out.value, stem + "_side.png")
      )
      line = dict(
        image=paths[i + j],
        program=text,
        solved=bool(r.solved[j]),
        nodes=int(r.nodes[j]),
        goal_value=(
          float(r.best_goal[j]) if np.isfinite(r.best_goal[j]) else None
        ),
      )
      lines.append(line)
      print(json.dumps(line))
  with open(os.path.join(_SEARCH.out.value, "results.jsonl"), "w") as f:
    for line in lines:
      f.write(json.dumps(line) + "\n")
  solved = sum(x["solved"] for x in lines)
  print(f"solved {solved}/{len(lines)}; outputs in {_SEARCH.out.value}")


if __name__ == "__main__":
  app.run(main)
