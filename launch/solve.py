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

from launch import common

_METHOD = flags.DEFINE_enum(
  "method",
  "tree_diffusion_search",
  ["tree_diffusion", "tree_diffusion_search", "hill_climb", "ar", "repl_flow"],
  "Solving method.",
)
_CKPT = flags.DEFINE_string("checkpoint", None, "Policy training workdir.")
_VALUE = flags.DEFINE_string(
  "value_checkpoint", None, "Value training workdir (ranks the beam)."
)
_LANG = flags.DEFINE_string(
  "lang", None, "Language (hill_climb; else read from the checkpoint)."
)
_IMAGES = flags.DEFINE_string("images", None, "A PNG file or a folder.")
_OUT = flags.DEFINE_string("out", None, "Output folder.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of start programs and edits.")
_MAX_NODES = flags.DEFINE_integer("max_nodes", 2000, "Node budget per image.")
_BEAM = flags.DEFINE_integer("beam", 0, "Beam size (0: the method's).")
_K = flags.DEFINE_integer("k", 0, "Edits per beam entry (0: the method's).")
_STEPS = flags.DEFINE_integer("max_steps", 0, "Depth (0: the method's).")
_BATCH = flags.DEFINE_integer("batch", 8, "Images solved together.")
_START = flags.DEFINE_string(
  "start_checkpoint",
  None,
  "Autoregressive policy workdir: tree diffusion starts from its samples.",
)
_START_SAMPLES = flags.DEFINE_integer(
  "start_samples", 64, "Autoregressive start samples per image."
)


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


def search_overrides() -> dict:
  out = {}
  for name, flag in (("beam", _BEAM), ("k", _K), ("max_steps", _STEPS)):
    if flag.value < 0:
      common.exit_with(f"--{name} must be >= 0")
    if flag.value:
      out[name] = flag.value
  return out


def build_method_or_exit(
  method: str, lang, checkpoint, value_checkpoint, max_nodes: int
):
  """`search.methods.build` with the search flags; exits with a one-line
  message on a bad method, language or checkpoint."""
  from treediff_jax import checkpointing  # pylint: disable=g-import-not-at-top
  from treediff_jax.search import methods  # pylint: disable=g-import-not-at-top

  try:
    return methods.build(
      method,
      lang=lang,
      checkpoint=checkpoint,
      value_checkpoint=value_checkpoint,
      max_nodes=max_nodes,
      start_checkpoint=_START.value,
      start_samples=_START_SAMPLES.value,
      **search_overrides(),
    )
  except (ValueError, NotImplementedError) as e:
    common.exit_with(str(e))
  except checkpointing.CheckpointNotFoundError as e:
    common.exit_with(f"no checkpoint: {e}")


def pad_batch(images, size: int):
  """images [n, ...] with n <= size -> [size, ...], the last one repeated,
  so every call of the jitted search sees one batch shape."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  extra = np.repeat(images[-1:], size - len(images), axis=0)
  return np.concatenate([images, extra])


def side_by_side(target, image):
  """[H, W, C] float pair -> [H, 2W + 4, 3] uint8 (target | render)."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  from treediff_jax.render import to_uint8  # pylint: disable=g-import-not-at-top

  def rgb(x):
    x = to_uint8(x)
    return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x

  h = target.shape[0]
  gap = np.full((h, 4, 3), 128, np.uint8)
  return np.concatenate([rgb(target), gap, rgb(image)], axis=1)


def main(argv):
  del argv
  if not _IMAGES.value or not _OUT.value:
    common.exit_with("--images and --out are required")
  if _MAX_NODES.value < 1 or _BATCH.value < 1:
    common.exit_with("--max_nodes and --batch must be >= 1")
  common.check_seed(_SEED.value)
  if _LANG.value:
    common.language_or_exit(_LANG.value)
  paths = image_paths(_IMAGES.value)
  parent = os.path.dirname(os.path.abspath(_OUT.value))
  if not os.path.isdir(parent):
    common.exit_with(f"the folder above --out={_OUT.value} does not exist")
  common.quiet_jax_logs()

  import numpy as np  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top

  from treediff_jax import render, testsets  # pylint: disable=g-import-not-at-top
  from treediff_jax.dsl.languages import get_language  # pylint: disable=g-import-not-at-top
  from treediff_jax.dsl.tokenizer import Tokenizer  # pylint: disable=g-import-not-at-top

  method = build_method_or_exit(
    _METHOD.value, _LANG.value, _CKPT.value, _VALUE.value, _MAX_NODES.value
  )
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
  os.makedirs(_OUT.value, exist_ok=True)
  tok = Tokenizer(lang)
  b = _BATCH.value
  lines = []
  for i in range(0, len(targets), b):
    chunk = targets[i : i + b]
    n = len(chunk)
    padded = pad_batch(chunk, b)
    r = method.solve(padded, key=_SEED.value + i)
    programs = np.asarray(r.programs)[:n]
    images = np.asarray(render.renderer(lang.name)(programs))
    for j in range(n):
      stem = os.path.splitext(os.path.basename(paths[i + j]))[0]
      text = tok.decode_text(programs[j])
      with open(os.path.join(_OUT.value, stem + ".txt"), "w") as f:
        f.write(text + "\n")
      im = render.to_uint8(images[j])
      Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(
        os.path.join(_OUT.value, stem + "_render.png")
      )
      Image.fromarray(side_by_side(chunk[j], images[j])).save(
        os.path.join(_OUT.value, stem + "_side.png")
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
  with open(os.path.join(_OUT.value, "results.jsonl"), "w") as f:
    for line in lines:
      f.write(json.dumps(line) + "\n")
  solved = sum(x["solved"] for x in lines)
  print(f"solved {solved}/{len(lines)}; outputs in {_OUT.value}")


if __name__ == "__main__":
  app.run(main)
