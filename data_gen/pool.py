"""Worker processes that fill a bounded queue with training batches.

Batch `step` of process `p` comes from chunk `step // K` of the stream
seeded (seed, p), which holds examples `chunk * K * B` onwards: with K = 1
batch `step` holds examples `step * B + i` (i < B) in order; with K > 1 the
chunk's examples are dealt out by sequence length and the batches trimmed
(`data_gen.lengths`). The data depend only on the step: a resumed run
continues the same stream, whatever the number of workers. Workers are
started with the "spawn" method and never import jax. A worker that raises
sends its traceback; the trainer then stops with an error naming the worker
instead of waiting forever. A worker whose parent has ended (killed with
SIGKILL, say) exits by itself within a second of its next queue wait or
batch.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import queue as queue_lib
import traceback

from data_gen.lengths import chunk_batches
from data_gen.worker import ExampleConfig

# How often a worker waiting on a full queue checks that its parent lives.
PARENT_CHECK_S = 0.5


class WorkerError(RuntimeError):
  """A data worker failed; the message names it and carries its traceback."""


def _orphaned(parent_pid: int) -> bool:
  """Whether the process that started this worker has ended (its children
  are then handed to another parent)."""
  return os.getppid() != parent_pid


def _put(out: mp.Queue, item, parent_pid: int):
  """`out.put(item)`, but exits the worker at once if its parent has ended
  (however it ended: nobody will read the queue)."""
  while True:
    if _orphaned(parent_pid):
      os._exit(0)
    try:
      out.put(item, timeout=PARENT_CHECK_S)
      return
    except queue_lib.Full:
      pass


def _work(
  worker: int,
  num_workers: int,
  config: ExampleConfig,
  seed,
  batch_size: int,
  start_step: int,
  sort_chunk: int,
  length_bucket: int,
  out: mp.Queue,
  parent_pid: int | None = None,
):
  parent_pid = os.getppid() if parent_pid is None else parent_pid
  chunk = start_step // sort_chunk + worker
  step = chunk * sort_chunk
  try:
    while True:
      if _orphaned(parent_pid):
        os._exit(0)
      batches = chunk_batches(
        seed, chunk, batch_size, sort_chunk, config, length_bucket
      )
      for part, batch in enumerate(batches):
        step = chunk * sort_chunk + part
        if step >= start_step:
          _put(out, (worker, step, batch), parent_pid)
      chunk += num_workers
  except Exception:
    _put(out, (worker, step, traceback.format_exc()), parent_pid)


def check_pool_settings(num_workers: int, sort_chunk: int, length_bucket: int):
  """Raises ValueError for an unusable BatchPool setting, starting nothing;
  the message starts with the setting's name."""
  if num_workers < 1:
    raise ValueError(f"num_workers must be >= 1, got {num_workers}")
  if sort_chunk < 1:
    raise ValueError(
      f"sort_chunk must be >= 1 (1: stream order), got {sort_chunk}"
    )
  if length_bucket < 0:
    raise ValueError(
      "length_bucket must be >= 0 (0: full sequence length), "
      f"got {length_bucket}"
    )


@dataclasses.dataclass
class BatchPool:
  """Iterates host-local batches (dicts of [B, ...] NumPy arrays) in order.

  Attributes:
    config: how examples are drawn.
    seed: run seed; the stream of process p is seeded (seed, p).
    batch_size: examples per batch on this process.
    start_step: first step to produce (the resume point).
    sort_chunk: K, batches drawn together and dealt out by sequence length
      (1: stream order).
    length_bucket: sequence arrays are trimmed to a multiple of this many
      tokens (0: the language's full sequence length).
    num_workers: worker processes.
    queue_size: batches buffered ahead, over all workers (the bound).
    process_index: this host's index in a multi-host run.
    timeout_s: how long to wait for a batch before checking the workers.
  """

  config: ExampleConfig
  seed: int
  batch_size: int
  start_step: int = 0
  sort_chunk: int = 1
  length_bucket: int = 0
  num_workers: int = 2
  queue_size: int = 8
  process_index: int = 0
  timeout_s: float = 5.0

  def __post_init__(self):
    check_pool_settings(self.num_workers, self.sort_chunk, self.length_bucket)
    ctx = mp.get_context("spawn")
    # One bounded queue per worker: batches are read from the worker that
    # owns the next step only, so memory stays bounded and a dead owner is
    # noticed at once.
    per_worker = max(1, self.queue_size // self.num_workers)
    self._capacity = per_worker * self.num_workers
    self._queues = [ctx.Queue(per_worker) for _ in range(self.num_workers)]
    self._next = self.start_step
    stream = (self.seed, self.process_index)
    self._workers = [
      ctx.Process(
        target=_work,
        daemon=True,
        name=f"data-worker-{i}",
        args=(
          i,
          self.num_workers,
          self.config,
          stream,
          self.batch_size,
          self.start_step,
          self.sort_chunk,
          self.length_bucket,
          self._queues[i],
          os.getpid(),
        ),
      )
      for i in range(self.num_workers)
    ]
    for w in self._workers:
      w.start()

  def __iter__(self):
    return self

  def __next__(self) -> dict:
    k = self.sort_chunk
    owner = (self._next // k - self.start_step // k) % self.num_workers
    while True:
      try:
        worker, step, item = self._queues[owner].get(timeout=self.timeout_s)
        break
      except queue_lib.Empty:
        self._check_worker(owner)
    if isinstance(item, str):
      self.close()
      raise WorkerError(f"data worker {worker} failed at step {step}:\n{item}")
    assert step == self._next, (step, self._next)
    self._next += 1
    return item

  def fill(self) -> float:
    """Share of the queues' capacity holding finished batches."""
    try:
      return min(1.0, sum(q.qsize() for q in self._queues) / self._capacity)
    except NotImplementedError:  # macOS
      return float("nan")

  def _check_worker(self, i: int):
    w = self._workers[i]
    if not w.is_alive():
      self.close()
      raise WorkerError(
        f"data worker {i} ({w.name}) died with exit code "
        f"{w.exitcode} and sent no error"
      )

  def close(self):
    """Stops the workers."""
    for w in self._workers:
      if w.is_alive():
        w.terminate()
    for w in self._workers:
      w.join(timeout=5)

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
