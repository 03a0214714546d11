"""``deepspike bench``: run recipes, collect their ``result.json`` files, render the comparison."""

from deepspike.bench.runner import run_bench
from deepspike.bench.table import markdown_table

__all__ = ["markdown_table", "run_bench"]
