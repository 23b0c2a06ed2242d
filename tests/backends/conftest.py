"""Fixtures for the backend suites: each real server harness registers its fixtures here."""

from tests.backends.harness_argilla import argilla_server  # noqa: F401
