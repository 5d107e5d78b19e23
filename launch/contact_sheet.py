"""One picture of many solved images: target | render pairs with their
names, solved flags, node counts and programs."""

from __future__ import annotations

import textwrap

import numpy as np
from PIL import Image, ImageDraw

LINE = 11  # pixels per text line (PIL's default bitmap font)


def contact_sheet(
  pairs: list[np.ndarray], captions: list[list[str]], columns: int = 4
) -> Image.Image:
  """Tiles of side-by-side pictures with captions under each.

  Args:
    pairs: [H, W, 3] uint8 pictures (target | render), one per image, all
      of one size.
    captions: lines of text under each picture (long lines are wrapped).
    columns: tiles per row.

  Returns:
    An RGB PIL image.
  """
  h, w = pairs[0].shape[:2]
  chars = max(8, w // 6)
  wrapped = [
    [part for line in lines for part in textwrap.wrap(line, chars) or [""]]
    for lines in captions
  ]
  text_h = LINE * max(len(lines) for lines in wrapped) + 6
  rows = -(-len(pairs) // columns)
  pad = 8
  sheet = Image.new(
    "RGB",
    (columns * (w + pad) + pad, rows * (h + text_h + pad) + pad),
    (255, 255, 255),
  )
  draw = ImageDraw.Draw(sheet)
  for i, (pic, lines) in enumerate(zip(pairs, wrapped)):
    x = pad + (i % columns) * (w + pad)
    y = pad + (i // columns) * (h + text_h + pad)
    sheet.paste(Image.fromarray(pic), (x, y))
    for j, line in enumerate(lines):
      draw.text((x, y + h + 3 + j * LINE), line, fill=(0, 0, 0))
  return sheet
