"""Training curves of several runs from their metrics.jsonl: loss and
validation one-step goal rate against examples seen and wall-clock.

  python -m launch.plot_curves --workdirs=RUN_A,RUN_B --labels=a,b \
      --out=curves.png

Also prints a markdown table: per run and evaluation, the step, examples
seen, training minutes, smoothed loss and one-step goal rate.
"""

import json
import os

from absl import app, flags

from launch import common

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Training workdirs.")
_LABELS = flags.DEFINE_list("labels", None, "One label per workdir.")
_OUT = flags.DEFINE_string("out", None, "Output PNG.")


def read_run(workdir: str) -> dict:
  """Per logged step: examples seen, training seconds, loss; and the
  evaluations. A resumed run's repeated steps replace the earlier ones."""
  with open(os.path.join(workdir, "config.json")) as f:
    batch = json.load(f)["input"]["batch_size"]
  rows = {}
  evals = {}
  prev = 0
  seconds = 0.0
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      m = json.loads(line)
      step = m["step"]
      if step < prev:
        seconds = rows.get(step, {}).get("seconds", seconds)
        prev = step
      if m.get("examples_per_s"):
        seconds += (step - prev) * batch / m["examples_per_s"]
      if "loss" in m:
        rows[step] = dict(loss=m["loss"], seconds=seconds)
      if "one_step_goal_rate" in m:
        evals[step] = dict(rate=m["one_step_goal_rate"], seconds=seconds)
      prev = step
  steps = sorted(rows)
  return dict(
    batch=batch,
    steps=steps,
    loss=[rows[s]["loss"] for s in steps],
    seconds=[rows[s]["seconds"] for s in steps],
    eval_steps=sorted(evals),
    rate=[evals[s]["rate"] for s in sorted(evals)],
    eval_seconds=[evals[s]["seconds"] for s in sorted(evals)],
  )


def smooth(xs, n=9):
  out = []
  for i in range(len(xs)):
    window = xs[max(0, i - n + 1) : i + 1]
    out.append(sum(window) / len(window))
  return out


def main(argv):
  del argv
  if not _WORKDIRS.value or not _OUT.value:
    common.exit_with("--workdirs and --out are required")
  labels = _LABELS.value or [os.path.basename(w) for w in _WORKDIRS.value]
  if len(labels) != len(_WORKDIRS.value):
    common.exit_with("--labels needs one label per workdir")
  for w in _WORKDIRS.value:
    if not os.path.isfile(os.path.join(w, "metrics.jsonl")):
      common.exit_with(f"no metrics.jsonl in {w}")
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, axes = plt.subplots(2, 2, figsize=(10, 7))
  print(
    "| run | step | examples seen | minutes | loss (smoothed) "
    "| one-step goal rate |"
  )
  print("| --- | ---: | ---: | ---: | ---: | ---: |")
  for w, name in zip(_WORKDIRS.value, labels):
    r = read_run(w)
    ex = [s * r["batch"] for s in r["steps"]]
    ls = smooth(r["loss"])
    mins = [s / 60 for s in r["seconds"]]
    eex = [s * r["batch"] for s in r["eval_steps"]]
    emins = [s / 60 for s in r["eval_seconds"]]
    axes[0, 0].plot(ex, ls, label=name)
    axes[0, 1].plot(mins, ls, label=name)
    axes[1, 0].plot(eex, r["rate"], marker="o", label=name)
    axes[1, 1].plot(emins, r["rate"], marker="o", label=name)
    at = dict(zip(r["steps"], ls))
    for s, rate, sec in zip(r["eval_steps"], r["rate"], r["eval_seconds"]):
      loss = at.get(s)
      loss_txt = f"{loss:.3f}" if loss is not None else ""
      print(
        f"| {name} | {s} | {s * r['batch']:,} | {sec / 60:.0f} | "
        f"{loss_txt} | {rate:.3f} |"
      )
  axes[0, 0].set_ylabel("training loss (smoothed)")
  axes[1, 0].set_ylabel("validation one-step goal rate")
  axes[1, 0].set_xlabel("training examples seen")
  axes[1, 1].set_xlabel("training minutes (this run's machine)")
  for ax in axes.flat:
    ax.grid(alpha=0.3)
    ax.legend()
  fig.tight_layout()
  fig.savefig(_OUT.value, dpi=110)
  print(json.dumps(dict(plot=_OUT.value)))


if __name__ == "__main__":
  app.run(main)
