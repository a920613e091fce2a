"""Helpers shared by tests in several folders (tests/ is on the import path)."""
