"""ember's benchmarks: each `bench/*_bench.py` module has a `main()` that prints its figures.

Run them all with `make bench` (or `.venv/bin/python -m bench`), one with
`.venv/bin/python -m bench NAME` (e.g. `core`). They use the loopback fakes from tests/fakes.
"""
