"""Shared test configuration. Keep it small: area fixtures live in tests/<area>/conftest.py."""
