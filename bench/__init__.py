"""Benchmarks: figures, never timed assertions."""
