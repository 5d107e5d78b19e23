"""The trainer: data parallelism, overfitting, checkpoints, failures."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest
from flax import nnx

from data_gen.pool import BatchPool, WorkerError
from data_gen.worker import ExampleConfig, make_batch
from treediff_jax import checkpointing, sharding
from treediff_jax.configs import common
from treediff_jax.trainers import common as trainer_common
from treediff_jax.trainers import policy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(lang="rainbow", steps=20, batch=8):
  c = common.policy_config(lang, "tiny", batch, steps)
  c.input.num_workers = 1
  c.optim.lr = 1e-3
  c.optim.warmup_steps = 2
  c.ckpt.every = 5
  c.ckpt.async_save = False
  c.evals.every = 0
  c.log_every = 5
  # One full-length step shape keeps these short runs to one compilation.
  return common.full_length_sequences(c)


def _params(state):
  return [np.asarray(x) for x in jax.tree.leaves(state)]


EIGHT_DEVICES = textwrap.dedent("""
    import os, sys, json
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    import jax, numpy as np
    sys.path.insert(0, {repo!r})
    from tests.train_test import tiny_config
    from data_gen.worker import make_batch
    from treediff_jax import sharding, checkpointing
    from treediff_jax.trainers import policy
    assert jax.device_count() == 8
    config = tiny_config(lang="csg2d", batch=8)
    batches = [make_batch((0, 0), range(8 * s, 8 * s + 8),
                          policy.example_config(config)) for s in range(3)]
    out = {{}}
    for n in (1, 8):
      mesh = sharding.make_mesh(jax.devices()[:n])
      graphdef, state = policy.init_state(config, mesh)
      step = policy.make_train_step(config, graphdef, mesh)
      for b in batches:
        state, metrics = step(state, sharding.global_batch(mesh, b))
      out[n] = [np.asarray(x) for x in jax.tree.leaves(state)]
      if n == 8 and len(sys.argv) > 1:
        manager = checkpointing.make_manager(sys.argv[1], 1, 1, False)
        checkpointing.save(manager, 3, state, {{"step": 3}}, force=True)
        manager.wait_until_finished()
        np.savez(sys.argv[1] + "/params.npz", *out[8])
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(out[1], out[8]))
    print(json.dumps({{"max_abs_diff": diff}}))
