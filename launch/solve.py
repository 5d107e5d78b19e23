"""Finds a program for each image.

  python -m launch.solve --checkpoint=POLICY_WORKDIR \
      [--value_checkpoint=VALUE_WORKDIR] --images=PNG_OR_DIR --out=DIR
  python -m launch.solve --method=hill_climb --lang=csg2d --images=... \
      --out=DIR

For each image NAME.png, DIR gets NAME.txt (the program), NAME_render.png
(its render) and NAME_side.png (target | render), DIR/results.jsonl one
line per image (program, solved, nodes expanded) and DIR/contact_sheet.png
(every target | render with its program and node count). Progress goes to
stderr after each batch. Without --checkpoint, --lang selects the weights
shipped for that language. Images of another
size or channel count are resized and converted (a note says so); sketches
work the same way. Every output is checked before the model is loaded
and written whole when all images are solved (launch/outputs.py): an input
image is never replaced, and a file in DIR that earlier runs did not write
only with --overwrite.
"""

import json
import os
import sys

from absl import app, flags

from launch import common, contact_sheet, outputs, search_flags

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


def check_outputs(paths: list[str]):
  """(out folder, outputs.Outputs) with every output of the run checked
  (before any work): NAME.txt, NAME_render.png and NAME_side.png of each
  image and results.jsonl, none an input, none written twice, none an
  existing file earlier runs did not write (without --overwrite); and
  every image readable and not too large."""
  from treediff_jax import testsets

  outs = outputs.Outputs(_SEARCH.overwrite.value, inputs=paths)
  out_dir = outs.folder("--out", _SEARCH.out.value)
  for p in paths:
    stem = os.path.splitext(os.path.basename(p))[0]
    for suffix in (".txt", "_render.png", "_side.png"):
      outs.claim("--out", out_dir, stem + suffix, f"the outputs of {p}")
  outs.claim("--out", out_dir, "results.jsonl")
  outs.claim("--out", out_dir, "contact_sheet.png")
  for p in paths:
    try:
      testsets.open_image(p).close()
    except ValueError as e:
      common.exit_with(str(e))
  return out_dir, outs


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
  out_dir, outs = check_outputs(paths)
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
      with testsets.open_image(p) as img:
        fitted = testsets.fit_image(img, shape)
        size, mode = img.size, img.mode
    except (OSError, ValueError) as e:
      common.exit_with(str(e) if str(e).startswith(p) else f"{p}: {e}")
    if size != (shape[1], shape[0]) or (mode in gray) != (shape[2] == 1):
      print(
        f"note: {os.path.basename(p)} is {size[0]}x{size[1]} {mode}; "
        f"resized and converted to the {lang.name} canvas {list(shape)}"
      )
    targets.append(fitted)
  targets = np.stack(targets)
  tok = Tokenizer(lang)
  b = _SEARCH.batch.value
  lines, pairs = [], []
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
      out = os.path.join(out_dir, stem)
      outs.write(out + ".txt", lambda f, t=text: f.write(t + "\n"), text=True)
      im = render.to_uint8(images[j])
      pixels = Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im)
      outs.write(
        out + "_render.png", lambda f, p=pixels: p.save(f, format="PNG")
      )
      side = Image.fromarray(side_by_side(chunk[j], images[j]))
      outs.write(out + "_side.png", lambda f, p=side: p.save(f, format="PNG"))
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
      pairs.append(side_by_side(chunk[j], images[j]))
      print(json.dumps(line))
    solved = sum(x["solved"] for x in lines)
    sys.stderr.write(
      f"{len(lines)}/{len(paths)} images searched, {solved} solved\n"
    )
    sys.stderr.flush()
  outs.write(
    os.path.join(out_dir, "results.jsonl"),
    lambda f: f.writelines(json.dumps(x) + "\n" for x in lines),
    text=True,
  )
  sheet = contact_sheet.contact_sheet(
    pairs,
    [
      [
        f"{os.path.basename(x['image'])}: "
        f"{'solved' if x['solved'] else 'not solved'}, {x['nodes']} nodes",
        x["program"],
      ]
      for x in lines
    ],
  )
  outs.write(
    os.path.join(out_dir, "contact_sheet.png"),
    lambda f: sheet.save(f, format="PNG"),
  )
  outs.commit()
  solved = sum(x["solved"] for x in lines)
  print(f"solved {solved}/{len(lines)}; outputs in {_SEARCH.out.value}")


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags_or_exit)
