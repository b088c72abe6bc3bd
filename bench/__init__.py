"""Benchmarks for imdsrender against the in-repo IMDSv2 emulator.

``python -m bench`` runs every workload and prints a table of medians and
ratios; ``python -m bench --requests-only`` runs only the request-count
part (fast, what CI runs) and exits non-zero when any workload makes more
requests than the theoretical minimum.  See bench/RESULTS.md for a run.
"""
