"""Shared pytest settings: hypothesis profiles and the `slow` marker."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
  "default",
  max_examples=60,
  deadline=None,
  suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
  "thorough",
  max_examples=1000,
  deadline=None,
  suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_configure(config):
  config.addinivalue_line(
    "markers",
    "slow: takes minutes; not in the default run (select with -m slow)",
  )
