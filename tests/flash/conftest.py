"""Fixtures for flash tests (helpers live in flash_helpers.py so test modules can import them by name)."""

from flash.flash_helpers import bundle, hooks, root  # noqa: F401
