"""Fault scenarios against real daemon processes, run inside a private network namespace."""
