"""Exports a trained model as parameters only (no optimizer state): the
form the package ships in treediff_jax/weights/.

  python -m launch.export --workdir=/root/runs/policy_csg2d \
      --out=treediff_jax/weights/csg2d/policy [--dtype=bfloat16]

Writes OUT/model.json (kind, training config, step, examples seen,
training wall-clock and the last validation metrics from the workdir's
metrics.jsonl) and OUT/params.npz. `treediff_jax.loading.load_policy(OUT)`
(or `load_value`) reads it back.
"""

import json
import os

from absl import app, flags

from launch import common

_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir.")
_OUT = flags.DEFINE_string("out", None, "Output folder.")
_DTYPE = flags.DEFINE_enum(
  "dtype", "float32", ["float32", "bfloat16"], "Stored parameter dtype."
)
_OVERWRITE = flags.DEFINE_bool(
  "overwrite", False, "Replace an exported model already in --out."
)


def training_facts(workdir: str) -> dict:
  """Examples seen, training seconds and the last validation metrics,
  read from <workdir>/metrics.jsonl (empty if there is none)."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.isfile(path):
    return {}
  seconds, last_eval, last_step = 0.0, {}, 0
  with open(os.path.join(workdir, "config.json")) as f:
    config = json.load(f)
  batch, log_every = config["input"]["batch_size"], config["log_every"]
  prev = 0
  with open(path) as f:
    for line in f:
      m = json.loads(line)
      step = m.get("step", 0)
      if step < prev:  # a resumed run repeats steps after its checkpoint
        prev = step
      if m.get("examples_per_s"):
        seconds += (step - prev) * batch / m["examples_per_s"]
      if any(k.startswith(("one_step", "val_")) for k in m):
        last_eval = {k: v for k, v in m.items() if k != "examples_per_s"}
      prev, last_step = step, step
  del log_every
  return dict(
    examples_seen=last_step * batch,
    train_seconds=round(seconds),
    last_validation=last_eval,
  )


def main(argv):
  del argv
  if not _WORKDIR.value or not _OUT.value:
    common.exit_with("--workdir and --out are required")
  workdir = os.path.abspath(_WORKDIR.value)
  if not os.path.isfile(os.path.join(workdir, "config.json")):
    common.exit_with(f"--workdir={_WORKDIR.value} is not a training workdir")
  out = os.path.abspath(_OUT.value)
  if os.path.exists(out) and not os.path.isdir(out):
    common.exit_with(f"--out={_OUT.value} exists and is not a folder")
  if not os.path.isdir(os.path.dirname(out)):
    common.exit_with(f"the folder above --out={_OUT.value} does not exist")
  if os.path.isdir(out) and os.listdir(out) and not _OVERWRITE.value:
    common.exit_with(
      f"--out={_OUT.value} is not empty; pass --overwrite to replace it"
    )
  common.quiet_jax_logs()
  from treediff_jax import checkpointing, exported, loading

  with open(os.path.join(workdir, "config.json")) as f:
    kind = json.load(f).get("kind", "policy")
  load = loading.load_value if kind == "value" else loading.load_policy
  try:
    model, config = load(workdir)
  except (
    checkpointing.CheckpointNotFoundError,
    checkpointing.CheckpointRestoreError,
    ValueError,
  ) as e:
    common.exit_with(str(e))
  ckpts = os.path.join(workdir, "checkpoints")
  step = max((int(d) for d in os.listdir(ckpts) if d.isdigit()), default=0)
  facts = training_facts(workdir)
  exported.save(
    model, config, out, _DTYPE.value, step=step, source=workdir, **facts
  )
  print(json.dumps(dict(out=out, kind=kind, step=step, dtype=_DTYPE.value)))


if __name__ == "__main__":
  app.run(main)