""")


def test_eight_fake_devices_match_one_device_and_restore_on_one(tmp_path):
  script = EIGHT_DEVICES.format(repo=REPO)
  res = subprocess.run(
    [sys.executable, "-c", script, str(tmp_path)],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert res.returncode == 0, res.stderr[-3000:]
  diff = json.loads(res.stdout.strip().splitlines()[-1])["max_abs_diff"]
  assert diff < 1e-4
  # The checkpoint written on 8 devices restores on this 1-device process.
  config = tiny_config(lang="csg2d", batch=8)
  mesh = sharding.make_mesh()
  _, fresh = policy.init_state(config, mesh)
  restored, data = checkpointing.restore_path(str(tmp_path), fresh)
  assert data["step"] == 3
  saved = np.load(tmp_path / "params.npz")
  for i, leaf in enumerate(jax.tree.leaves(restored)):
    np.testing.assert_allclose(np.asarray(leaf), saved[f"arr_{i}"])


def test_overfits_a_fixed_batch():
  config = tiny_config(lang="rainbow", batch=16)
  config.optim.warmup_steps = 10
  config.optim.lr = 2e-3
  config.total_steps = 150  # the loss is under 0.02 by step 50
  mesh = sharding.make_mesh()
  graphdef, state = policy.init_state(config, mesh)
  step = policy.make_train_step(config, graphdef, mesh)
  batch = sharding.global_batch(
    mesh, make_batch(5, range(16), policy.example_config(config))
  )
  losses = []
  for _ in range(config.total_steps):
    state, metrics = step(state, batch)
    losses.append(float(metrics["loss"]))
  assert losses[0] > 1.0
  assert min(losses[-20:]) < 0.05, losses[::50]


def test_worker_error_stops_the_trainer_with_that_error():
  # Valid settings whose programs never fit the token budget: the worker
  # itself raises.
  config = ExampleConfig(lang="rainbow", min_primitives=40, max_primitives=40)
  pool = BatchPool(config, seed=0, batch_size=2, num_workers=2, timeout_s=1.0)
  with pytest.raises(WorkerError, match="data worker 0 failed") as info:
    next(pool)
  assert "no example within the token budget" in str(info.value)


def test_invalid_example_settings_fail_before_any_worker_starts():
  with pytest.raises(ValueError, match="unknown language 'csg3d'"):
    ExampleConfig(lang="csg3d")
  with pytest.raises(ValueError, match="rho"):
    ExampleConfig(rho=-0.1)


def test_dead_worker_is_named():
  pool = BatchPool(
    ExampleConfig(),
    seed=0,
    batch_size=2,
    num_workers=1,
    queue_size=1,
    timeout_s=0.5,
  )
  next(pool)
  os.kill(pool._workers[0].pid, signal.SIGKILL)
  with pytest.raises(WorkerError, match="worker 0 .* died"):
    for _ in range(10):
      next(pool)


def test_pool_streams_do_not_depend_on_worker_count():
  config = ExampleConfig(lang="rainbow")
  with BatchPool(config, seed=1, batch_size=3, num_workers=1) as a:
    one = [next(a) for _ in range(4)]
  with BatchPool(
    config, seed=1, batch_size=3, num_workers=3, start_step=2
  ) as b:
    three = [next(b) for _ in range(2)]
  for x, y in zip(one[2:], three):
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])


@pytest.mark.parametrize(
  "field,value,message",
  [
    ("batch_size", 0, "batch_size"),
    ("sketch", True, "sketch"),
    ("label_mode", "last_mutation", "rho=0"),
    ("sort_chunk", 0, "sort_chunk"),
    ("length_bucket", -1, "length_bucket"),
    # ExampleConfig's and BatchPool's own checks, named as config fields.
    ("num_workers", 0, r"^config\.input\.num_workers must be >= 1, got 0"),
    ("rho", 1.5, r"^config\.input\.rho must be in \[0, 1\], got 1\.5"),
    ("min_primitives", 9, r"^config\.input\.min_primitives must be in"),
    ("max_noise_steps", 0, r"^config\.input\.max_noise_steps must be >= 1"),
    ("label_mode", "oracle", r"^config\.input\.label_mode must be one of"),
    ("label_mode", "repl", r"^config\.input\.label_mode='repl'.* csg2d"),
  ],
)
def test_bad_configs_are_named(field, value, message):
  config = tiny_config()
  config.input[field] = value
  with pytest.raises(policy.ConfigError, match=message):
    policy.check_config(config)


def test_bad_config_stops_before_the_workdir_and_the_pool(
  tmp_path, monkeypatch
):
  def pool(*args, **kwargs):
    raise AssertionError("a pool was started")

  monkeypatch.setattr(trainer_common, "BatchPool", pool)
  config = tiny_config()
  config.input.num_workers = 0
  with pytest.raises(policy.ConfigError, match="config.input.num_workers"):
    policy.train_and_evaluate(config, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def test_trainer_hands_the_length_settings_to_the_pool(tmp_path, monkeypatch):
  class Stop(Exception):
    pass

  seen = {}

  def pool(*args, **kwargs):
    seen.update(kwargs)
    raise Stop

  monkeypatch.setattr(trainer_common, "BatchPool", pool)
  config = tiny_config()
  config.input.sort_chunk, config.input.length_bucket = 3, 24
  with pytest.raises(Stop):
    policy.train_and_evaluate(config, str(tmp_path / "run"))
  assert seen["sort_chunk"] == 3 and seen["length_bucket"] == 24


def _children(pid: int) -> list[int]:
  """Process ids whose parent is `pid` (Linux /proc)."""
  out = []
  for entry in os.listdir("/proc"):
    if not entry.isdigit():
      continue
    try:
      with open(f"/proc/{entry}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
      continue
    if int(fields[1]) == pid:
      out.append(int(entry))
  return out


def _alive(pid: int) -> bool:
  """Running (a zombie waiting to be reaped counts as ended)."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[0] != "Z"
  except OSError:
    return False


