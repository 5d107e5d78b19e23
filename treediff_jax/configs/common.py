"""Shared config pieces: defaults and the `file.py:override,...` argument."""

from __future__ import annotations

import ml_collections


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """Parses "a=1,b=x,flag" into a ConfigDict over `defaults`.

  A bare name sets a boolean default to True.

  Raises:
    ValueError: an unknown key (the message lists the known ones).
  """
  out = ml_collections.ConfigDict(defaults)
  for part in filter(None, (arg or "").split(",")):
    key, _, value = part.partition("=")
    if key not in defaults:
      raise ValueError(
        f"unknown config argument {key!r}; known: {', '.join(sorted(defaults))}"
      )
    kind = type(defaults[key])
    if kind is bool:
      words = {
        "": True,
        "1": True,
        "true": True,
        "yes": True,
        "0": False,
        "false": False,
        "no": False,
      }
      if value.lower() not in words:
        raise ValueError(f"config argument {key}={value!r} is not a boolean")
      out[key] = words[value.lower()]
    else:
      out[key] = kind(value)
  return out


def policy_config(
  lang: str = "csg2d",
  size: str = "tiny",
  batch_size: int = 32,
  total_steps: int = 1000,
) -> ml_collections.ConfigDict:
  """The full set of policy-training fields with their defaults."""
  c = ml_collections.ConfigDict()
  c.kind = "policy"
  c.lang = lang
  c.seed = 0
  c.total_steps = total_steps
  c.log_every = 10
  c.init_from = ""  # a workdir or checkpoints folder to start from
  c.input = ml_collections.ConfigDict(
    dict(
      batch_size=batch_size,  # global
      num_workers=2,
      queue_size=8,
      rho=0.2,
      min_primitives=2,
      max_primitives=8,
      max_noise_steps=5,
      # Ablations: "last_mutation" learns to invert only the last mutation
      # (needs rho = 0); blank_current hides the current image.
      label_mode="path",
      blank_current=False,
      sketch=False,  # CSG2D-Sketch targets
      # Right-sized sequences (data_gen/lengths.py): sort_chunk batches are
      # drawn together and dealt out by sequence length, and each batch's
      # sequences cut to a multiple of length_bucket tokens (one compiled
      # step per length). sort_chunk=1, length_bucket=0: stream order,
      # full length.
      sort_chunk=8,
      length_bucket=16,
    )
  )
  # max_len: decoder positions; 0 = the language's sequence length.
  # stem: "patch" or "conv" (models/config.py STEMS); spatial: program
  # tokens see the image under their primitive (csg2d only); box_features
  # (spatial models): and fixed image statistics of its box.
  c.model = ml_collections.ConfigDict(
    dict(
      size=size,
      dtype="float32",
      max_len=0,
      stem="patch",
      spatial=False,
      box_features=False,
    )
  )
  c.optim = ml_collections.ConfigDict(
    dict(lr=3e-4, weight_decay=0.01, warmup_steps=100, clip_norm=1.0)
  )
  c.ckpt = ml_collections.ConfigDict(dict(every=100, keep=3, async_save=True))
  c.evals = ml_collections.ConfigDict(dict(every=100, num_examples=64))
  return c


def full_length_sequences(
  c: ml_collections.ConfigDict,
) -> ml_collections.ConfigDict:
  """One step shape: batches in stream order at the full sequence length
  (sort_chunk 1, length_bucket 0). Returns `c`, changed."""
  c.input.sort_chunk = 1
  c.input.length_bucket = 0
  return c


def quick_cpu_run(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Settings of the tiny configs, for runs of minutes on a CPU: two data
  workers, full-length sequences in stream order, lr 1e-3 after 20 warmup
  steps, checkpoints and evaluations (32 examples) every 100 steps.
  Returns `c`, changed."""
  c.input.num_workers = 2
  # One compiled step shape: on runs of minutes with tiny models, compiling
  # a step per sequence length costs more than shorter sequences save.
  full_length_sequences(c)
  c.optim.lr = 1e-3
  c.optim.warmup_steps = 20
  c.ckpt.every = 100
  c.evals.every = 100
  c.evals.num_examples = 32
  return c


def value_config(
  lang: str = "csg2d",
  size: str = "tiny",
  batch_size: int = 32,
  total_steps: int = 1000,
) -> ml_collections.ConfigDict:
  """Value-model training: the policy fields, kind "value"."""
  c = policy_config(lang, size, batch_size, total_steps)
  c.kind = "value"
  # The value model sees only the images: keep one sequence shape.
  return full_length_sequences(c)
