"""Building blocks of ``benchmarks/speed.py``: workloads, library adapters, timing, memory
probes, the cases and the report. Run the benchmark through ``speed.py``; the tests import
these modules directly."""
