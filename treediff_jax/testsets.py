"""Test sets: sampled (in-distribution or LZ4-hard) and loaded from files.

A test set holds target images and, where known, the programs that drew
them. `make_testset` samples programs as training targets are drawn (2..8
primitives, nearly blank renders redrawn); the `hard` kind keeps programs
whose thresholded render compresses, with LZ4, to at least the 95th
percentile of the compressed sizes of a larger sampled pool.
`load_testset` reads our .npz files, a text file of programs (one a line),
or a folder of PNG images.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile

import lz4.frame
import numpy as np

from treediff_jax.dsl.languages import get_language
from treediff_jax.dsl.sampler import sample

KINDS = ("indist", "hard")
HARD_PERCENTILE = 95.0
# Images over this many pixels are refused before they are decoded (the
# canvases are at most 224 x 224; a photo of 7000 x 7000 still passes).
MAX_IMAGE_PIXELS = 50_000_000
# A test set's images array over this many bytes is refused before it is
# read (a zip bomb, or not a test set).
MAX_TESTSET_BYTES = 4 << 30
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclasses.dataclass
class Testset:
  """images: [N, H, W, C] float32 in [0, 1]; programs: N texts or None;
  names: N labels (PNG file names, or indices)."""

  lang: str
  images: np.ndarray
  programs: list[str] | None
  names: list[str]


def lz4_size(images: np.ndarray) -> np.ndarray:
  """LZ4-compressed byte size of each thresholded image.

  Args:
    images: [N, H, W, C] float in [0, 1].

  Returns:
    [N] int64 sizes of the frame-compressed bits (pixel > 0.5).
  """
  bits = np.asarray(images) > 0.5
  return np.array(
    [len(lz4.frame.compress(np.packbits(b).tobytes())) for b in bits],
    np.int64,
  )


def _sample_programs(lang: str, n: int, rng, min_p: int, max_p: int):
  from treediff_jax import render
  from treediff_jax.render.batch import nonempty

  language = get_language(lang)
  programs, images = [], []
  while len(programs) < n:
    batch = []
    while len(batch) < min(256, 2 * (n - len(programs)) + 8):
      t = sample(language.grammar, "s", min_p, max_p, rng)
      if t.ntok <= language.max_program_len:
        batch.append(language.grammar.to_text(t))
    imgs = render.render_programs(lang, batch)
    keep = np.asarray(nonempty(imgs))
    for p, im, k in zip(batch, imgs, keep):
      if k and len(programs) < n:
        programs.append(p)
        images.append(im)
  return programs, np.stack(images)


def make_testset(
  lang: str,
  n: int,
  kind: str = "indist",
  seed: int = 0,
  sketch: bool = False,
  pool: int = 0,
  min_primitives: int = 2,
  max_primitives: int = 8,
) -> tuple[Testset, dict]:
  """Samples a test set of `n` targets.

  Args:
    lang: language name.
    n: number of targets.
    kind: `indist` or `hard`.
    seed: seed of the host sampler (and of the sketches).
    sketch: CSG2D only: the targets are sketches of the programs.
    pool: size of the pool the hard set is drawn from (default 20 n).
    min_primitives, max_primitives: primitive counts of the programs.

  Returns:
    The test set and a dict of facts about how it was drawn.
  """
  language = get_language(lang)
  if kind not in KINDS:
    raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
  if n < 1:
    raise ValueError(f"n must be at least 1, got {n}")
  if sketch and language.name != "csg2d":
    raise ValueError(f"sketch targets exist for csg2d only, not {lang}")
  rng = np.random.default_rng(seed)
  info = dict(lang=language.name, kind=kind, seed=seed, sketch=sketch)
  if kind == "indist":
    programs, images = _sample_programs(
      language.name, n, rng, min_primitives, max_primitives
    )
  else:
    pool = pool or 20 * n
    if pool < n:
      raise ValueError(f"pool ({pool}) must hold at least n ({n}) programs")
    programs, images = _sample_programs(
      language.name, pool, rng, min_primitives, max_primitives
    )
    sizes = lz4_size(images)
    cut = float(np.percentile(sizes, HARD_PERCENTILE))
    hard = np.flatnonzero(sizes >= cut)
    while len(hard) < n:  # top up from a fresh pool above the same cut
      more_p, more_i = _sample_programs(
        language.name, pool, rng, min_primitives, max_primitives
      )
      s = lz4_size(more_i)
      take = np.flatnonzero(s >= cut)
      programs += [more_p[i] for i in take]
      images = np.concatenate([images, more_i[take]])
      hard = np.concatenate([hard, len(sizes) + np.arange(len(take))])
      sizes = np.concatenate([sizes, s[take]])
    hard = rng.permutation(hard)[:n]
    programs = [programs[i] for i in hard]
    images = images[hard]
    info.update(pool=pool, lz4_cut_bytes=cut, lz4_sizes=sizes[hard].tolist())
  if sketch:
    import jax

    from treediff_jax import render
    from treediff_jax.render import sketch as sketch_lib

    tokens = render.pad_tokens("csg2d", programs)
    images = np.asarray(
      sketch_lib.sketch_jit(tokens, jax.random.key(seed)), np.float32
    )
  names = [str(i) for i in range(n)]
  return Testset(
    language.name, images.astype(np.float32), programs, names
  ), info


def save_testset(path, testset: Testset, info: dict) -> None:
  """Writes `programs`, uint8 `images`, `lang` and `info` (JSON) to .npz
  (`path`: a file name or a binary file object)."""
  import json

  from treediff_jax.render import to_uint8

  np.savez_compressed(
    path,
    images=to_uint8(testset.images),
    programs=np.array(testset.programs or [], dtype=object).astype(str),
    lang=np.array(testset.lang),
    info=np.array(json.dumps(info)),
  )


def _to_pil(image):
  """An array (gray [H, W] or [H, W, 1], RGB, RGBA; uint8 0..255, uint16
  0..65535, or float 0..1) to a PIL image."""
  from PIL import Image

  a = np.asarray(image)
  if a.ndim == 3 and a.shape[-1] == 1:
    a = a[..., 0]
  if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
    raise ValueError(
      f"an image must be [H, W] or [H, W, 1|3|4], got {list(a.shape)}"
    )
  if a.dtype == np.uint16:
    a = a.astype(np.float32) / 65535.0
  if a.dtype != np.uint8:
    a = np.round(np.clip(a.astype(np.float32), 0, 1) * 255).astype(np.uint8)
  return Image.fromarray(a)


def fit_image(image, shape) -> np.ndarray:
  """One image to the canvas `shape` (H, W, C): float32 in [0, 1].

  `image` is a PIL image (any mode: palette, 16-bit, CMYK, with or without
  alpha) or an array as `_to_pil` takes. Transparent pixels are composited
  on white, colour is converted to gray (or gray to colour) as the canvas
  needs, and other sizes are resized with bilinear filtering.
  """
  from PIL import Image

  h, w, c = shape
  img = image if isinstance(image, Image.Image) else _to_pil(image)
  if img.mode in ("I;16", "I;16B", "I;16L", "I"):
    scale = 65535.0 if img.mode.startswith("I;16") else 2.0**31 - 1
    a = np.asarray(img, np.float32) / scale
    img = _to_pil(np.clip(a, 0, 1))
  elif img.mode == "F":
    img = _to_pil(np.asarray(img, np.float32))
  if img.mode in ("RGBA", "LA", "PA") or (
    img.mode == "P" or "transparency" in img.info
  ):
    img = img.convert("RGBA")
    white = Image.new("RGBA", img.size, (255, 255, 255, 255))
    img = Image.alpha_composite(white, img)
  img = img.convert("L" if c == 1 else "RGB")
  if img.size != (w, h):
    img = img.resize((w, h), Image.BILINEAR)
  out = np.asarray(img, np.float32) / 255.0
  return out.reshape(h, w, c)


def open_image(path: str):
  """Opens and decodes an image file; its size is checked (from the
  header) before its pixels are decoded.

  Returns:
    A loaded PIL image (close it, or use it in a `with`).

  Raises:
    ValueError: not a readable image, or over MAX_IMAGE_PIXELS (named,
      one line).
  """
  import warnings

  from PIL import Image

  try:
    with warnings.catch_warnings():
      warnings.simplefilter("error", Image.DecompressionBombWarning)
      img = Image.open(path)
      w, h = img.size
      if w * h > MAX_IMAGE_PIXELS:
        img.close()
        raise ValueError(
          f"{path} is {w}x{h} = {w * h} pixels, over the limit of "
          f"{MAX_IMAGE_PIXELS}; scale it down first"
        )
      try:
        img.load()
      except BaseException:
        img.close()
        raise
      return img
  except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
    raise ValueError(f"{path} is too large to decode: {e}") from None
  except (OSError, SyntaxError, EOFError) as e:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    raise ValueError(f"{path} is not a readable image: {first}") from None


def load_images(lang: str, paths: list[str]) -> np.ndarray:
  """PNG (or other image) files to [N, H, W, C] float32 of `lang`'s canvas.

  Raises:
    ValueError: a file is not a readable image or too large (named).
  """
  shape = get_language(lang).canvas_shape
  out = []
  for p in paths:
    with open_image(p) as img:
      out.append(fit_image(img, shape))
  return np.stack(out) if out else np.zeros((0,) + shape, np.float32)


def _npy_header(z, key: str):
  """(shape, dtype) of array `key` of an open NpzFile, from its header
  (nothing decompressed beyond it)."""
  from numpy.lib import format as npy_format

  with z.zip.open(key + ".npy") as f:
    version = npy_format.read_magic(f)
    if version == (1, 0):
      shape, _, dtype = npy_format.read_array_header_1_0(f)
    elif version == (2, 0):
      shape, _, dtype = npy_format.read_array_header_2_0(f)
    else:
      shape, _, dtype = npy_format._read_array_header(f, version)
  return tuple(shape), np.dtype(dtype)


def _image_file(path: str) -> bool:
  """Whether `path` is an image file (by name or by its first bytes)."""
  if path.lower().endswith(IMAGE_SUFFIXES + (".gif", ".bmp", ".webp")):
    return True
  try:
    with open(path, "rb") as f:
      head = f.read(8)
  except OSError:
    return False
  return head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM"))


def check_testset(path: str) -> None:
  """The checks of `load_testset` that need no language (nothing rendered
  and no model needed): the file or folder exists and is of a kind a test
  set can be, a folder's images decode and are not too large, and an .npz
  holds a non-empty images array of a usable shape and size (read from
  its header).

  Raises:
    ValueError: the problem, naming the file (one line).
  """
  if not os.path.exists(path):
    raise ValueError(f"no test set at {path}")
  if os.path.isdir(path):
    files = sorted(
      f for f in os.listdir(path) if f.lower().endswith(IMAGE_SUFFIXES)
    )
    if not files:
      raise ValueError(f"{path} holds no .png images")
    for f in files:
      open_image(os.path.join(path, f)).close()
    return
  if _image_file(path):
    raise ValueError(
      f"{path} is a single image, not a test set: give a folder of images, "
      "an .npz test set (launch.make_testset) or a text file of programs; "
      "launch.solve --images solves single images"
    )
  if path.endswith(".npz"):
    _npz_facts(path)
    return
  try:
    with open(path, encoding="utf-8") as f:
      text = f.read()
  except (OSError, UnicodeDecodeError) as e:
    reason = getattr(e, "strerror", None) or getattr(e, "reason", str(e))
    raise ValueError(
      f"cannot read programs from {path}: {reason} (a test set is a "
      ".npz file, a text file of programs or a folder of images)"
    ) from None
  if not text.strip():
    raise ValueError(f"{path} holds no programs")


def _npz_facts(path: str):
  """(file language or None, images shape, images dtype) of an .npz test
  set, from headers; raises ValueError naming what is wrong."""
  try:
    z = np.load(path, allow_pickle=False)
    if not isinstance(z, np.lib.npyio.NpzFile):
      raise ValueError("it holds one array, not named arrays")
    with z:
      names = set(z.files)
      if "images" not in names:
        raise ValueError(f"{path} has no 'images' array") from None
      shape, dtype = _npy_header(z, "images")
      file_lang = str(z["lang"]) if "lang" in names else None
  except ValueError as e:
    if str(e).startswith(path):
      raise
    raise ValueError(f"{path} is not a readable .npz file: {e}") from None
  except (OSError, EOFError, KeyError, zipfile.BadZipFile) as e:
    raise ValueError(f"{path} is not a readable .npz file: {e}") from None
  if len(shape) not in (3, 4):
    raise ValueError(
      f"{path}: images must be [N, H, W(, C)], got {list(shape)}"
    )
  if shape[0] == 0:
    raise ValueError(f"{path} holds no images (images array {list(shape)})")
  if shape[1] * shape[2] > MAX_IMAGE_PIXELS:
    raise ValueError(
      f"{path}: images of {shape[2]}x{shape[1]} pixels are over the limit "
      f"of {MAX_IMAGE_PIXELS}"
    )
  if int(np.prod(shape)) * dtype.itemsize > MAX_TESTSET_BYTES:
    raise ValueError(
      f"{path}: an images array of {list(shape)} {dtype} is over the limit "
      f"of {MAX_TESTSET_BYTES} bytes"
    )
  if dtype.kind not in "buif" or dtype.itemsize > 8:
    raise ValueError(f"{path}: images of dtype {dtype} are not pixels")
  return file_lang, shape, dtype


def load_testset(lang: str, path: str) -> Testset:
  """Loads a test set: our .npz, a text file of programs, or a PNG folder.

  An .npz without a `lang` array whose images are not of `lang`'s canvas
  is refused (it may be another language's; nothing is resized silently).

  Raises:
    ValueError: the file is missing, of the wrong language, or malformed
      (the message names the file and, for programs, the line).
  """
  language = get_language(lang)
  check_testset(path)
  if os.path.isdir(path):
    files = sorted(
      f for f in os.listdir(path) if f.lower().endswith(IMAGE_SUFFIXES)
    )
    images = load_images(language.name, [os.path.join(path, f) for f in files])
    return Testset(language.name, images, None, files)
  if path.endswith(".npz"):
    file_lang, shape, _ = _npz_facts(path)
    if file_lang is not None and file_lang != language.name:
      raise ValueError(f"{path} is a {file_lang} test set, not {lang}")
    canvas = language.canvas_shape
    gray_match = len(shape) == 3 and canvas[2] == 1
    if file_lang is None and not (
      shape[1:] == canvas or (gray_match and shape[1:] == canvas[:2])
    ):
      raise ValueError(
        f"{path} has no language tag and its images are {list(shape[1:])}, "
        f"not the {language.name} canvas {list(canvas)}: a test set of "
        "another language? Resize them yourself, or store a 'lang' array "
        "(testsets.save_testset)"
      )
    try:
      with np.load(path, allow_pickle=False) as z:
        images = np.asarray(z["images"])
        programs = (
          [str(p) for p in z["programs"]] if "programs" in z.files else []
        )
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
      raise ValueError(f"{path} is not a readable .npz file: {e}") from None
    if (
      images.dtype != np.uint8
      and not 0.0 <= images.min() <= images.max() <= 1.0
    ):
      raise ValueError(
        f"{path}: float images must lie in [0, 1] (or store uint8 0..255)"
      )
    if images.shape[1:] == language.canvas_shape:
      scale = 255.0 if images.dtype == np.uint8 else 1.0
      images = images.astype(np.float32) / scale
    else:
      images = np.stack([fit_image(im, language.canvas_shape) for im in images])
    names = [str(i) for i in range(len(images))]
    return Testset(
      language.name, images.astype(np.float32), programs or None, names
    )
  # A text file of programs.
  from treediff_jax import render
  from treediff_jax.dsl.grammar import ProgramSyntaxError

  with open(path, encoding="utf-8") as f:
    numbered = list(enumerate(f.read().split("\n"), start=1))
  numbered = [(i, ln) for i, ln in numbered if ln.strip()]  # blank lines
  lines = [ln for _, ln in numbered]
  for i, line in numbered:
    try:
      language.parse_bounded(line)
    except ProgramSyntaxError as e:
      first = str(e).splitlines()[0]
      raise ValueError(f"{path}, line {i}: {first}") from None
  images = render.render_programs(language.name, lines)
  return Testset(
    language.name, images, lines, [str(i) for i in range(len(lines))]
  )
