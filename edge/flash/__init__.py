"""Flashing station configs: A/B slots, firmware hooks, journal, bank building, rollback."""
