"""salesflow's benchmarks: each case beside its baseline, in the same run.

Run them with ``python -m benchmarks`` from the repository root (``--help`` for the
options). They are not tests: pytest never collects them, and nothing here asserts a
timing.
"""
