"""Helpers that tests and benchmarks share to drive and watch the live system: waiting,
mail, real misbehaving servers, runs, the Flask service's processes, the Compose stack.

Neither product code nor a test module: ``tests/`` and ``bench/`` both import from here, and
nothing here imports from them.
"""
