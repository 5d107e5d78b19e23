"""Right-sized training sequences: length-sorted chunks, trimmed padding.

Every example's edit sequence is padded to the language's `seq_len`, but
most are far shorter (CSG2D: 87 of 200 tokens on average), and the
decoder's cost grows with the padded length. A chunk of `num_batches`
consecutive batches is therefore drawn at once, its examples sorted by
sequence length and dealt out in that order, and each batch's sequence
arrays cut to the smallest multiple of `bucket` tokens that holds its
longest sequence. The chunk's examples are the same as in stream order;
only which batch holds them changes, and the batches' order within the
chunk is shuffled from the seed, so short and long batches alternate at
random rather than in a ramp. Everything depends on (seed, chunk) alone: a
resumed run regenerates the chunk and continues at the same batch.

Two consequences: the loss, a mean over each batch's edit tokens, weighs an
edit token by the batch it lands in, and batches now group examples of
similar length (the expected objective shifts slightly towards the edits
of batches with fewer edit tokens); and a run started with other
`sort_chunk` / `length_bucket` values sees other batches after a resume.
"""

from __future__ import annotations

import numpy as np

from data_gen.worker import ExampleConfig, make_batch, seed_words
from treediff_jax.dsl.tokenizer import PAD

SEQUENCE_KEYS = ("tokens", "loss_mask")  # [B, S] arrays trimmed together


def sequence_lengths(tokens: np.ndarray) -> np.ndarray:
  """[B] int64 length of each row of `tokens` [B, S] up to its last non-PAD
  token (0 for an all-PAD row)."""
  nonpad = tokens != PAD
  last = tokens.shape[1] - np.argmax(nonpad[:, ::-1], axis=1)
  return np.where(nonpad.any(axis=1), last, 0)


def trim_to_bucket(batch: dict, bucket: int) -> dict:
  """`batch` with its sequence arrays [B, S] cut to the smallest multiple of
  `bucket` that holds every row's tokens (at most S). bucket 0: unchanged."""
  if bucket <= 0:
    return batch
  full = batch["tokens"].shape[1]
  longest = int(sequence_lengths(batch["tokens"]).max(initial=1))
  length = min(full, -(-longest // bucket) * bucket)
  out = dict(batch)
  for key in SEQUENCE_KEYS:
    out[key] = batch[key][:, :length]
  return out


def pad_sequences(batch: dict, length: int) -> dict:
  """`batch` with its sequence arrays padded with PAD / 0 to `length`."""
  extra = length - batch["tokens"].shape[1]
  if extra < 0:
    raise ValueError(
      f"cannot pad sequences of length {batch['tokens'].shape[1]} to {length}"
    )
  if extra == 0:
    return batch
  out = dict(batch)
  for key in SEQUENCE_KEYS:
    out[key] = np.pad(batch[key], ((0, 0), (0, extra)))
  return out


def chunk_batches(
  seed,
  chunk: int,
  batch_size: int,
  num_batches: int,
  config: ExampleConfig,
  bucket: int,
) -> list[dict]:
  """Batches chunk * num_batches ... (chunk + 1) * num_batches - 1.

  Args:
    seed: the stream's seed (an int or a tuple, as for `make_example`).
    chunk: chunk index; it holds examples chunk * num_batches * batch_size
      onwards, num_batches * batch_size of them.
    batch_size: examples per batch.
    num_batches: batches per chunk; 1 keeps stream order (batch `step`
      holds examples step * batch_size ... in order).
    config: how examples are drawn.
    bucket: trim granularity in tokens (`trim_to_bucket`); 0 keeps `seq_len`.

  Returns:
    num_batches dicts of [batch_size, ...] NumPy arrays (sequence arrays
    [batch_size, S_b], S_b a multiple of `bucket` or seq_len).
  """
  first = chunk * num_batches * batch_size
  batch = make_batch(
    seed, range(first, first + num_batches * batch_size), config
  )
  if num_batches == 1:
    return [trim_to_bucket(batch, bucket)]
  order = np.argsort(sequence_lengths(batch["tokens"]), kind="stable")
  groups = order.reshape(num_batches, batch_size)
  rng = np.random.default_rng(seed_words(seed, chunk, num_batches))
  groups = groups[rng.permutation(num_batches)]
  return [
    trim_to_bucket({k: v[rows] for k, v in batch.items()}, bucket)
    for rows in groups
  ]
