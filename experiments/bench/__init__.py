"""The pieces of ``experiments/benchmark.py`` (the CLI): FLOP counts, timing tools,
the benchmark's data, the measured sections, the targets and the report."""
