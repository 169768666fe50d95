"""Tests of worker and beat processes: signals, kill -9, real subprocesses."""
