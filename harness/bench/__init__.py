"""Benchmarks of the harness's own machinery, each measuring its figures side by side in one run.

Why a package of its own: a benchmark starts real processes and takes minutes, so it never
belongs in the test suite; `make bench` runs `python -m harness.bench.emulator`.
"""