def _wait_gone(pids, seconds: float) -> list[int]:
  """The `pids` still running after up to `seconds`."""
  deadline = time.time() + seconds
  while time.time() < deadline and any(_alive(p) for p in pids):
    time.sleep(0.2)
  return [p for p in pids if _alive(p)]


POOL_THEN_SLEEP = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    from data_gen.pool import BatchPool
    from data_gen.worker import ExampleConfig
    pool = BatchPool(ExampleConfig(lang="rainbow"), seed=0, batch_size=2,
                     num_workers=2, queue_size=2)
    next(pool)
    print(*[w.pid for w in pool._workers], flush=True)
    time.sleep(300)
""")


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc")
def test_workers_exit_when_their_parent_is_killed():
  proc = subprocess.Popen(
    [sys.executable, "-c", POOL_THEN_SLEEP.format(repo=REPO)],
    cwd=REPO,
    stdout=subprocess.PIPE,
    text=True,
  )
  workers = [int(x) for x in proc.stdout.readline().split()]
  assert len(workers) == 2 and all(_alive(p) for p in workers)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert _wait_gone(workers, 10.0) == []


def _train_cmd(workdir, steps, extra=""):
  return [
    sys.executable,
    "-m",
    "launch.train",
    f"--config=tests/train_tiny_config.py:steps={steps}{extra}",
    f"--workdir={workdir}",
  ]


def _final_params(workdir):
  config = tiny_config(steps=30)
  _, fresh = policy.init_state(config, sharding.make_mesh())
  state, data = checkpointing.restore_path(str(workdir), fresh)
  return _params(state), data["step"]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_params(tmp_path):
  # Length-sorted chunks of 4 batches: the kill and the resume fall inside
  # a chunk.
  straight, killed = tmp_path / "straight", tmp_path / "killed"
  subprocess.run(
    _train_cmd(straight, 30, ",sorted"),
    cwd=REPO,
    check=True,
    capture_output=True,
    timeout=900,
  )
  proc = subprocess.Popen(
    _train_cmd(killed, 30, ",sorted"),
    cwd=REPO,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )
  ckpt = killed / "checkpoints" / "15"
  deadline = time.time() + 600
  while not ckpt.exists() and time.time() < deadline:
    time.sleep(0.2)
  time.sleep(1.0)
  workers = _children(proc.pid)
  assert workers  # the data workers (and multiprocessing's tracker)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  # No orphans: the workers notice their parent is gone.
  assert _wait_gone(workers, 10.0) == []
  latest = max(
    int(p.name) for p in (killed / "checkpoints").iterdir() if p.name.isdigit()
  )
  assert 15 <= latest < 30
  subprocess.run(
    _train_cmd(killed, 30, ",sorted"),
    cwd=REPO,
    check=True,
    capture_output=True,
    timeout=900,
  )
  a, step_a = _final_params(straight)
  b, step_b = _final_params(killed)
  assert step_a == step_b == 30
  # The runs kept their compiled steps in the workdir's cache, where a
  # resumed run finds them.
  assert any(
    p.name.startswith("jit_step") for p in (killed / "compile_cache").iterdir()
  )
  for x, y in zip(a, b):
    np.testing.assert_allclose(x, y, atol=1e-6)


@pytest.mark.slow  # kept out of CI's 10-minute default run
def test_short_runs_write_metrics_and_load_back(tmp_path):
  from treediff_jax import loading
  from treediff_jax.trainers import value

  config = tiny_config(steps=10)
  config.evals.every = 10
  config.evals.num_examples = 8
  last = policy.train_and_evaluate(config, str(tmp_path / "p"))
  assert last["step"] == 10
  assert 0.0 <= last["one_step_goal_rate"] <= 1.0
  lines = (tmp_path / "p" / "metrics.jsonl").read_text().splitlines()
  assert json.loads(lines[0])["step"] == 0  # the evaluation before training
  assert "loss" in json.loads(lines[-1])
  model, loaded = loading.load_policy(str(tmp_path / "p"))
  assert loaded.lang == "rainbow" and isinstance(model, nnx.Module)

  vconfig = common.value_config("rainbow", "tiny", 8, 10)
  vconfig.input.num_workers = 1
  vconfig.evals.every = 10
  vconfig.evals.num_examples = 8
  vconfig.ckpt.async_save = False
  last = value.train_and_evaluate(vconfig, str(tmp_path / "v"))
  assert last["val_value_mae"] >= 0
  loading.load_value(str(tmp_path / "v"))
  with pytest.raises(ValueError, match="holds a value model"):
    loading.load_policy(str(tmp_path / "v"))
  with pytest.raises(checkpointing.CheckpointNotFoundError):
    loading.load_policy(str(tmp_path / "nothing"))


@pytest.mark.slow  # kept out of CI's 10-minute default run
def test_init_from_takes_weights_and_restarts_the_optimizer(tmp_path):
  first = tiny_config(steps=5)
  policy.train_and_evaluate(first, str(tmp_path / "a"))
  second = tiny_config(steps=5)
  second.init_from = str(tmp_path / "a")
  second.log_every = 1
  last = policy.train_and_evaluate(second, str(tmp_path / "b"))
  assert last["step"] == 5
  mesh = sharding.make_mesh()
  graphdef, fresh = policy.init_state(second, mesh)
  restored, _ = checkpointing.restore_path(str(tmp_path / "b"), fresh)
  _, optimizer = nnx.merge(graphdef, restored)
  assert int(optimizer.step[...]) == 5  # counted from 0, not from 5


def test_evaluation_runs_on_its_own_cadence(tmp_path):
  config = tiny_config(steps=6)
  config.log_every = 4
  config.evals.every = 3
  config.evals.num_examples = 4
  policy.train_and_evaluate(config, str(tmp_path))
  rows = [
    json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()
  ]
  assert [r["step"] for r in rows if "one_step_goal_rate" in r] == [0, 3, 6]


def test_one_step_fix_rate_leaves_out_mutations_the_render_hides():
  """The fix rate counts only the examples whose mutated program missed
  the goal. Decoded as the labelled edits (the first step of the reverse
  path, which repairs one mutation in one step unless the mutated node is
  too large to copy at once), most examples are solved."""
  from treediff_jax.render import goal as goal_lib

  config = tiny_config(lang="csg2d")
  graphdef, state = policy.init_state(config, sharding.make_mesh())
  ev = policy.OneStepEvaluator(config, graphdef, 48)
  batch = trainer_common.validation_batch(
    config, 48, rho=0.0, max_noise_steps=1, label_mode="path"
  )
  truth = np.asarray(batch["tokens"])
  ev._decode = lambda state: truth  # the labelled edits themselves
  out = ev.run(state)
  already = np.asarray(
    goal_lib.goal_reached(
      "csg2d", batch["current_image"], batch["clean_target_image"]
    )
  )
  assert out["already_solved_share"] == float(already.mean())
  assert 0.0 < out["already_solved_share"] < 1.0
  share, fix = out["already_solved_share"], out["one_step_fix_rate"]
  assert fix > 0.5
  # Solved = (solved among the already-solved) + fix rate x the rest.
  assert fix * (1 - share) - 1e-9 <= out["one_step_goal_rate"]
  assert out["one_step_goal_rate"] <= fix * (1 - share) + share + 1e-9
  # Decoding nothing (padding) repairs no example.
  ev._decode = lambda state: np.zeros_like(truth)
  out = ev.run(state)
  assert out["one_step_fix_rate"] == 0.0
