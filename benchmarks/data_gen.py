"""Training examples per second per core: sampling, noising, reverse path and
tokenizing (no rendering).

  python -m benchmarks.data_gen --lang=csg2d [--n=2000 --repeats=5]
  python -m benchmarks.data_gen --lang=csg2d --lengths   # token budgets

Baseline, measured in the same run: the same algorithms with the program
carried as text and re-parsed with lark after every step (each mutation and
each path edit), the way string-based implementations work.
"""

import numpy as np
from absl import app, flags

from benchmarks import common
from data_gen import filters
from data_gen.worker import ExampleConfig, example_rng, make_example
from treediff_jax.dsl import edits
from treediff_jax.dsl.examples import make_training_example
from treediff_jax.dsl.languages import NAMES, get_language
from treediff_jax.dsl.sampler import sample
from treediff_jax.dsl.tokenizer import Tokenizer
from treediff_jax.dsl.tree import site_at_position

_LANG = flags.DEFINE_enum("lang", "csg2d", NAMES, "Language.")
_N = flags.DEFINE_integer("n", 2000, "Examples per timed run.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed runs (median taken).")
_LENGTHS = flags.DEFINE_bool(
  "lengths", False, "Instead: token-length percentiles of examples."
)


def reparse_example(lang, tok, rng, rho=0.2):
  """One example with the program state as text, re-parsed at every step."""
  g = lang.grammar
  parse, text = g.parse, g.to_text
  while True:
    target = text(sample(g, g.start, 2, 8, rng))
    if not filters.looks_nonempty(lang.name, parse(target)):
      continue
    if rng.random() < rho:
      start = text(sample(g, g.start, 2, 8, rng))
    else:
      start = target
      for _ in range(rng.integers(1, 5)):
        tree = parse(start)
        start = text(edits.random_mutation(g, tree, rng).apply(g, tree))
    path, current = [], start
    for _ in range(50):
      tree, goal = parse(current), parse(target)
      diffs = edits.first_differences(tree, goal)
      if not diffs:
        break
      for addr, _, y in diffs:
        tree = parse(current)
        new = y if y.size <= 2 else edits.small_approximation(g, y, 2, rng)
        e = edits.Edit(addr, new)
        path.append((current, e.position(g, tree), text(new)))
        current = text(e.apply(g, tree))
    if path:
      break
  program, pos, replacement = path[rng.below(len(path))]
  tree = parse(program)
  sym = g.symbol_of(site_at_position(g, tree, pos).node)
  try:
    return tok.edit_sequence(tree, pos, parse(replacement, sym))
  except ValueError:  # over the token budget: redraw, as make_example does
    return reparse_example(lang, tok, rng, rho)


def lengths(name: str, n: int = 20000):
  lang = get_language(name)
  cur, tgt, edit = [], [], []
  for i in range(n):
    ex = make_training_example(lang, example_rng(0, i))
    cur.append(ex.current.ntok)
    tgt.append(ex.target.ntok)
    edit.append(ex.edit.replacement.ntok + 3)
  figures = {}
  for key, v in (("current", cur), ("target", tgt), ("edit", edit)):
    v = np.asarray(v)
    for q in (50, 99, 99.9, 100):
      figures[f"{key}_len_p{q}_tokens"] = float(np.percentile(v, q))
  figures["over_budget_fraction"] = float(
    np.mean(
      (np.asarray(cur) > lang.max_program_len)
      | (np.asarray(tgt) > lang.max_program_len)
      | (np.asarray(edit) > lang.max_edit_len)
    )
  )
  figures["max_program_len_tokens"] = lang.max_program_len
  figures["max_edit_len_tokens"] = lang.max_edit_len
  return figures


def main(argv):
  del argv
  common.pin_to_one_core()
  name = _LANG.value
  if _LENGTHS.value:
    common.print_result(lengths(name))
    return
  config = ExampleConfig(lang=name)
  lang = get_language(name)
  tok = Tokenizer(lang)
  make_example(0, 0, config)  # warm caches (grammar, tokenizer)

  indices = iter(range(1 << 62))  # fresh examples in every timed run

  def ours(n):
    for _ in range(n):
      make_example(1, next(indices), config)

  def baseline(n):
    for _ in range(n):
      reparse_example(lang, tok, example_rng(2, next(indices)))

  ours_rate, ours_runs = common.rate(ours, _N.value, _REPEATS.value)
  base_n = max(1, _N.value // 4)
  base_rate, base_runs = common.rate(baseline, base_n, _REPEATS.value)
  print(
    f"{name}: {ours_rate:.0f} examples/s on one core "
    f"(runs: {', '.join(f'{r:.0f}' for r in ours_runs)})"
  )
  print(
    f"{name}: re-parsing baseline {base_rate:.0f} examples/s "
    f"(runs: {', '.join(f'{r:.0f}' for r in base_runs)})"
  )
  common.print_result(
    {
      "lang": name,
      "examples_per_s": round(ours_rate, 1),
      "baseline_reparse_examples_per_s": round(base_rate, 1),
      "ratio_vs_reparse": round(ours_rate / base_rate, 2),
    }
  )


if __name__ == "__main__":
  app.run(main)
