"""Refactors change no behaviour: fixed seeds give the recorded programs,
solved flags and node counts of every method with tiny random-weight
models, and the recorded first training losses (tests/data/regression.json,
written by `python -m tests.regression_fixture`)."""

import json

import numpy as np
import pytest

from tests import regression_fixture


@pytest.mark.slow
def test_search_and_training_reproduce_the_recorded_fixture(tmp_path):
  with open(regression_fixture.FIXTURE) as f:
    want = json.load(f)
  got = regression_fixture.compute(str(tmp_path))
  assert got["search"] == want["search"]
  np.testing.assert_allclose(got["losses"], want["losses"], rtol=0, atol=1e-6)
