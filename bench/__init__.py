"""Benchmarks for imdsrender against the in-repo IMDSv2 emulator.

``python -m bench`` runs every workload and prints a table of medians and
ratios; ``python -m bench --requests-only`` runs only the request-count
part (fast, what CI runs) and exits non-zero when any workload makes more
requests than the theoretical minimum; ``python -m bench --as-installed``
only the installed-wheel section (start-up ratios, CPU per request,
profiles); ``python -m bench.transports`` the CPU of one GET per HTTP
layer.  See bench/RESULTS.md for a run.
"""
