"""Length-sorted chunks and trimmed sequences (data_gen/lengths.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from data_gen import lengths
from data_gen.pool import BatchPool
from data_gen.worker import ExampleConfig, make_batch
from treediff_jax.configs import common
from treediff_jax.dsl.languages import get_language
from treediff_jax.model_configs import for_language
from treediff_jax.models import PolicyModel
from treediff_jax.render import batch as batch_lib
from treediff_jax.trainers import policy

CONFIG = ExampleConfig(lang="csg2d")
SEED = (3, 0)


def _rows(batches, length):
  """Each example of `batches` as one hashable row, sequences re-padded."""
  out = []
  for b in batches:
    b = lengths.pad_sequences(b, length)
    for i in range(len(b["tokens"])):
      out.append(tuple(b[k][i].tobytes() for k in sorted(b)))
  return out


def test_sequence_lengths_count_up_to_the_last_token():
  tokens = np.array([[5, 6, 0, 0], [5, 0, 7, 0], [0, 0, 0, 0], [1, 2, 3, 4]])
  np.testing.assert_array_equal(lengths.sequence_lengths(tokens), [2, 3, 0, 4])


def test_a_chunk_holds_its_stream_examples_in_trimmed_batches():
  seq_len = get_language("csg2d").seq_len
  batches = lengths.chunk_batches(SEED, 2, 8, 4, CONFIG, 32)
  stream = make_batch(SEED, range(2 * 32, 3 * 32), CONFIG)
  assert sorted(_rows(batches, seq_len)) == sorted(_rows([stream], seq_len))
  for b in batches:
    assert len(b["tokens"]) == 8
    s = b["tokens"].shape[1]
    assert s == seq_len or s % 32 == 0
    assert b["loss_mask"].shape == b["tokens"].shape
    longest = lengths.sequence_lengths(b["tokens"]).max()
    assert s - 32 < longest <= s
    assert b["loss_mask"][:, longest:].sum() == 0
  # Sorting makes batches shorter than trimming in stream order would.
  mean = np.mean([b["tokens"].shape[1] for b in batches])
  unsorted = [
    lengths.trim_to_bucket(
      {k: v[i * 8 : (i + 1) * 8] for k, v in stream.items()}, 32
    )
    for i in range(4)
  ]
  assert mean < np.mean([b["tokens"].shape[1] for b in unsorted])


def test_chunks_are_reproducible_and_one_batch_chunks_keep_stream_order():
  a = lengths.chunk_batches(SEED, 1, 4, 3, CONFIG, 16)
  b = lengths.chunk_batches(SEED, 1, 4, 3, CONFIG, 16)
  for x, y in zip(a, b):
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])
  (one,) = lengths.chunk_batches(SEED, 5, 4, 1, CONFIG, 0)
  stream = make_batch(SEED, range(20, 24), CONFIG)
  for k in stream:
    np.testing.assert_array_equal(one[k], stream[k])


def test_pad_sequences_restores_the_full_arrays():
  stream = make_batch(SEED, range(4), CONFIG)
  full = stream["tokens"].shape[1]
  trimmed = lengths.trim_to_bucket(stream, 8)
  assert trimmed["tokens"].shape[1] < full
  back = lengths.pad_sequences(trimmed, full)
  for k in stream:
    np.testing.assert_array_equal(back[k], stream[k])
  with pytest.raises(ValueError, match="cannot pad"):
    lengths.pad_sequences(stream, full - 1)


def test_sorted_pool_delivers_every_chunk_batch_in_step_order():
  config = ExampleConfig(lang="rainbow")
  k, workers, start = 4, 3, 5  # resume inside the second chunk
  kw = dict(seed=1, batch_size=3, sort_chunk=k, length_bucket=8)
  steps = range(start, start + 2 * k * workers + 3)  # second chunk per worker
  with BatchPool(config, num_workers=workers, start_step=start, **kw) as pool:
    got = [next(pool) for _ in steps]
  for step, batch in zip(steps, got):
    want = lengths.chunk_batches((1, 0), step // k, 3, k, config, 8)[step % k]
    assert batch["tokens"].shape == want["tokens"].shape
    for key in want:
      np.testing.assert_array_equal(batch[key], want[key])
  with pytest.raises(ValueError, match="sort_chunk"):
    BatchPool(config, seed=0, batch_size=2, sort_chunk=0)


@pytest.mark.slow  # kept out of CI's 10-minute default run
def test_trimming_leaves_the_loss_unchanged():
  # Padding follows every real token (which the causal decoder never lets
  # attend to it) and carries no loss: cutting it off must not change the
  # loss or the metrics.
  config = common.policy_config("csg2d", "tiny", 8)
  model = PolicyModel(for_language("csg2d", "tiny"), rngs=nnx.Rngs(0))
  stream = make_batch(SEED, range(8), CONFIG)
  trimmed = lengths.trim_to_bucket(stream, 8)
  assert trimmed["tokens"].shape[1] < stream["tokens"].shape[1]
  key = jax.random.key(0)

  def loss(batch):
    batch = {k: jnp.asarray(v) for k, v in batch.items()}
    batch = batch_lib.add_images(batch, "csg2d", key, False)
    return policy.loss_and_metrics(model, batch, config)[1]

  full, short = loss(stream), loss(trimmed)
  for k in full:
    np.testing.assert_allclose(short[k], full[k], rtol=1e-5, atol=1e-6)
