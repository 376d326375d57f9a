"""Maintenance jobs: the daily cleanup."""
