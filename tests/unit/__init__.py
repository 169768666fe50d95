"""Tests without a database (seconds)."""
